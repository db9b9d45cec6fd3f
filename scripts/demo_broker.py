"""The demo's broker: Mosquitto with the access control `python -m central.broker_security`
generates (the dynamic-security plugin), not an anonymous one.

One account for central, one for the demo node (bound to its node id as client id, publishing
only under its own topics, no `$share` subscriptions), passwords in mode-600 files the two
configs point at with `mqtt.password_file`. Plain MQTT on 127.0.0.1 (no TLS: the demo never
leaves this machine); a deployment adds TLS with the same tool (deploy/README.md).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from central.broker_security import CENTRAL_USER, dynsec_broker_files
from edge.local_broker import LocalMosquitto


@dataclass(frozen=True)
class DemoBroker:
    broker: LocalMosquitto
    central_user: str
    central_password_file: Path
    node_password_file: Path


def _secret(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return path


def demo_broker(state: Path, node_id: str, share_group: str = "central") -> DemoBroker:
    """A not yet started LocalMosquitto (use it as a context manager) secured for `node_id`.
    Raises BrokerError/RuntimeError when Mosquitto or its dynamic-security plugin is missing."""
    central_pw, node_pw = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    security = dynsec_broker_files(
        state / "broker-security", {node_id: node_pw}, central_pw, tls=False, share_group=share_group
    )
    secrets_dir = state / "broker-security" / "secrets"
    return DemoBroker(
        LocalMosquitto(state_dir=state / "broker", security=security),
        CENTRAL_USER,
        _secret(secrets_dir / f"{CENTRAL_USER}.password", central_pw),
        _secret(secrets_dir / f"{node_id}.password", node_pw),
    )
