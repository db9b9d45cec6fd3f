"""The one MQTT client both sides use: paho 2.x (callback API v2), MQTT v5, built from `MqttSettings`.

Edge (outbox publisher, signal feed) and central (ingester, alert dispatcher) each used to build
their own paho client; this is the one place that turns a URL, a client id, credentials, a CA file,
keep-alive, session and last-will settings into a connected client that reconnects with backoff,
and that reads the broker's reason codes:

- CONNACK: `last_connack` / `connected`;
- SUBACK: each granted QoS >= 0x80 (e.g. "Not authorized" under an ACL) is a refused
  subscription, kept in `refused_subscriptions` (and `status()`) and handed to `on_subscribed`;
- PUBACK: `puback(info)` / `publish_wait()` return an `Ack` whose `ok` is False when the broker
  refused the message. paho's `is_published()` alone is true for a refused message too.

Unlike the rest of `contract` this module does network I/O; it lives here because both edge and
central import `contract`, and it knows nothing of either side's config files (each side's config
model builds the `MqttSettings`, resolving its password with `resolve_password`).
Logging stays with the callers, in their own log format.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contract.configfile import ConfigError
from contract.topics import parse_mqtt_url

SUCCESS = 0x00
NO_MATCHING_SUBSCRIBERS = 0x10  # a success code in MQTT v5, yet the message reached nobody
FAILURE_MIN = 0x80  # MQTT v5: every reason code from 0x80 up is a failure


def reason_value(code: ReasonCode | int) -> int:
    """The numeric reason code of a paho ReasonCode (or an int, returned as is)."""
    return code if isinstance(code, int) else int(code.value)


def reason_ok(code: ReasonCode | int) -> bool:
    """Whether a CONNACK, SUBACK (per topic) or PUBACK reason code means success (< 0x80)."""
    return reason_value(code) < FAILURE_MIN


def reason_text(code: ReasonCode | int, packet: int = PacketTypes.PUBACK) -> str:
    """'Not authorized' for 0x87; the name MQTT v5 gives the code in that packet type."""
    if not isinstance(code, int):
        return str(code)
    try:
        return str(ReasonCode(packet, identifier=code))
    except (KeyError, ValueError):
        return f"reason code 0x{code:02x}"


def refused_codes(codes: Iterable[ReasonCode | int]) -> list[ReasonCode | int]:
    """The failures among a SUBACK's reason codes (one per topic filter)."""
    return [c for c in codes if not reason_ok(c)]


@dataclass(frozen=True)
class Ack:
    """The broker's answer to one QoS 1 publish (PUBACK); QoS 0 and plain success are code 0."""

    code: int = SUCCESS

    @property
    def ok(self) -> bool:
        return reason_ok(self.code)

    @property
    def no_subscribers(self) -> bool:
        """Accepted, but nobody was subscribed: the broker dropped it."""
        return self.code == NO_MATCHING_SUBSCRIBERS

    @property
    def reason(self) -> str:
        return reason_text(self.code)


def resolve_password(env_var: str | None, password_file: Path | None, value: str | None, *, key: str) -> str | None:
    """The broker password: env `env_var` if set, else the first line of `password_file`, else
    `value`. A file that cannot be read is a ConfigError naming `key`."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    if password_file is not None:
        from contract.yaml_safe import MAX_SECRET_BYTES, FileProblem, read_regular_file

        try:
            # A regular file under a cap: /dev/zero or a FIFO here must not hang or exhaust memory.
            return read_regular_file(password_file, max_bytes=MAX_SECRET_BYTES).decode("utf-8").strip()
        except (OSError, FileProblem, UnicodeDecodeError) as e:
            raise ConfigError(f"{key}: cannot read {password_file}: {e}") from None
    return value


@dataclass(frozen=True)
class Will:
    """Last will: what the broker publishes for a client that vanishes without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class MqttSettings:
    """Everything needed to build and connect one client. `url` is mqtt://host[:port] or
    mqtts://host[:port] (TLS, checked against `ca_file`, else the system CAs)."""

    url: str
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | Path | None = None
    keepalive_s: int = 30
    clean_start: bool = True
    session_expiry_s: int | None = None  # None: the session ends with the connection
    will: Will | None = None
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    manual_ack: bool = False  # the caller acks each received QoS 1 message itself
    max_inflight: int | None = None
    # Other nodes of a broker cluster: when the connection to one ends or a try fails, the next is
    # tried (round robin, same scheme). "3.1.1" for brokers without MQTT 5 (NATS, RabbitMQ's plugin).
    failover_urls: tuple[str, ...] = ()
    protocol: str = "5"
    # From `url` (a bad one is a ValueError here, before anything connects).
    host: str = field(init=False, repr=False)
    port: int = field(init=False, repr=False)
    tls: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in zip(("host", "port", "tls"), parse_mqtt_url(self.url), strict=True):
            object.__setattr__(self, name, value)
        for other in self.failover_urls:
            if parse_mqtt_url(other)[2] != self.tls:
                raise ValueError(f"failover URL {other!r}: every broker URL must use the same scheme as {self.url!r}")
        if self.protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol {self.protocol!r}: 5 or 3.1.1")
        if self.reconnect_min_s < 1 or self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect delays: need 1 <= reconnect_min_s <= reconnect_max_s")

    @property
    def brokers(self) -> list[tuple[str, int]]:
        """(host, port) of every broker URL, the main one first."""
        return [(self.host, self.port)] + [parse_mqtt_url(u)[:2] for u in self.failover_urls]


