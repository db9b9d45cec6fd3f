"""The edge publisher's PUBACK timeout (issue 19): a broker node that keeps the connection open but
never acknowledges is left for the next broker URL, and nothing is lost.

Real Mosquittos stand for the cluster's nodes. A small TCP proxy in front of one of them forwards
the client's bytes, and of the broker's either every packet but PUBACK (a node that answers pings
and keeps the session but never confirms a publish: a RabbitMQ node stuck on its queue's
confirms), or nothing at all (a half-open connection). The keep-alive is 120 s, so paho's own ping
check would not notice within these tests' bounds (and never in the first case): without the
timeout the outbox stalls and every test here fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from contract.logs import JsonFormatter
from contract.mqtt import MqttSettings
from edge.local_broker import LocalMosquitto
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.integration.test_edge_outbox_mqtt import Collector
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KEEPALIVE_S = 120  # paho's own check (two of these of silence) stays out of the picture
TIMEOUT_S = 2.0
PUBACK = 4  # MQTT control packet type (3.1.1 and 5)


class StallingProxy:
    """TCP proxy 127.0.0.1:<port> -> the broker on `upstream_port`. `mode` decides what of the
    broker's packets reach the client: "forward" (all), "drop_pubacks" (all but PUBACK; counted in
    `dropped_pubacks`), "swallow" (none). `uplink_bytes_per_s` throttles the client's direction
    (a slow uplink). `tls`: the bytes are TLS records, not MQTT packets: only forward or swallow."""

    def __init__(self, upstream_port: int, *, uplink_bytes_per_s: float | None = None, tls: bool = False) -> None:
        self.upstream_port = upstream_port
        self.tls = tls
        self.uplink_bytes_per_s = uplink_bytes_per_s
        self.mode = "forward"
        self.dropped_pubacks = 0
        self.swallowed_bytes = 0
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def __enter__(self) -> StallingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
                self.connections += 1
            threading.Thread(target=self._uplink, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._downlink, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _end(*socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _uplink(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(4096):
                if self.uplink_bytes_per_s:
                    time.sleep(len(data) / self.uplink_bytes_per_s)
                upstream.sendall(data)
        except OSError:
            pass
        self._end(client, upstream)

    def _downlink(self, upstream: socket.socket, client: socket.socket) -> None:
        buf = b""
        try:
            while data := upstream.recv(65536):
                if self.tls:
                    assert self.mode != "drop_pubacks", "PUBACKs cannot be told apart inside TLS"
                    if self.mode == "swallow":
                        self.swallowed_bytes += len(data)
                    else:
                        client.sendall(data)
                    continue
                buf += data
                while (packet := _split_packet(buf)) is not None:
                    size = packet
                    kind = buf[0] >> 4
                    chunk, buf = buf[:size], buf[size:]
                    if self.mode == "swallow":
                        self.swallowed_bytes += size
                    elif self.mode == "drop_pubacks" and kind == PUBACK:
                        self.dropped_pubacks += 1
                    else:
                        client.sendall(chunk)
        except OSError:
            pass
        self._end(client, upstream)


def _split_packet(buf: bytes) -> int | None:
    """The size of the first whole MQTT packet in `buf` (fixed header + remaining length), or None."""
    length, multiplier = 0, 1
    for i in range(1, 5):
        if i >= len(buf):
            return None
        length += (buf[i] & 0x7F) * multiplier
        if not buf[i] & 0x80:
            size = 1 + i + length
            return size if len(buf) >= size else None
        multiplier *= 128
    raise ValueError("malformed MQTT remaining length")


def _put(outbox: Outbox, topic: str, ids: range, size: int = 0) -> None:
    outbox.put([OutboxMessage(topic, f"{i}".encode().ljust(size, b" ")) for i in ids])


def _ids(c: Collector) -> set[int]:
    with c.lock:
        return {int(p) for p in c.received}


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
@pytest.mark.parametrize("mode", ["drop_pubacks", "swallow"])
def test_a_broker_that_never_acknowledges_is_left_for_the_next_url(tmp_path: Path, mode: str, protocol: str) -> None:
    prefix = unique_name("edge")
    topic = f"{prefix}/n/c/events/x"
    with (
        LocalMosquitto(state_dir=tmp_path / "a") as a,
        LocalMosquitto(state_dir=tmp_path / "b") as b,
        StallingProxy(a.port) as proxy,
    ):
        got_a, got_b = Collector(a.port, f"{prefix}/#"), Collector(b.port, f"{prefix}/#")
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        settings = MqttSettings(
            proxy.url, unique_name("node-"), failover_urls=(b.url,), protocol=protocol, keepalive_s=KEEPALIVE_S
        )
        publisher = MqttPublisher(outbox, settings, puback_timeout_s=TIMEOUT_S)
        publisher.start()
        try:
            assert publisher.connected.wait(10)
            _put(outbox, topic, range(20))
            publisher.notify()
            wait_until(lambda: outbox.backlog() == 0, 15, what="first batch acknowledged through the proxy")
            assert publisher.mqtt.broker == f"127.0.0.1:{proxy.port}" and publisher.puback_timeouts == 0

            proxy.mode = mode  # the node stops acknowledging; the connection stays open
            t0 = time.monotonic()
            _put(outbox, topic, range(20, 120))
            publisher.notify()
            # Bound: the timeout, paho's first reconnect delay (1 s), the connect and the resend.
            wait_until(lambda: outbox.backlog() == 0, 20, what="backlog delivered to the healthy broker")
            elapsed = time.monotonic() - t0
            assert publisher.mqtt.broker == f"127.0.0.1:{b.port}"
            assert publisher.puback_timeouts == 1, "one timeout, one failover"
            assert publisher.status()["puback_timeouts"] == 1
            assert elapsed >= TIMEOUT_S, f"left the broker after {elapsed:.1f} s, before its timeout"
            assert proxy.dropped_pubacks > 0 or proxy.swallowed_bytes > 0, "the proxy never held anything back"
            wait_until(lambda: _ids(got_b) >= set(range(20, 120)), 20, what="b got every unacknowledged event")
        finally:
            publisher.stop()
            got_a.close()
            got_b.close()
            outbox.close()
    seen = _ids(got_a) | _ids(got_b)
    assert seen == set(range(120)), f"lost: {sorted(set(range(120)) - seen)[:10]}"


def test_every_broker_stalled_keeps_the_outbox_and_logs_once_per_episode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both URLs stop acknowledging: the publisher goes round them, a timeout each, counting every
    one but logging the episode once; the messages stay in the outbox. Once the brokers answer
    again all arrive and one line says so."""
    prefix = unique_name("edge")
    topic = f"{prefix}/n/c/events/x"
    timeout_s = 1.5
    with (
        LocalMosquitto(state_dir=tmp_path / "a") as a,
        LocalMosquitto(state_dir=tmp_path / "b") as b,
        StallingProxy(a.port) as pa,
        StallingProxy(b.port) as pb,
    ):
        got_a, got_b = Collector(a.port, f"{prefix}/#"), Collector(b.port, f"{prefix}/#")
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        settings = MqttSettings(pa.url, unique_name("node-"), failover_urls=(pb.url,), keepalive_s=KEEPALIVE_S)
        publisher = MqttPublisher(outbox, settings, puback_timeout_s=timeout_s)
        caplog.set_level(logging.INFO, logger="edge.publisher")
        publisher.start()
        try:
            assert publisher.connected.wait(10)
            _put(outbox, topic, range(5))
            publisher.notify()
            wait_until(lambda: outbox.backlog() == 0, 15, what="first batch acknowledged")

            pa.mode = pb.mode = "drop_pubacks"
            _put(outbox, topic, range(5, 35))
            publisher.notify()
            wait_until(lambda: publisher.puback_timeouts >= 3, 30, what="three timeouts (a, b, a)")
            assert outbox.backlog() == 30, "unacknowledged messages must stay in the outbox"
            assert pa.connections >= 2 and pb.connections >= 1, "went round the URLs"
            stalls = [r for r in caplog.records if _event(r) == "mqtt_puback_timeout"]
            assert len(stalls) == 1, [r.getMessage() for r in stalls]
            line = json.loads(JsonFormatter().format(stalls[0]))
            assert line["level"].lower().startswith("warn") and line["event"] == "mqtt_puback_timeout"
            assert line["broker"] in (f"127.0.0.1:{pa.port}", f"127.0.0.1:{pb.port}")
            assert line["unanswered"] == 30 and line["puback_timeout_s"] == timeout_s

            pa.mode = pb.mode = "forward"
            wait_until(lambda: outbox.backlog() == 0, 20, what="delivered once a broker answers")
            resumed = [r for r in caplog.records if _event(r) == "mqtt_puback_resumed"]
            assert len(resumed) == 1
            assert resumed[0].fields["timeouts"] == publisher.puback_timeouts  # type: ignore[attr-defined]
            assert len([r for r in caplog.records if _event(r) == "mqtt_puback_timeout"]) == 1
            wait_until(lambda: (_ids(got_a) | _ids(got_b)) >= set(range(35)), 20, what="every event at a broker")
        finally:
            publisher.stop()
            got_a.close()
            got_b.close()
            outbox.close()


