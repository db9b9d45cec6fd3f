"""Signal states from a signal controller over MQTT, for heads configured with `source: controller`.

Subscribes to `<prefix>/<node>/+/signal/+` (contract.topics.signal_topic); keeps the latest state
of each (camera, head) with the wall time it arrived. The camera thread applies them to its
analyzer's signal board before each frame (`apply`), converting the arrival time to the frame
clock, so the board's timeout (`controller_timeout_s`) turns a silent controller into 'unknown'.

A live node hears it on its one MQTT connection (`SignalFeed.on(publisher, ...)`): the broker's
dynamic security binds the node's account to one client id, so a second connection for the feed
would be refused. Given settings or a URL instead, the feed opens a connection of its own (tools).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from contract.mqtt import MqttClient, MqttSettings, SubscribeResult
from contract.topics import signal_subscription

if TYPE_CHECKING:
    from edge.publisher import MqttPublisher
from edge.rules.signals import SignalState, signal_board

log = logging.getLogger(__name__)


def parse_signal_payload(payload: bytes) -> SignalState | None:
    """`{"state": "red"}` or `red` -> SignalState; anything else -> None (ignored)."""
    try:
        text = payload.decode("utf-8").strip()
        value = json.loads(text) if text.startswith("{") else text
        if isinstance(value, dict):
            value = value.get("state")
        return SignalState(str(value).lower())
    except (UnicodeDecodeError, ValueError, TypeError):
        return None


class SignalFeed:
    """`settings`: an `MqttSettings`, or a broker URL with the client id and credentials spelled out."""

    def __init__(
        self, settings: MqttSettings | str, client_id: str | None, prefix: str, node: str, *,
        username: str | None = None, password: str | None = None, ca_file: str | None = None,
    ) -> None:
        self.prefix, self.node = prefix, node
        if isinstance(settings, str):
            if client_id is None:
                raise TypeError("SignalFeed(url, client_id, ...): client_id is missing")
            settings = MqttSettings(settings, client_id, username=username, password=password, ca_file=ca_file)
        self.host, self.port = settings.host, settings.port
        self.shared: MqttPublisher | None = None
        self.mqtt: MqttClient | None = MqttClient(
            settings, on_connect=self._on_connect, on_message=self._on_message, on_subscribed=self._on_subscribed
        )
        self.client = self.mqtt.client
        self._init_state()

    @classmethod
    def on(cls, connection: MqttPublisher, prefix: str, node: str) -> SignalFeed:
        """A feed on the node's one connection (its publisher): subscribed there, on every connect."""
        feed = cls.__new__(cls)
        feed.prefix, feed.node = prefix, node
        feed.host, feed.port = connection.host, connection.port
        feed.shared, feed.mqtt = connection, None
        feed.client = connection.client
        feed._init_state()
        connection.add_subscription(
            signal_subscription(prefix, node), feed._on_message, qos=1, on_subscribed=feed._on_subscribed
        )
        return feed

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self.latest: dict[tuple[str, str], tuple[SignalState, float]] = {}  # (camera, head) -> (state, wall)
        self.received = 0

    def start(self) -> None:
        if self.mqtt is not None:  # a shared connection is started by its owner
            self.mqtt.start()

    def stop(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()

    def status(self) -> dict:
        """For the node's status: connected, and the subscriptions the broker refused."""
        conn = self.mqtt.status() if self.mqtt is not None else self.shared.mqtt.status()  # type: ignore[union-attr]
        return {**conn, "received": self.received}

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("signal feed: mqtt connect refused", extra={"fields": {"reason": str(reason_code)}})
            return
        if self.mqtt is not None:
            self.mqtt.subscribe([signal_subscription(self.prefix, self.node)], qos=1)

    def _on_subscribed(self, result: SubscribeResult) -> None:
        if not result.ok:
            # Heads fed by this controller turn 'unknown' after their timeout: say why, loudly.
            log.error("signal feed: subscription refused by the broker", extra={"fields": {"refused": result.refused}})

    def _on_message(self, client, userdata, msg) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 5 or parts[0] != self.prefix or parts[1] != self.node or parts[3] != "signal":
            return
        state = parse_signal_payload(msg.payload)
        if state is None:
            log.warning("signal payload not understood", extra={"fields": {"topic": msg.topic}})
            return
        with self._lock:
            self.latest[(parts[2], parts[4])] = (state, time.time())
            self.received += 1

    def apply(self, camera: str, rules, frame_pts: float, frame_wall: float) -> None:
        """Hand this camera's latest controller states to its signal board (camera thread)."""
        board = signal_board(rules or [])
        if board is None:
            return
        with self._lock:
            items = [(head, v) for (cam, head), v in self.latest.items() if cam == camera]
        for head, (state, wall) in items:
            board.set_external(head, state, frame_pts - (frame_wall - wall))
