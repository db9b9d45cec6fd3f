"""RabbitMQ as the broker cluster: node configs, accounts and the replicated events queue.

Edge nodes publish MQTT 3.1.1 QoS 1 to any node of the cluster (RabbitMQ's MQTT plugin); a
publish goes to the topic exchange `amq.topic` with the topic's `/` turned into `.`. A durable
**quorum queue** (Raft-replicated over `replicas` nodes) is bound there to the event topics, and to
the evidence, node status and camera health topics (`event_binding_keys`); central's
ingesters are competing consumers of it over AMQP 0-9-1 and ack after the database commit
(`central/ingest_rabbitmq.py`). The plugin sends PUBACK for a QoS 1 publish only when its
channel's publisher confirm arrives (rabbit_mqtt_processor: `confirm.select` on the QoS 1 channel,
PUBACK from `basic.ack`), and a quorum queue confirms once a majority of its replicas has the
message: what a node deletes from its outbox is on two disks. (NATS 2.9 acknowledges before its
stream holds the message: docs/deploy.md.)

Accounts (one vhost, `/`), with RabbitMQ's topic permissions on `amq.topic`, which expand
`{username}` and `{client_id}` (MQTT) in the pattern:

- a node `<id>` may publish and subscribe only under `<prefix>/<id>/` and only when its MQTT client
  id is its user name: `^(?=<prefix>\\.{client_id}\\.)<prefix>\\.{username}\\.` (an AMQP connection
  has no client id, so a node cannot publish over AMQP at all); its resource permissions name only
  `amq.topic` and its own MQTT subscription queues, so it can neither consume nor declare, bind or
  delete the events queue nor read another client's session queue.
- `central` may consume the events queue (declare it, bind it: configure/write/read on it), run its
  MQTT sessions (`mqtt-subscription-central*`), read every topic under `<prefix>/` and publish
  only police alerts and debug-recording requests.

Without topic permissions RabbitMQ allows every routing key: every node account must have them,
which `definitions()` writes. `python -m central.rabbitmq_cluster OUT_DIR --node node-1 ...`
writes the three node configs (`<host>.rabbitmq.conf`, `<host>.rabbitmq-env.conf`) and
`definitions.json` (users with salted SHA-256 hashes, their passwords and the cluster's Erlang
cookie in OUT_DIR/secrets/, mode 600); docs/deploy.md says how to start them.

TLS (`--tls-dir DIR`): the AMQP and MQTT listeners are TLS-only, and the Erlang distribution between
the nodes and from the CLI tools runs over TLS too (`inet_tls_dist` with `inter_node_tls.config`,
`ssl_dist_optfile`): both ends present a certificate the cluster's CA signed and check the
other's, so a machine with the cookie but without such a certificate cannot join or administer the
cluster (tests/integration/test_rabbitmq_tls.py). `--make-pki` writes a CA and one certificate per
host for a trial (openssl); a deployment uses its own CA.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.events import ID_PATTERN
from contract.topics import ingest_subscriptions

EVENTS_QUEUE = "ioc.events"
CENTRAL_USER = "central"
VHOST = "/"
EXCHANGE = "amq.topic"  # where RabbitMQ's MQTT plugin publishes
TLS_DIR = "/etc/rabbitmq/tls"  # on each node: ca.crt, server.crt, server.key (that host's)
INTER_NODE_TLS_CONFIG = "inter_node_tls.config"  # the ssl_dist_optfile, beside rabbitmq.conf
DIST_PORT = 25672


@dataclass(frozen=True)
class RabbitNode:
    name: str  # the Erlang node name, e.g. rabbit-1@host
    amqp_port: int  # central's ingesters (AMQP 0-9-1)
    mqtt_port: int  # edge nodes (MQTT 3.1.1)
    dist_port: int  # Erlang distribution between the nodes (and the CLI tools)
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class RabbitUsers:
    """Edge node id -> password, and central's password."""

    nodes: dict[str, str] = field(default_factory=dict)
    central_password: str = ""
    central_user: str = CENTRAL_USER


# ------------------------------------------------------------------------------- topics <-> keys


def topic_to_routing_key(topic: str) -> str:
    """The MQTT plugin's mapping (rabbit_mqtt_util:to_amqp): `/` -> `.`, `+` -> `*`."""
    return topic.replace("/", ".").replace("+", "*")


def routing_key_to_topic(key: str) -> str:
    """Back to the MQTT topic (rabbit_mqtt_util:to_mqtt). A topic level with a `.` in it does not
    come back the same, which no topic of ours has (ids are `contract.events.ID_PATTERN`)."""
    return key.replace("*", "+").replace(".", "/")


