"""Signal states from a signal controller over MQTT, for heads configured with `source: controller`.

Subscribes to `<prefix>/<node>/+/signal/+` (contract.topics.signal_topic); keeps the latest state
of each (camera, head) with the wall time it arrived. The camera thread applies them to its
analyzer's signal board before each frame (`apply`), converting the arrival time to the frame
clock, so the board's timeout (`controller_timeout_s`) turns a silent controller into 'unknown'.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import parse_mqtt_url, signal_subscription
from edge.rules.signals import SignalState
from edge.rules.traffic_build import signal_board

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
    def __init__(
        self, url: str, client_id: str, prefix: str, node: str, *,
        username: str | None = None, password: str | None = None, ca_file: str | None = None,
    ) -> None:
        self.prefix, self.node = prefix, node
        self.host, self.port, tls = parse_mqtt_url(url)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username:
            c.username_pw_set(username, password)
        if tls:
            c.tls_set(ca_certs=ca_file)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        self.client = c
        self._lock = threading.Lock()
        self.latest: dict[tuple[str, str], tuple[SignalState, float]] = {}  # (camera, head) -> (state, wall)
        self.received = 0

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(signal_subscription(self.prefix, self.node), qos=1)

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
