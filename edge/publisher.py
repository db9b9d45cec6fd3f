"""MQTT v5 publisher that drains the outbox at QoS 1, in order, deleting a message only on a
successful PUBACK. A PUBACK with a failure reason code (e.g. "Not authorized" under the broker's
ACL) leaves the message in the outbox, counted in `refused`, and it is sent again after a backoff.

Retained state (node status, camera health) is published directly, not through the outbox: only
the latest value matters, and it is re-sent on every reconnect.

The same connection carries the node's subscriptions (`add_subscription`: the signal feed, debug
recording requests): the broker binds a node's account to ONE client id, so a second connection
would be refused (or would take over this one's session). They are made again on every connect
(clean start), and a refused one is kept in `status()["subscriptions_refused"]` and logged.

PUBACK timeout (`puback_timeout_s`, node config `mqtt.puback_timeout_s`): a broker node can keep
the connection open, even answer pings, yet never acknowledge (a RabbitMQ node in a minority
partition or stuck on its queue's confirms, a half-open connection under a long keep-alive). When
the oldest unanswered message has waited that long for its PUBACK — counted from when every
message sent before it was answered, and from the connection's start, so a slow uplink that still
delivers, one message after the other, is not mistaken for a stuck broker — the publisher counts it
(`puback_timeouts`), drops the connection and reconnects to the next URL (`failover_urls`). The
unanswered messages never left the outbox: paho sends them again on the new connection (QoS 1,
at-least-once; central stores by event id). One warning per episode, one line when PUBACKs come again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contract.mqtt import MqttClient, MqttSettings, SubscribeResult, Will
from edge.outbox import Outbox

log = logging.getLogger(__name__)

HOLD_MIN_S, HOLD_MAX_S = 1.0, 30.0
REFUSED_MAX_S = 300.0  # a refusal (ACL) is fixed by a person: retry it, but not a backlog every few seconds
# The default of `mqtt.puback_timeout_s` (edge/config.py gives the reasons for 30 s).
PUBACK_TIMEOUT_S = 30.0


class MqttPublisher:
    """`settings`: an `MqttSettings` (its `will`, if any, is used), or a broker URL with the client
    id and the other arguments spelled out. `puback_timeout_s`: see the module doc (None: wait for
    ever, as before the timeout existed)."""

    def __init__(
        self,
        outbox: Outbox,
        settings: MqttSettings | str,
        client_id: str | None = None,
        *,
        will: tuple[str, bytes] | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive_s: int = 30,
        window: int = 100,
        ca_file: str | None = None,
        puback_timeout_s: float | None = PUBACK_TIMEOUT_S,
    ) -> None:
        self.outbox = outbox
        self.window = window
        if puback_timeout_s is not None and puback_timeout_s <= 0:
            raise ValueError(f"puback_timeout_s must be > 0 (or None: wait for ever), got {puback_timeout_s!r}")
        self.puback_timeout_s = puback_timeout_s
        if isinstance(settings, str):
            if client_id is None:
                raise TypeError("MqttPublisher(outbox, url, client_id): client_id is missing")
            settings = MqttSettings(
                settings, client_id, username=username, password=password, ca_file=ca_file,
                keepalive_s=keepalive_s, will=Will(will[0], will[1]) if will else None,
            )
        settings = replace(settings, clean_start=True, max_inflight=window, reconnect_min_s=1, reconnect_max_s=30)
        self.host, self.port = settings.host, settings.port
        self.mqtt = MqttClient(
            settings, on_connect=self._on_connect, on_disconnect=self._on_disconnect, on_publish=self._on_publish,
            on_subscribed=self._on_subscribed,
        )
        self.client = self.mqtt.client
        self.connected = self.mqtt.connected
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._retained: dict[str, bytes] = {}
        # topic filter -> (qos, who wants to hear a refusal): subscribed again on every connect.
        self._subs: dict[str, tuple[int, Callable[[SubscribeResult], None] | None]] = {}
        self._thread = threading.Thread(target=self._pump, name="mqtt-publisher", daemon=True)
        self.acked = 0
        self.refused = 0  # PUBACKs with a failure code (e.g. not authorized): kept and sent again later
        self.unheard = 0  # PUBACKs saying "no matching subscribers": kept and sent again
        self.refused_pending = 0  # outbox messages whose last PUBACK was a refusal
        self.puback_timeouts = 0  # connections dropped because a PUBACK did not come within puback_timeout_s
        self._connections = 0  # successful CONNACKs so far (the network thread counts them)
        self._connected_at = 0.0  # monotonic time of the latest one

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.mqtt.start()
        self._thread.start()

    def stop(self, final_state: tuple[str, bytes] | None = None, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if final_state and self.connected.is_set():
            info = self.client.publish(final_state[0], final_state[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        self.mqtt.stop()

    def notify(self) -> None:
        """New messages are in the outbox."""
        self._wake.set()

    def publish_state(self, topic: str, payload: bytes) -> None:
        with self._state_lock:
            self._retained[topic] = payload
        if self.connected.is_set():
            self.client.publish(topic, payload, qos=1, retain=True)

    def add_subscription(
        self,
        topic_filter: str,
        on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None],
        *,
        qos: int = 1,
        on_subscribed: Callable[[SubscribeResult], None] | None = None,
    ) -> None:
        """Hear `topic_filter` on this connection: `on_message` (paho's arguments, network thread)
        gets the messages matching it; `on_subscribed` each SUBACK for it (a refusal included)."""
        self.client.message_callback_add(topic_filter, on_message)
        with self._state_lock:
            self._subs[topic_filter] = (qos, on_subscribed)
        if self.connected.is_set():  # else the next connect subscribes
            self.mqtt.subscribe([topic_filter], qos=qos)

    def status(self) -> dict:
        """For the node's status: the connection, refused subscriptions and publishes."""
        return {
            **self.mqtt.status(), "refused_pending": self.refused_pending, "puback_timeouts": self.puback_timeouts,
        }

    # -- paho callbacks (network thread) -----------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.error("mqtt connect refused by %s: %s", self.mqtt.broker, reason_code)
            return
        self._connected_at = time.monotonic()
        self._connections += 1
        log.info("mqtt connected to %s", self.mqtt.broker)
        with self._state_lock:
            for topic, payload in self._retained.items():
                client.publish(topic, payload, qos=1, retain=True)
            subs = dict(self._subs)
        for topic_filter, (qos, _hook) in subs.items():
            self.mqtt.subscribe([topic_filter], qos=qos)
        self._wake.set()

    def _on_subscribed(self, result: SubscribeResult) -> None:
        if result.refused:
            log.error("mqtt subscription refused by the broker: %s", result.refused)
        with self._state_lock:
            hooks = [self._subs.get(t, (0, None))[1] for t in result.topics]
        for hook in hooks:
            if hook is not None:
                hook(result)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():  # still set in this hook: a connection ended, not a failed try
            log.warning("mqtt disconnected from %s: %s (will reconnect)", self.mqtt.broker, reason_code)

    def _on_publish(self, client, userdata, mid: int, reason_code: ReasonCode, properties) -> None:
        self._wake.set()

    def _drop_connection(self) -> None:
        """End the current connection as if the network had: paho's network thread sees the socket
        closed, calls on_disconnect (the shared client moves on to the next broker URL) and
        reconnects after its backoff, sending the unanswered QoS 1 messages again. (paho's own
        `disconnect()` would stop reconnecting.) The plain socket's shutdown, not SSLSocket's, which
        would unwrap TLS under the network thread's feet."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    # -- the pump ------------------------------------------------------------------------------------
    def _pump(self) -> None:
        inflight: dict[int, mqtt.MQTTMessageInfo] = {}
        retry: dict[int, tuple[float, float]] = {}  # refused seq -> (when to send again, its backoff)
        last_seq = 0
        hold_until, hold_s = 0.0, HOLD_MIN_S
        # The PUBACK timeout's clock (see the module doc): `inflight` keeps publish order (a dict;
        # a refused message sent again goes to its end), so its first key is the oldest unanswered
        # message, and `head_since` is when it became that (sent, or the one before it answered).
        head: int | None = None
        head_since = 0.0
        dropped = 0  # the connection (by its count) dropped for a timeout: not timed out twice
        stalled_at: float | None = None  # an episode: the first timeout since PUBACKs last came
        timeouts_in_episode = 0
        while not self._stop.is_set():
            answered = [(seq, ack) for seq, info in inflight.items() if (ack := self.mqtt.puback(info)) is not None]
            if answered and stalled_at is not None:
                log.info(
                    "mqtt PUBACKs again from %s after %d PUBACK timeout(s)", self.mqtt.broker, timeouts_in_episode,
                    extra={"fields": {
                        "event": "mqtt_puback_resumed", "broker": self.mqtt.broker,
                        "timeouts": timeouts_in_episode, "stalled_s": round(time.monotonic() - stalled_at, 1),
                    }},
                )
                stalled_at, timeouts_in_episode = None, 0
            if answered:
                acked, unheard = [], []
                for s, ack in answered:
                    info = inflight.pop(s)
                    if not ack.ok:
                        # Refused (e.g. not authorized by the broker's ACL): it stays in the outbox,
                        # is not counted as delivered, and is sent again after a backoff of its own,
                        # without holding back the messages behind it.
                        self.refused += 1
                        delay = min(REFUSED_MAX_S, retry[s][1] * 2) if s in retry else HOLD_MIN_S
                        retry[s] = (time.monotonic() + delay, delay)
                        log.error(
                            "broker refused outbox message seq=%s (mid %s): %s; kept, retry in %.0f s",
                            s, info.mid, ack.reason, delay,
                        )
                    elif ack.no_subscribers:
                        retry.pop(s, None)
                        unheard.append(s)
                    else:
                        retry.pop(s, None)
                        acked.append(s)
                self.outbox.ack(acked)
                self.acked += len(acked)
                if acked:
                    hold_s = HOLD_MIN_S
                if unheard:
                    # Accepted, but nobody subscribed (e.g. a restarted broker that lost central's
                    # shared subscription): the broker drops such a message, so keep it and send it
                    # again once central is back. Central stores by event id: a repeat is harmless.
                    self.unheard += len(unheard)
                    last_seq = min(last_seq, min(unheard) - 1)
                    hold_until = time.monotonic() + hold_s
                    log.warning(
                        "no subscriber for %d outbox message(s) (is central subscribed?); kept, retry in %.0f s",
                        len(unheard), hold_s,
                    )
                    hold_s = min(HOLD_MAX_S, hold_s * 2)
            self.refused_pending = len(retry)
            if self.puback_timeout_s is not None and inflight:
                now = time.monotonic()
                first = next(iter(inflight))
                if first != head:
                    head, head_since = first, now
                connection = self._connections
                waited = now - max(head_since, self._connected_at)
                if self.connected.is_set() and connection != dropped and waited >= self.puback_timeout_s:
                    dropped = connection
                    self.puback_timeouts += 1
                    timeouts_in_episode += 1
                    if stalled_at is None:
                        stalled_at = now
                        log.warning(
                            "no PUBACK from %s for %.0f s (outbox message seq=%s, %d unanswered): dropping the "
                            "connection, reconnecting to the next broker URL; the messages stay in the outbox",
                            self.mqtt.broker, waited, first, len(inflight),
                            extra={"fields": {
                                "event": "mqtt_puback_timeout", "broker": self.mqtt.broker, "seq": first,
                                "unanswered": len(inflight), "waited_s": round(waited, 1),
                                "puback_timeout_s": self.puback_timeout_s,
                            }},
                        )
                    self._drop_connection()
            else:
                head = None
            if self.connected.is_set() and len(inflight) < self.window and time.monotonic() >= hold_until:
                now = time.monotonic()
                for s in [s for s, (due, _d) in retry.items() if due <= now and s not in inflight]:
                    if len(inflight) >= self.window:
                        break
                    again = self.outbox.pending(after_seq=s - 1, limit=1)
                    if again and again[0].seq == s:
                        inflight[s] = self.mqtt.publish(again[0].topic, again[0].payload, qos=again[0].qos)
                    else:  # gone from the outbox meanwhile
                        retry.pop(s, None)
                for m in self.outbox.pending(after_seq=last_seq, limit=self.window - len(inflight)):
                    if m.seq not in inflight and m.seq not in retry:
                        inflight[m.seq] = self.mqtt.publish(m.topic, m.payload, qos=m.qos)
                    last_seq = m.seq
            self._wake.wait(0.25)
            self._wake.clear()