def event_binding_keys(prefix: str) -> list[str]:
    """The events queue's bindings on amq.topic: everything central ingests, i.e. the topics
    central would subscribe to over MQTT (`contract.topics.ingest_subscriptions`): events
    `<prefix>/<node>/<camera>/events/<type>`, evidence files `.../evidence/<sha256>`, node status
    `<prefix>/<node>/status` and camera health `.../health`. All of them divide among the
    competing ingesters; central's MQTT session subscribes to none of them (the plugin has no
    shared subscriptions: each ingester's own session would get, store and replicate all of them).
    A retained status or health is routed like any publish (the plugin stores it besides)."""
    return [topic_to_routing_key(t) for t in ingest_subscriptions(prefix, None)]


def queue_arguments(replicas: int) -> dict[str, Any]:
    """A quorum queue on `replicas` nodes. No delivery limit: a message central could not store
    (database away) is delivered again until it is, never dropped by the broker."""
    return {"x-queue-type": "quorum", "x-quorum-initial-group-size": replicas}


# ----------------------------------------------------------------------------------- accounts


def _node_name_ok(node: str) -> None:
    if not re.fullmatch(ID_PATTERN, node) or node.startswith(CENTRAL_USER) or node == "alerts":
        raise ValueError(f"node id {node!r}: must match {ID_PATTERN}, not start with 'central', not be 'alerts'")


def node_topic_pattern(prefix: str) -> str:
    """A node's topic permission (write and read) on amq.topic: its own subtree, and only with
    its user name as client id (an AMQP connection has no `{client_id}`: it matches nothing)."""
    p = re.escape(prefix)
    return f"^(?={p}\\.{{client_id}}\\.){p}\\.{{username}}\\."


def node_permissions(node: str) -> dict[str, str]:
    """configure/write/read on resources: amq.topic and its own MQTT subscription queues only."""
    own = f"mqtt-subscription-{re.escape(node)}qos[01]"
    return {"configure": f"^{own}$", "write": f"^(amq\\.topic|{own})$", "read": f"^(amq\\.topic|{own})$"}


def central_permissions(queue: str = EVENTS_QUEUE) -> dict[str, str]:
    q = re.escape(queue)
    mine = "mqtt-subscription-central.*"
    return {"configure": f"^({q}|{mine})$", "write": f"^(amq\\.topic|{q}|{mine})$", "read": f"^(amq\\.topic|{q}|{mine})$"}


def central_topic_permissions(prefix: str) -> dict[str, str]:
    """Reads everything under the prefix; writes police alerts and debug-recording requests."""
    p = re.escape(prefix)
    return {"write": f"^{p}\\.(alerts\\..+|[^.]+\\.[^.]+\\.debug\\.record)$", "read": f"^{p}\\."}


def password_hash(password: str, salt: bytes | None = None) -> str:
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), 4-byte salt."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def definitions(
    users: RabbitUsers,
    prefix: str = "ioc",
    queue: str = EVENTS_QUEUE,
    replicas: int = 3,
    with_queue: bool = True,
) -> dict[str, Any]:
    """A definitions document (`rabbitmqctl import_definitions FILE`): the vhost, the accounts,
    their resource and topic permissions, and — `with_queue` — the events quorum queue and its
    bindings (else central's first ingester declares them). Import it once the cluster has all its
    nodes: a quorum queue declared on a smaller cluster keeps that smaller group."""
    sha = "rabbit_password_hashing_sha256"
    rows = [{"name": users.central_user, "password_hash": password_hash(users.central_password),
             "hashing_algorithm": sha, "tags": []}]  # fmt: skip
    perms = [{"user": users.central_user, "vhost": VHOST, **central_permissions(queue)}]
    topic_perms = [
        {"user": users.central_user, "vhost": VHOST, "exchange": EXCHANGE, **central_topic_permissions(prefix)}
    ]
    for node, password in sorted(users.nodes.items()):
        _node_name_ok(node)
        rows.append({"name": node, "password_hash": password_hash(password), "hashing_algorithm": sha, "tags": []})
        perms.append({"user": node, "vhost": VHOST, **node_permissions(node)})
        pattern = node_topic_pattern(prefix)
        topic_perms.append({"user": node, "vhost": VHOST, "exchange": EXCHANGE, "write": pattern, "read": pattern})
    doc: dict[str, Any] = {
        "vhosts": [{"name": VHOST}],
        "users": rows,
        "permissions": perms,
        "topic_permissions": topic_perms,
    }
    if with_queue:
        doc["queues"] = [
            {"name": queue, "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": queue_arguments(replicas)}
        ]
        doc["bindings"] = [
            {"source": EXCHANGE, "vhost": VHOST, "destination": queue, "destination_type": "queue",
             "routing_key": key, "arguments": {}}
            for key in event_binding_keys(prefix)
        ]  # fmt: skip
    return doc


