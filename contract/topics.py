"""The MQTT topic tree (documented in the README). One place builds and parses topics."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PREFIX = "ioc"


def event_topic(prefix: str, node: str, camera: str, violation_type: str) -> str:
    """QoS 1, not retained: one message per event."""
    return f"{prefix}/{node}/{camera}/events/{violation_type}"


def evidence_topic(prefix: str, node: str, camera: str, sha256: str) -> str:
    """QoS 1, not retained: the bytes of one evidence file, named by its sha256."""
    return f"{prefix}/{node}/{camera}/evidence/{sha256}"


def node_status_topic(prefix: str, node: str) -> str:
    """Retained; the broker publishes the node's last will ('offline') here."""
    return f"{prefix}/{node}/status"


def camera_health_topic(prefix: str, node: str, camera: str) -> str:
    """Retained: streaming / reconnecting / stalled, analysis fps, last frame time."""
    return f"{prefix}/{node}/{camera}/health"


def police_alert_topic(prefix: str, district: str, violation_type: str) -> str:
    """QoS 1, not retained: a police alert for one place (a topic-safe slug: the routing area of the
    report's ward, else its legacy district label, else its ward) and violation type. Subscribe
    `<prefix>/alerts/<area or ward>/#` for one area's or ward's alerts."""
    return f"{prefix}/alerts/{district}/{violation_type}"


def signal_topic(prefix: str, node: str, camera: str, head: str) -> str:
    """A signal controller's state for one signal head of a camera's scene: payload
    `{"state": "red"|"yellow"|"green"|"unknown"}` (or the bare word). Published on every change and
    at least every couple of seconds: a state older than the head's `controller_timeout_s` is unknown."""
    return f"{prefix}/{node}/{camera}/signal/{head}"


def signal_subscription(prefix: str, node: str) -> str:
    """What an edge node subscribes to for its cameras' signal heads."""
    return f"{prefix}/{node}/+/signal/+"


def ingest_subscriptions(prefix: str, share_group: str | None, events: bool = True) -> list[str]:
    """What central subscribes to; a shared group splits the load between ingesters. Without
    `events` (they come from a JetStream stream instead) the rest: evidence, status, health."""
    topics = [f"{prefix}/+/+/evidence/+", f"{prefix}/+/status", f"{prefix}/+/+/health"]
    if events:
        topics.insert(0, f"{prefix}/+/+/events/+")
    if share_group:
        return [f"$share/{share_group}/{t}" for t in topics]
    return topics


@dataclass(frozen=True)
class ParsedTopic:
    kind: str  # "event" | "evidence" | "status" | "health"
    node: str
    camera: str | None = None
    leaf: str | None = None  # violation type or sha256


def parse_topic(prefix: str, topic: str) -> ParsedTopic | None:
    parts = topic.split("/")
    if not parts or parts[0] != prefix:
        return None
    rest = parts[1:]
    if len(rest) == 2 and rest[1] == "status":
        return ParsedTopic("status", rest[0])
    if len(rest) == 3 and rest[2] == "health":
        return ParsedTopic("health", rest[0], rest[1])
    if len(rest) == 4 and rest[2] == "events":
        return ParsedTopic("event", rest[0], rest[1], rest[3])
    if len(rest) == 4 and rest[2] == "evidence":
        return ParsedTopic("evidence", rest[0], rest[1], rest[3])
    return None


_SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """`mqtt://host[:port]` or `mqtts://host[:port]` -> (host, port, tls). Raises ValueError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts:// (got {url!r})")
    default_port, tls = _SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise ValueError(f"MQTT URL has no host (got {url!r})")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError(f"MQTT URL has an invalid port (got {url!r})") from None
    if parts.path not in ("", "/"):
        raise ValueError(f"MQTT URL must not have a path (got {url!r})")
    return host, port, tls
