"""Central's consumer of a replicated JetStream stream: the NATS counterpart of `Ingester`.

Edge nodes publish MQTT QoS 1 to any server of the NATS cluster; the stream `IOC_EVENTS`
(3 replicas) captures the event subjects, and every ingester pulls from ONE durable consumer
(competing consumers, no shared-subscription session to take over). A message is acked only
after `MessageProcessor.process_events` committed it (stored, duplicate or dead-lettered), so
storing, dead-lettering and dedup by event id stay the MQTT ingester's one code path. A batch
the database could not take is nak'ed with a delay and delivered again (to any ingester).

nats-py is asyncio; this runs its loop in a thread of its own, like paho's network thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy.exc import SQLAlchemyError

from central.ingester import IngestCounters, MessageProcessor
from central.nats_cluster import EVENT_STREAM, event_subjects, subject_to_topic

log = logging.getLogger(__name__)

DURABLE = "central-ingest"
RETRY_DELAY_S = 2.0
_COUNTER = {"stored": "stored", "duplicate": "duplicates", "amended": "amended"}


@dataclass(frozen=True)
class JetStreamSettings:
    servers: list[str]  # nats://host:port of every cluster server: tried in turn, reconnects
    user: str | None = None
    password: str | None = None
    stream: str = EVENT_STREAM
    durable: str = DURABLE
    replicas: int = 3
    batch_max: int = 200
    ack_wait_s: float = 30.0


class JetStreamIngester:
    def __init__(self, processor: MessageProcessor, settings: JetStreamSettings) -> None:
        self.processor = processor
        self.settings = settings
        self.counters = IngestCounters()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jetstream-ingester", daemon=True)
        self.error: BaseException | None = None

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> JetStreamIngester:
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """The stream and the durable consumer exist and this ingester is pulling."""
        return self._ready.wait(timeout)

    engine_name = "jetstream"

    def consuming(self) -> bool:
        """Pulling, and the loop has not died (/healthz, /metrics)."""
        return self._ready.is_set() and self.error is None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> JetStreamIngester:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------- the loop
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - kept for the caller (status, tests)
            self.error = e
            log.exception("jetstream ingester stopped")

    async def _main(self) -> None:
        s = self.settings
        nc = await nats.connect(
            servers=s.servers,
            user=s.user,
            password=s.password,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            allow_reconnect=True,
        )
        try:
            js = nc.jetstream(timeout=5)
            await self._ensure_stream(js)
            sub = await js.pull_subscribe(
                None,
                durable=s.durable,
                stream=s.stream,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=s.ack_wait_s, max_ack_pending=10_000),
            )
            if not self._ready.is_set():
                log.info("jetstream_ready stream=%s durable=%s servers=%s", s.stream, s.durable, ",".join(s.servers))
            self._ready.set()
            while not self._stop.is_set():
                try:
                    msgs = await sub.fetch(s.batch_max, timeout=1)
                except NatsTimeout:
                    continue
                except Exception as e:  # noqa: BLE001 - a server away (fault, election): pull again
                    log.warning("jetstream fetch failed: %s; retrying", e)
                    await asyncio.sleep(0.5)
                    continue
                await self._handle(msgs)
        finally:
            await nc.drain()

    async def _ensure_stream(self, js) -> None:  # type: ignore[no-untyped-def]
        s = self.settings
        cfg = StreamConfig(
            name=s.stream,
            subjects=event_subjects(self.processor.prefix),
            num_replicas=s.replicas,
            storage=StorageType.FILE,
        )
        while not self._stop.is_set():
            try:
                try:
                    await js.stream_info(s.stream)
                except NotFoundError:
                    await js.add_stream(cfg)
                return
            except Exception as e:  # noqa: BLE001 - cluster still electing its meta leader
                log.info("jetstream stream %s not ready: %s", s.stream, e)
                await asyncio.sleep(0.5)

    async def _handle(self, msgs: list) -> None:  # type: ignore[type-arg]
        now = datetime.now(UTC)
        batch = [(subject_to_topic(m.subject), m.data, now) for m in msgs]
        try:
            # The database work blocks: off the event loop, so heartbeats and acks keep flowing.
            outcomes = await asyncio.to_thread(self.processor.process_events, batch)
        except (SQLAlchemyError, OSError) as e:
            log.warning("could not store %d event(s): %s; redelivered in %.0f s", len(msgs), e, RETRY_DELAY_S)
            for m in msgs:
                await m.nak(delay=RETRY_DELAY_S)
            return
        for m, outcome in zip(msgs, outcomes, strict=True):
            # After the commit: a lost ack means one redelivery, which dedup by event id absorbs.
            try:
                await m.ack_sync(timeout=5)
            except Exception as e:  # noqa: BLE001
                log.warning("ack lost (%s): the event comes again and is a duplicate", e)
            self.counters.add("received")
            self.counters.add("acked")
            if outcome.kind == "dead_letter":
                self.counters.dead_letter(outcome.reason)
            elif outcome.kind in _COUNTER:
                self.counters.add(_COUNTER[outcome.kind])
        self.counters.add("batches")