# ------------------------------------------------------------------------------- node configs


def node_config(node: RabbitNode, *, tls_dir: str | None = None) -> str:
    """rabbitmq.conf for one node. Anonymous MQTT is off (every node logs in with its account);
    `mqtt.durable_queue_type = quorum` makes a persistent MQTT session a quorum queue too, so it
    outlives the node it was made on (central's ingesters keep none: what they store comes from the
    events queue); pause_minority stops a
    node cut off from the others instead of letting it accept what the majority never sees."""
    lines = [
        f"listeners.tcp.default = {node.host}:{node.amqp_port}",
        f"mqtt.listeners.tcp.default = {node.host}:{node.mqtt_port}",
        "mqtt.allow_anonymous = false",
        f"mqtt.vhost = {VHOST}",
        f"mqtt.exchange = {EXCHANGE}",
        "mqtt.durable_queue_type = quorum",
        "loopback_users = none",
        "cluster_partition_handling = pause_minority",
        "log.console = false",
        "log.file.level = info",
    ]
    if tls_dir:
        # TLS-only for the clients; between the nodes: node_env_conf + inter_node_tls_config.
        lines += [
            "listeners.tcp = none",
            "mqtt.listeners.tcp = none",
            f"listeners.ssl.default = {node.host}:{node.amqp_port}",
            f"mqtt.listeners.ssl.default = {node.host}:{node.mqtt_port}",
            f"ssl_options.cacertfile = {tls_dir}/ca.crt",
            f"ssl_options.certfile = {tls_dir}/server.crt",
            f"ssl_options.keyfile = {tls_dir}/server.key",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
        ]
    return "\n".join(lines) + "\n"


ENABLED_PLUGINS = "[rabbitmq_mqtt].\n"


# ------------------------------------------------------------------ TLS between the nodes


def _erl_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def inter_node_tls_config(tls_dir: str, *, ca: str = "ca.crt", cert: str = "server.crt", key: str = "server.key") -> str:
    """The `ssl_dist_optfile` of a node (and of its CLI tools): the Erlang distribution over TLS
    1.2/1.3 with both ends verified against the cluster's CA. `server` is what a node answers with
    when a peer (another node, rabbitmqctl) connects; `fail_if_no_peer_cert` refuses a peer
    without a certificate, `verify_peer` one the CA did not sign. `client` is what it presents
    when it connects out; it checks the peer's certificate against the CA and the host name in the
    peer's node name (`rabbit@rabbit-2`: the certificate must name `rabbit-2`). The cookie is
    still checked on top."""
    files = [f"{{cacertfile, {_erl_string(f'{tls_dir}/{ca}')}}}", f"{{certfile, {_erl_string(f'{tls_dir}/{cert}')}}}",
             f"{{keyfile, {_erl_string(f'{tls_dir}/{key}')}}}"]  # fmt: skip
    common = [*files, "{verify, verify_peer}", "{secure_renegotiate, true}", "{versions, ['tlsv1.3', 'tlsv1.2']}"]
    server = ",\n    ".join([*common, "{fail_if_no_peer_cert, true}"])
    client = ",\n    ".join(common)
    return (
        "%% Erlang distribution over TLS (inet_tls_dist): written by python -m central.rabbitmq_cluster\n"
        f"[{{server, [\n    {server}\n  ]}},\n {{client, [\n    {client}\n  ]}}].\n"
    )


def tls_dist_erl_args(optfile: str) -> str:
    """What makes a node's (or the CLI's) Erlang VM use TLS for the distribution."""
    return f"-proto_dist inet_tls -ssl_dist_optfile {optfile}"


def node_env_conf(host: str, *, optfile: str | None = None, dist_port: int = DIST_PORT) -> str:
    """/etc/rabbitmq/rabbitmq-env.conf of one node: its node name (the peers reach it by `host`),
    the distribution port, and with `optfile` the distribution over TLS for the server and for
    rabbitmqctl & co. (the same file: the CLI connects as a TLS client with the host's
    certificate). Replaces a file that binds the node to localhost."""
    lines = [
        "# /etc/rabbitmq/rabbitmq-env.conf, written by python -m central.rabbitmq_cluster",
        f"NODENAME=rabbit@{host}",
        f"DIST_PORT={dist_port}",
    ]
    if optfile:
        args = tls_dist_erl_args(optfile)
        lines += [f'SERVER_ADDITIONAL_ERL_ARGS="{args}"', f'CTL_ERL_ARGS="{args}"']
    return "\n".join(lines) + "\n"


