"""nats-server configuration for a 3-node broker cluster (JetStream + its MQTT 3.1.1 listener).

Why NATS and not RabbitMQ: three nats-server processes (one static binary, a few MB of RAM each)
cluster natively on one box or three; its MQTT listener stores QoS 1 in JetStream, and a
JetStream stream with 3 replicas gives central a replicated queue with durable pull consumers
(competing ingesters, explicit ack). RabbitMQ's Erlang cluster is heavier to run three times.

Accounts mirror `central/broker_security.py` for Mosquitto: each edge node has its own user that
may publish only under `<prefix>.<node>.>` (MQTT topic `<prefix>/<node>/...`); central's user
may consume. `python -m central.nats_cluster OUT_DIR` writes the files shipped in deploy/nats/.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER_NAME = "ioc"
EVENT_STREAM = "IOC_EVENTS"


@dataclass(frozen=True)
class NatsNode:
    name: str
    client_port: int  # NATS protocol (central's ingesters)
    mqtt_port: int  # MQTT 3.1.1 (edge nodes)
    cluster_port: int  # routes between the servers
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class NatsUsers:
    """Edge node id -> password, and central's credentials. Empty `nodes`: no authorization."""

    nodes: dict[str, str] = field(default_factory=dict)
    central_user: str = "central"
    central_password: str = ""


def event_subjects(prefix: str) -> list[str]:
    """The NATS subjects of the MQTT event topics `<prefix>/<node>/<camera>/events/<type>`."""
    return [f"{prefix}.*.*.events.*"]


def subject_to_topic(subject: str) -> str:
    """NATS's MQTT bridge turns topic levels into subject tokens: `a/b/c` <-> `a.b.c`."""
    return subject.replace(".", "/")


def _authorization(users: NatsUsers, prefix: str) -> str:
    if not users.nodes:
        return (
            'accounts { IOC { jetstream: enabled, users: [ { user: "anon", password: "" } ] } }\nno_auth_user: "anon"\n'
        )
    rows = [
        # central consumes (JetStream API, acks, inboxes) and publishes nothing under a node's tree.
        f"{{ user: {json.dumps(users.central_user)}, password: {json.dumps(users.central_password)}, "
        f'permissions: {{ publish: {{ deny: ["{prefix}.>"] }}, subscribe: {{ allow: [">"] }} }} }}'
    ]
    for node, password in sorted(users.nodes.items()):
        # A node publishes only its own subjects; "$MQTT.>" is the bridge's own session traffic.
        rows.append(
            f"{{ user: {json.dumps(node)}, password: {json.dumps(password)}, permissions: {{ "
            f'publish: {{ allow: ["{prefix}.{node}.>", "$MQTT.>"] }}, '
            f'subscribe: {{ allow: ["{prefix}.{node}.>", "$MQTT.>"] }} }} }}'
        )
    return "accounts { IOC { jetstream: enabled, users: [\n    " + ",\n    ".join(rows) + "\n  ] } }\n"


def server_config(
    node: NatsNode, cluster: list[NatsNode], store_dir: Path | str, users: NatsUsers, prefix: str = "ioc"
) -> str:
    routes = ", ".join(f'"nats-route://{n.host}:{n.cluster_port}"' for n in cluster if n.name != node.name)
    return (
        f"server_name: {json.dumps(node.name)}\n"
        f'listen: "{node.host}:{node.client_port}"\n'
        f"jetstream {{ store_dir: {json.dumps(str(store_dir))} }}\n"
        f'cluster {{ name: "{CLUSTER_NAME}", listen: "{node.host}:{node.cluster_port}", routes: [{routes}] }}\n'
        f'mqtt {{ listen: "{node.host}:{node.mqtt_port}" }}\n' + _authorization(users, prefix)
    )


def local_cluster(base_port: int = 14222, host: str = "127.0.0.1") -> list[NatsNode]:
    """Three servers on one machine, on distinct ports."""
    return [NatsNode(f"n{i + 1}", base_port + i, base_port + 100 + i, base_port + 200 + i, host) for i in range(3)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--store-root", default="/var/lib/nats", help="JetStream data dirs: <root>/<server>")
    ap.add_argument("--base-port", type=int, default=4222)
    args = ap.parse_args(argv)
    cluster = local_cluster(args.base_port)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for n in cluster:
        text = server_config(n, cluster, f"{args.store_root}/{n.name}", NatsUsers())
        (args.out_dir / f"{n.name}.conf").write_text(text)


if __name__ == "__main__":
    main()