def test_a_slow_uplink_is_not_a_stuck_broker(tmp_path: Path) -> None:
    """100 messages of 20 kB through a 250 kB/s uplink take ~8 s, four times the timeout: PUBACKs
    keep coming one after the other, so nothing times out and nothing moves to the other broker.
    (A clock from each message's publish would drop this working connection again and again.)"""
    prefix = unique_name("edge")
    topic = f"{prefix}/n/c/events/x"
    with (
        LocalMosquitto(state_dir=tmp_path / "a") as a,
        LocalMosquitto(state_dir=tmp_path / "b") as b,
        StallingProxy(a.port, uplink_bytes_per_s=250_000) as proxy,
    ):
        got_a, got_b = Collector(a.port, f"{prefix}/#"), Collector(b.port, f"{prefix}/#")
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        settings = MqttSettings(proxy.url, unique_name("node-"), failover_urls=(b.url,), keepalive_s=KEEPALIVE_S)
        publisher = MqttPublisher(outbox, settings, puback_timeout_s=TIMEOUT_S)
        publisher.start()
        try:
            assert publisher.connected.wait(10)
            t0 = time.monotonic()
            _put(outbox, topic, range(100), size=20_000)
            publisher.notify()
            wait_until(lambda: outbox.backlog() == 0, 60, what="everything acknowledged over the slow uplink")
            elapsed = time.monotonic() - t0
            assert publisher.puback_timeouts == 0, "a working (slow) connection was dropped"
            assert publisher.mqtt.broker == f"127.0.0.1:{proxy.port}" and proxy.connections == 1
            assert elapsed > 2 * TIMEOUT_S, f"the uplink was not slow ({elapsed:.1f} s): the test shows nothing"
            wait_until(lambda: _ids(got_a) == set(range(100)), 20, what="a got everything")
            assert not _ids(got_b)
        finally:
            publisher.stop()
            got_a.close()
            got_b.close()
            outbox.close()