def generate_pki(folder: Path, hosts: list[str], *, days: int = 825, ca_name: str = "ioc-rabbitmq-ca") -> Path:
    """A CA and one certificate per host (SAN: the host name, localhost, 127.0.0.1), for a trial or
    a test (openssl). Writes `folder/ca.crt`, `folder/ca.key` (keep it off the nodes) and
    `folder/<host>/{ca.crt,server.crt,server.key}`, the files a node's TLS_DIR holds. A certificate
    without extendedKeyUsage serves as TLS server and client, which the distribution needs."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("`openssl` not found: install the Debian package `openssl`")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    if not ca_crt.exists():
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
            "-days", str(days), "-subj", f"/CN={ca_name}")  # fmt: skip
        os.chmod(ca_key, 0o600)
    for host in hosts:
        d = folder / host
        d.mkdir(exist_ok=True)
        key, csr, crt, ext = d / "server.key", d / "server.csr", d / "server.crt", d / "server.ext"
        ext.write_text(f"subjectAltName=DNS:{host},DNS:localhost,IP:127.0.0.1\n", encoding="utf-8")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}")
        run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(crt), "-days", str(days), "-extfile", str(ext))  # fmt: skip
        os.chmod(key, 0o600)
        csr.unlink()
        ext.unlink()
        shutil.copyfile(ca_crt, d / "ca.crt")
    return ca_crt


def local_cluster(ports: list[int], tag: str = "", host: str = "localhost") -> list[RabbitNode]:
    """Three nodes on one machine: `ports` holds 9 free ports (amqp, mqtt, dist for each)."""
    if len(ports) != 9:
        raise ValueError("9 ports: amqp, mqtt and dist for each of 3 nodes")
    return [
        RabbitNode(f"ioc{i + 1}{tag}@{host}", ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]) for i in range(3)
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--node", action="append", default=[], help="an edge node id (repeatable): its account")
    ap.add_argument("--prefix", default="ioc")
    ap.add_argument("--queue", default=EVENTS_QUEUE)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--hosts", default="rabbit-1,rabbit-2,rabbit-3", help="the three nodes' host names")
    ap.add_argument(
        "--tls-dir", default=None, metavar="DIR",
        help=f"TLS everywhere: AMQPS on 5671 and MQTTS on 8883 only, the Erlang distribution over TLS; DIR on each "
        f"node holds its ca.crt, server.crt, server.key (e.g. {TLS_DIR})",
    )  # fmt: skip
    ap.add_argument("--make-pki", action="store_true", help="with --tls-dir: a trial CA and host certificates in OUT_DIR/tls/")
    args = ap.parse_args(argv)
    out: Path = args.out_dir
    (out / "secrets").mkdir(parents=True, exist_ok=True)
    os.chmod(out / "secrets", 0o700)
    passwords: dict[str, str] = {}
    for name in [CENTRAL_USER, *args.node]:
        if name != CENTRAL_USER:
            _node_name_ok(name)
        path = out / "secrets" / f"{name}.password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24) + "\n")
            os.chmod(path, 0o600)
        passwords[name] = path.read_text().strip()
    cookie = out / "secrets" / "erlang.cookie"  # one for all nodes: /var/lib/rabbitmq/.erlang.cookie, mode 400
    if not cookie.exists():
        cookie.write_text(secrets.token_hex(24))
        os.chmod(cookie, 0o400)
    users = RabbitUsers({n: passwords[n] for n in args.node}, central_password=passwords[CENTRAL_USER])
    hosts = args.hosts.split(",")
    tls = args.tls_dir is not None
    optfile = f"/etc/rabbitmq/{INTER_NODE_TLS_CONFIG}" if tls else None
    for host in hosts:
        node = RabbitNode(f"rabbit@{host}", 5671 if tls else 5672, 8883 if tls else 1883, DIST_PORT, host="0.0.0.0")
        (out / f"{host}.rabbitmq.conf").write_text(node_config(node, tls_dir=args.tls_dir))
        (out / f"{host}.rabbitmq-env.conf").write_text(node_env_conf(host, optfile=optfile))
    if tls:
        (out / INTER_NODE_TLS_CONFIG).write_text(inter_node_tls_config(args.tls_dir))
        if args.make_pki:
            generate_pki(out / "tls", hosts)
    elif args.make_pki:
        ap.error("--make-pki needs --tls-dir")
    (out / "enabled_plugins").write_text(ENABLED_PLUGINS)
    doc = definitions(users, args.prefix, args.queue, args.replicas, with_queue=True)
    (out / "definitions.json").write_text(json.dumps(doc, indent=2) + "\n")
    os.chmod(out / "definitions.json", 0o600)
    extra = f", {INTER_NODE_TLS_CONFIG}" + (", tls/<host>/" if args.make_pki else "") if tls else ""
    print(f"wrote {out}: <host>.rabbitmq.conf, <host>.rabbitmq-env.conf{extra}, enabled_plugins, definitions.json, secrets/")


if __name__ == "__main__":
    main()
