"""Central's consumer of a RabbitMQ cluster's replicated events queue (AMQP 0-9-1, pika).

Edge nodes publish MQTT 3.1.1 QoS 1 to any node; RabbitMQ's MQTT plugin routes the publish through
`amq.topic` into the durable quorum queue `ioc.events` (bound to `<prefix>.*.*.events.*` and to
the evidence, node status and camera health keys `<prefix>.*.*.evidence.*`, `<prefix>.*.status`,
`<prefix>.*.*.health`; replicated on `replicas` nodes) and PUBACKs only once the queue has
confirmed it (central/rabbitmq_cluster.py). Every ingester is a competing consumer of that one
queue: all four kinds divide among the ingesters (central's MQTT session subscribes to nothing: the
plugin has no shared subscriptions), no shared-subscription session to take over, and a consumer
that dies hands its unacked deliveries back to the queue, which gives them to another. An evidence
file (up to `limits.evidence_mqtt_max_mb`, 16 MB by default) is one message: RabbitMQ 3.10's
`max_message_size` is 128 MiB, and AMQP splits a body into frames of `frame_max` by itself.

Nothing of the storing is here: each delivery goes to the `Ingester`'s worker (`Ingester.submit`),
the one code path of validation, dedup by event id, dead letters, batching, retries while the
database is away and bisecting a batch the database rejects; its ack is called there after the
commit. Acks travel back to this thread (pika's connection is not thread-safe), and an ack whose
channel has gone since is dropped: the broker redelivers that message, and dedup by event id makes
the second store a counted duplicate.

pika is imported only when `rabbitmq:` is configured (the `rabbitmq` extra).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pika
import pika.exceptions

from central.ingester import Ingester
from central.logs import kv
from central.rabbitmq_cluster import EVENTS_QUEUE, EXCHANGE, event_binding_keys, queue_arguments, routing_key_to_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RabbitMqSettings:
    servers: list[str]  # amqp://host:port of the cluster's nodes: tried in turn
    user: str = "central"
    password: str | None = None
    vhost: str = "/"
    queue: str = EVENTS_QUEUE
    declare: bool = True
    replicas: int = 3
    prefetch: int = 500
    heartbeat_s: int = 20
    ca_file: str | None = None


class RabbitMqEventSource:
    """Deliveries of the events queue (events, evidence, status, health) -> `ingester.submit`;
    acks after the ingester's commit."""

    def __init__(self, ingester: Ingester, settings: RabbitMqSettings) -> None:
        self.ingester = ingester
        self.settings = settings
        self.prefix = ingester.config.mqtt.topic_prefix
        self.connected = threading.Event()  # consuming on a live channel now
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rabbitmq-events", daemon=True)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._channel: Any = None
        self._epoch = 0  # one per channel: a delivery tag means something only on its channel
        self._pending: list[tuple[int, int]] = []  # (epoch, delivery tag) acks waiting for this thread
        self._server = 0
        self._tag = ""
        self._drain_timeout = 5.0
        self.connections = 0
        self.error: str | None = None  # the last connection problem (status, tests)

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> RabbitMqEventSource:
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """The queue exists and this ingester consumes from it."""
        return self._ready.wait(timeout)

    engine_name = "rabbitmq"

    def consuming(self) -> bool:
        """Consuming on a live channel now (/healthz, /metrics)."""
        return self.connected.is_set()

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Cancel the consumer, let the ingester finish (and ack) what it holds, close."""
        self._drain_timeout = drain_timeout
        self._stop.set()
        self._thread.join(drain_timeout + 10)

    def __enter__(self) -> RabbitMqEventSource:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------- connection
    def _parameters(self, url: str) -> pika.ConnectionParameters:
        s = self.settings
        u = urlsplit(url)
        tls = u.scheme == "amqps"
        ssl_options = None
        if tls:
            ctx = ssl.create_default_context(cafile=s.ca_file)
            ssl_options = pika.SSLOptions(ctx, u.hostname)
        return pika.ConnectionParameters(
            host=u.hostname or "127.0.0.1",
            port=u.port or (5671 if tls else 5672),
            virtual_host=s.vhost,
            credentials=pika.PlainCredentials(s.user, s.password or ""),
            heartbeat=s.heartbeat_s,
            ssl_options=ssl_options,
            connection_attempts=1,
            socket_timeout=3,
            blocked_connection_timeout=60,
            client_properties={"connection_name": f"central-ingest {self.ingester.client_id}"},
        )

    def _open(self) -> bool:
        """Connect to the next server, declare (or check) the queue, start consuming."""
        s = self.settings
        url = s.servers[self._server % len(s.servers)]
        self._server += 1
        try:
            conn = pika.BlockingConnection(self._parameters(url))
        except pika.exceptions.ProbableAuthenticationError as e:
            self.error = f"{url}: login refused for {s.user!r} ({e})"
            log.error(kv("rabbitmq_login_refused", url=url, user=s.user))
            return False
        except (pika.exceptions.AMQPError, OSError) as e:
            self.error = f"{url}: {type(e).__name__}: {e}"
            log.warning(kv("rabbitmq_unreachable", url=url, error=type(e).__name__))
            return False
        try:
            ch = conn.channel()
            if s.declare:
                ch.queue_declare(s.queue, durable=True, arguments=queue_arguments(s.replicas))
                for key in event_binding_keys(self.prefix):
                    ch.queue_bind(s.queue, EXCHANGE, routing_key=key)
            else:
                ch.queue_declare(s.queue, passive=True)
            ch.basic_qos(prefetch_count=s.prefetch)
            with self._lock:
                self._epoch += 1
                self._pending.clear()
                epoch = self._epoch
                self._conn, self._channel = conn, ch
            ch.add_on_cancel_callback(lambda _frame: self._lost("consumer cancelled by the broker"))
            self._tag = ch.basic_consume(s.queue, partial(self._on_message, epoch))
        except (pika.exceptions.AMQPError, OSError) as e:
            # A queue declared with other arguments, a node still electing the queue's leader, no
            # permission: say which, and try the next node.
            self.error = f"{url}: {type(e).__name__}: {e}"
            log.warning(kv("rabbitmq_queue_unavailable", url=url, queue=s.queue, error=type(e).__name__, detail=str(e)[:200]))
            self._forget()
            with contextlib.suppress(Exception):  # it is going away anyway
                conn.close()
            return False
        self.connections += 1
        self.error = None
        self.connected.set()
        self._ready.set()
        log.info(kv("rabbitmq_consuming", url=url, queue=s.queue, prefetch=s.prefetch, connection=self.connections))
        return True

    def _forget(self) -> None:
        with self._lock:
            self._epoch += 1  # acks of the old channel are dropped from now on
            self._pending.clear()
            self._conn = self._channel = None
        self.connected.clear()

    def _lost(self, why: str) -> None:
        self.error = why
        log.warning(kv("rabbitmq_connection_lost", reason=why))
        self._forget()

    # ---------------------------------------------------------------------------- the loop
    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            if self._channel is None:
                if not self._open():
                    # Every server once, then wait a little longer each round (up to 2 s).
                    if self._server % len(self.settings.servers) == 0:
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.2
            conn = self._conn
            try:
                conn.process_data_events(time_limit=0.2)
                self._flush_acks()
            except (pika.exceptions.AMQPError, OSError) as e:
                self._lost(f"{type(e).__name__}: {e}")
            if self._conn is not conn:  # lost, or the consumer cancelled by the broker: a fresh one
                with contextlib.suppress(Exception):
                    conn.close()
        self._shutdown()

    def _shutdown(self) -> None:
        conn, ch = self._conn, self._channel
        if conn is None:
            return
        try:
            ch.basic_cancel(self._tag)  # nothing new; what was delivered is still ours to ack
            deadline = time.monotonic() + self._drain_timeout
            while time.monotonic() < deadline and not self.ingester.idle():
                conn.process_data_events(time_limit=0.05)
                self._flush_acks()
            self._flush_acks()
            conn.close()  # what is still unacked goes back to the queue, for another ingester
        except (pika.exceptions.AMQPError, OSError) as e:
            log.info(kv("rabbitmq_close_failed", error=type(e).__name__))
        self._forget()
        log.info(kv("rabbitmq_stopped", queue=self.settings.queue))

    def _on_message(self, epoch: int, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        topic = routing_key_to_topic(method.routing_key)
        self.ingester.submit(topic, body, partial(self._ack, epoch, method.delivery_tag))

    # ---------------------------------------------------------------------------- acks
    def _ack(self, epoch: int, tag: int) -> bool:
        """From the ingester's worker, after the commit: queue the ack for this thread."""
        with self._lock:
            if epoch != self._epoch or self._conn is None:
                return False  # that channel is gone: the broker redelivers the message
            first = not self._pending
            self._pending.append((epoch, tag))
            conn = self._conn
        if first:
            try:
                conn.add_callback_threadsafe(self._flush_acks)
            except Exception:  # noqa: BLE001 - closed meanwhile; the message comes again
                return False
        return True

    def _flush_acks(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            epoch, ch = self._epoch, self._channel
        if ch is None:
            return
        tags = sorted(tag for e, tag in pending if e == epoch)
        for tag in tags:
            ch.basic_ack(delivery_tag=tag)


def start_event_source(cfg: Any, ingester: Ingester) -> RabbitMqEventSource:
    """The events queue of the cluster in `cfg.rabbitmq`, feeding `ingester` (`ioc-central ingest`/`run`)."""
    r = cfg.rabbitmq
    settings = RabbitMqSettings(
        servers=list(r.servers), user=r.user, password=r.secret(), vhost=r.vhost, queue=r.queue, declare=r.declare,
        replicas=r.replicas, prefetch=r.prefetch, heartbeat_s=r.heartbeat_s,
        ca_file=str(r.ca_file) if r.ca_file else None,
    )  # fmt: skip
    return RabbitMqEventSource(ingester, settings).start()