def build_client(s: MqttSettings) -> mqtt.Client:
    """A paho client configured from `s` (not connected; no callbacks)."""
    if s.protocol == "3.1.1":
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=mqtt.MQTTv311, manual_ack=s.manual_ack,
            clean_session=s.clean_start,
        )
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=mqtt.MQTTv5, manual_ack=s.manual_ack)
    if s.username:
        c.username_pw_set(s.username, s.password)
    if s.tls:
        c.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None)
    if s.will is not None:
        c.will_set(s.will.topic, s.will.payload, qos=s.will.qos, retain=s.will.retain)
    if s.max_inflight is not None:
        c.max_inflight_messages_set(s.max_inflight)
    c.reconnect_delay_set(min_delay=s.reconnect_min_s, max_delay=s.reconnect_max_s)
    return c


def connect_properties(s: MqttSettings) -> Properties | None:
    if s.session_expiry_s is None or s.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = s.session_expiry_s
    return props


@dataclass(frozen=True)
class SubscribeResult:
    """One SUBACK: the topic filters of that SUBSCRIBE and those the broker refused, with why."""

    topics: list[str]
    refused: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.refused


Hook = Callable[..., Any]


class MqttClient:
    """A paho client built from `MqttSettings` that tracks its broker's reason codes.

    The hooks take paho's own (callback API v2) arguments, except `on_subscribed(SubscribeResult)`.
    They run on paho's network thread: `connected` is already set in `on_connect` (after a
    successful CONNACK) and still set in `on_disconnect` when an established connection ended. `start()` connects in the background and keeps
    reconnecting (backoff `reconnect_min_s`..`reconnect_max_s`), the first connection included.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        on_connect: Hook | None = None,
        on_connect_fail: Hook | None = None,
        on_disconnect: Hook | None = None,
        on_message: Hook | None = None,
        on_publish: Hook | None = None,
        on_subscribed: Callable[[SubscribeResult], None] | None = None,
        on_unsubscribe: Hook | None = None,
    ) -> None:
        self.settings = settings
        self.client = build_client(settings)
        self.connected = threading.Event()
        self.last_connack: str | None = None
        self.refused_subscriptions: dict[str, str] = {}  # topic filter -> reason, this connection
        self.refused_publishes = 0
        self._hooks = {"connect": on_connect, "disconnect": on_disconnect, "publish": on_publish}
        self._on_subscribed = on_subscribed
        # mid -> PUBACK code, only for codes other than plain success. Written by the network
        # thread before paho marks the message published, so `puback()` always finds it; a mid
        # reused later overwrites (or clears) it, so the map never outgrows the 65535 mids.
        self._acks: dict[int, int] = {}
        self._sub_topics: dict[int, list[str]] = {}
        self._brokers = settings.brokers
        self._broker = 0  # index of the broker tried now
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        self._on_connect_fail_hook = on_connect_fail
        c.on_connect_fail = self._on_connect_fail
        if on_message is not None:
            c.on_message = on_message
        if on_unsubscribe is not None:
            c.on_unsubscribe = on_unsubscribe

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> MqttClient:
        s = self.settings
        if s.protocol == "5":
            self.client.connect_async(
                s.host, s.port, keepalive=s.keepalive_s, clean_start=s.clean_start, properties=connect_properties(s)
            )
        else:
            self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self.client.loop_start()
        return self

    @property
    def broker(self) -> str:
        """host:port of the broker connected (or being tried) now."""
        host, port = self._brokers[self._broker]
        return f"{host}:{port}"

    def _next_broker(self) -> None:
        """Try the cluster's next node on the next (re)connect. paho's reconnect reads its host and
        port each time; its `host` setter refuses while the lost connection is being cleaned up,
        though the socket is gone, so the fields are set directly."""
        if len(self._brokers) < 2:
            return
        self._broker = (self._broker + 1) % len(self._brokers)
        host, port = self._brokers[self._broker]
        self.client._host, self.client._port = host, port  # noqa: SLF001 (see above)

    def stop(self, properties: Properties | None = None) -> None:
        self.client.disconnect(properties=properties)
        self.client.loop_stop()

    # -- publish ----------------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_NO_CONN and qos > 0:
            # The connection dropped just now: paho keeps a QoS 1 message and sends it once
            # reconnected, and its PUBACK completes `info`. Left as NO_CONN, `is_published()`
            # would raise for good instead.
            info.rc = mqtt.MQTT_ERR_SUCCESS
        return info

    def puback(self, info: mqtt.MQTTMessageInfo) -> Ack | None:
        """The broker's answer to a publish; None while it has not come (yet). A message paho
        did not take (its queue full, QoS 0 while disconnected) is a failure, code 0x80."""
        try:
            if not info.is_published():
                return None
        except (ValueError, RuntimeError):
            return Ack(FAILURE_MIN)
        return Ack(self._acks.pop(info.mid, SUCCESS))

    def publish_wait(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout: float = 5.0
    ) -> Ack | None:
        """Publish and wait up to `timeout` for the PUBACK; None when none came (not connected,
        queue full, timed out). paho may still send the message after a reconnect."""
        info = self.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return None
        return self.puback(info)

    # -- subscribe ------------------------------------------------------------------------------
    def subscribe(self, topics: Iterable[str], qos: int = 1) -> int:
        """Subscribe to topic filters; the SUBACK goes to `on_subscribed`. Call it from a hook
        (the network thread) so the SUBACK cannot overtake it."""
        topics = list(topics)
        rc, mid = self.client.subscribe([(t, qos) for t in topics])
        if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._sub_topics[mid] = topics
        return mid or 0

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected.is_set(),
            "connack": self.last_connack,
            "subscriptions_refused": dict(self.refused_subscriptions),
            "publishes_refused": self.refused_publishes,
        }

    # -- paho callbacks (network thread) ------------------------------------------------------------
    def _call(self, name: str, *args: Any) -> None:
        hook = self._hooks[name]
        if hook is not None:
            hook(*args)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self.last_connack = str(reason)
        if reason_ok(reason):
            self.refused_subscriptions.clear()  # this connection subscribes afresh
            self.connected.set()
        self._call("connect", client, userdata, flags, reason, props)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        # The hook still sees `connected` set when a connection ended (not when a try failed).
        self._call("disconnect", client, userdata, flags, reason, props)
        self.connected.clear()
        self._next_broker()  # that node went away (or refused): the next one, if there are others

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._next_broker()
        if self._on_connect_fail_hook is not None:
            self._on_connect_fail_hook(client, userdata)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any) -> None:
        value = reason_value(reason)
        if value == SUCCESS:
            self._acks.pop(mid, None)
        else:
            self._acks[mid] = value
        if value >= FAILURE_MIN:
            self.refused_publishes += 1
        self._call("publish", client, userdata, mid, reason, props)

    def _on_subscribe(self, _client: mqtt.Client, _ud: Any, mid: int, reasons: list[ReasonCode], _props: Any) -> None:
        topics = self._sub_topics.pop(mid, [])
        refused: dict[str, str] = {}
        for i, code in enumerate(reasons):
            topic = topics[i] if i < len(topics) else f"#{i}"
            if reason_ok(code):
                self.refused_subscriptions.pop(topic, None)
            else:
                refused[topic] = reason_text(code, PacketTypes.SUBACK)
        self.refused_subscriptions.update(refused)
        if self._on_subscribed is not None:
            self._on_subscribed(SubscribeResult(topics, refused))