def _event(record: logging.LogRecord) -> str | None:
    fields = getattr(record, "fields", None)
    return fields.get("event") if isinstance(fields, dict) else None


def test_over_tls_a_half_open_connection_is_left_for_the_next_url(tmp_path: Path) -> None:
    """MQTTS, as a deployment runs it: the proxy cannot read TLS, so it swallows everything the
    broker sends; the publisher ends the TLS connection (the socket under it) and moves on."""
    from central.broker_security import secure_broker_files
    from tests.mqtt_brokers import CENTRAL_PASSWORD, NODE_PASSWORD, Listener

    security = secure_broker_files(tmp_path / "security", {"node-a": NODE_PASSWORD}, CENTRAL_PASSWORD, prefix="ioc")
    with (
        LocalMosquitto(state_dir=tmp_path / "a", security=security) as a,
        LocalMosquitto(state_dir=tmp_path / "b", security=security) as b,
    ):
        assert a.tls_port and b.tls_url
        with StallingProxy(a.tls_port, tls=True) as proxy:
            listener = Listener(b.tls_url, security.ca_file)
            outbox = Outbox(tmp_path / "outbox.sqlite3")
            settings = MqttSettings(
                f"mqtts://127.0.0.1:{proxy.port}", unique_name("node-a-"), username="node-a", password=NODE_PASSWORD,
                ca_file=security.ca_file, failover_urls=(b.tls_url,), keepalive_s=KEEPALIVE_S,
            )
            publisher = MqttPublisher(outbox, settings, puback_timeout_s=TIMEOUT_S)
            publisher.start()
            try:
                assert publisher.connected.wait(10)
                proxy.mode = "swallow"
                outbox.put([OutboxMessage(f"ioc/node-a/cam-1/events/e{i}", b"{}") for i in range(30)])
                publisher.notify()
                wait_until(lambda: outbox.backlog() == 0, 20, what="backlog delivered to b over TLS")
                assert publisher.puback_timeouts == 1 and publisher.mqtt.broker == f"127.0.0.1:{b.tls_port}"
                want = {f"ioc/node-a/cam-1/events/e{i}" for i in range(30)}
                wait_until(lambda: want <= set(listener.topics), 20, what="b's listener got every event")
            finally:
                publisher.stop()
                listener.close()
                outbox.close()
