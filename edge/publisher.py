"""MQTT v5 publisher that drains the outbox at QoS 1, in order, deleting a message only on PUBACK.

Retained state (node status, camera health) is published directly, not through the outbox: only
the latest value matters, and it is re-sent on every reconnect.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contract.topics import parse_mqtt_url
from edge.outbox import Outbox

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10  # a success code in MQTT v5, yet the message reached nobody
HOLD_MIN_S, HOLD_MAX_S = 1.0, 30.0


class MqttPublisher:
    def __init__(
        self,
        outbox: Outbox,
        url: str,
        client_id: str,
        *,
        will: tuple[str, bytes] | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive_s: int = 30,
        window: int = 100,
        ca_file: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.window = window
        self.host, self.port, tls = parse_mqtt_url(url)
        self.keepalive_s = keepalive_s
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username:
            c.username_pw_set(username, password)
        if tls:
            c.tls_set(ca_certs=ca_file)
        if will:
            c.will_set(will[0], will[1], qos=1, retain=True)
        c.max_inflight_messages_set(window)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self.client = c
        self.connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._retained: dict[str, bytes] = {}
        self._refused: set[int] = set()
        self._unheard: set[int] = set()
        self._thread = threading.Thread(target=self._pump, name="mqtt-publisher", daemon=True)
        self.acked = 0
        self.refused = 0
        self.unheard = 0  # PUBACKs saying "no matching subscribers": kept and sent again

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s, clean_start=True)
        self.client.loop_start()
        self._thread.start()

    def stop(self, final_state: tuple[str, bytes] | None = None, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if final_state and self.connected.is_set():
            info = self.client.publish(final_state[0], final_state[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def notify(self) -> None:
        """New messages are in the outbox."""
        self._wake.set()

    def publish_state(self, topic: str, payload: bytes) -> None:
        with self._state_lock:
            self._retained[topic] = payload
        if self.connected.is_set():
            self.client.publish(topic, payload, qos=1, retain=True)

    # -- paho callbacks (network thread) -----------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.error("mqtt connect refused by %s:%s: %s", self.host, self.port, reason_code)
            return
        log.info("mqtt connected to %s:%s", self.host, self.port)
        self.connected.set()
        with self._state_lock:
            for topic, payload in self._retained.items():
                client.publish(topic, payload, qos=1, retain=True)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            log.warning("mqtt disconnected from %s:%s: %s (will reconnect)", self.host, self.port, reason_code)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid: int, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            self._refused.add(mid)
        elif reason_code.value == NO_MATCHING_SUBSCRIBERS:
            self._unheard.add(mid)
        self._wake.set()

    # -- the pump ------------------------------------------------------------------------------------
    def _pump(self) -> None:
        inflight: dict[int, mqtt.MQTTMessageInfo] = {}
        last_seq = 0
        hold_until, hold_s = 0.0, HOLD_MIN_S
        while not self._stop.is_set():
            done = [seq for seq, info in inflight.items() if info.is_published()]
            if done:
                acked, unheard = [], []
                for s in done:
                    info = inflight.pop(s)
                    if info.mid in self._refused:
                        # Kept in the outbox (retried after a restart) and counted: never silently dropped.
                        self._refused.discard(info.mid)
                        self.refused += 1
                        log.error("broker refused outbox message seq=%s", s)
                    elif info.mid in self._unheard:
                        self._unheard.discard(info.mid)
                        unheard.append(s)
                    else:
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
            if self.connected.is_set() and len(inflight) < self.window and time.monotonic() >= hold_until:
                for m in self.outbox.pending(after_seq=last_seq, limit=self.window - len(inflight)):
                    if m.seq not in inflight:
                        inflight[m.seq] = self.client.publish(m.topic, m.payload, qos=m.qos)
                    last_seq = m.seq
            self._wake.wait(0.25)
            self._wake.clear()
