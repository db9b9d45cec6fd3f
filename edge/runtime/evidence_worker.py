"""The evidence worker: everything after the decision, off the camera threads.

A camera thread hands over what its analyzer decided (`edge.runtime.analyzer.PendingEvent`: the
violation, the frame, its clip already asked for; `ClipFlush` at the end of a stream) and goes
back to analysing. The worker, a small pool of threads shared by the node's cameras, encodes the
JPEG snapshots and crops, makes the event, writes the evidence files and puts event + evidence
into the outbox in one transaction (`submit`), and writes the clips (MP4 remux) once their
post-event footage is in, sending the event again with its clip. One camera's work always goes to
the same thread, in the order it was decided: the event is in the outbox before its clip copy.

Bounded, never blocking, never silent. Each thread's queue holds at most `max_queued` frames
(a 1080p frame is 6 MB). When a camera decides an event while its thread's queue is full (a slow
or stuck disk), the camera does not wait: that event's snapshots are given up (the frame is let
go at once) and the event itself still goes to the queue and out, without them, with its clip
(the clip's packets are held by the ring buffer, not by the queue). So a slow disk costs
snapshots, never analysis and never an event; each such event is logged at WARNING with its
camera and type and counted (`snapshots_dropped` in the node status' `evidence`). Events
themselves are small and are never dropped while the node runs. A write that fails (disk full,
I/O error) is retried with backoff until it succeeds: the event is not lost, and what waits
behind it is counted in `queued`. Only a node stopping with work still queued after its drain
timeout loses that work, and says so at ERROR (`lost`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from edge.pipeline import EventRecord
from edge.runtime.analyzer import ClipFlush, LiveAnalyzer, PendingEvent

log = logging.getLogger("edge.evidence")

Job = PendingEvent | ClipFlush


@dataclass
class EvidenceStats:
    queued: int = 0  # jobs waiting now (all threads)
    queued_frames: int = 0  # of those, holding a frame
    max_queued_frames: int = 0  # the bound, per thread
    snapshots_dropped: int = 0  # events that went without snapshots because the queue was full
    encode_failures: int = 0  # events whose JPEGs could not be made (sent without them)
    submitted: int = 0  # records written to the outbox (events and their clip copies)
    clips_waiting: int = 0  # events waiting for their clip's post-event footage
    retries: int = 0  # outbox/evidence writes that failed and were retried
    lost: int = 0  # jobs abandoned when the node stopped (ERROR logged)


class _Lane(threading.Thread):
    def __init__(self, index: int, pool: EvidenceWorker) -> None:
        super().__init__(name=f"evidence-{index}", daemon=True)
        self.pool = pool
        self._jobs: deque[Job] = deque()
        self._frames = 0
        self._cond = threading.Condition()
        self._closing = False
        self._waiters: dict[int, LiveAnalyzer] = {}  # analyzers with events waiting for a clip
        self.clips_waiting = 0

    # -- camera threads ----------------------------------------------------------------------
    def put(self, job: Job) -> None:
        dropped = False
        with self._cond:
            if isinstance(job, PendingEvent) and job.heavy:
                if self._frames >= self.pool.max_queued:
                    job.drop_images()
                    dropped = True
                else:
                    self._frames += 1
            self._jobs.append(job)
            self._cond.notify()
        if dropped:
            self.pool._count(snapshots_dropped=1)
            assert isinstance(job, PendingEvent)
            log.warning(
                "evidence queue full: event kept, its snapshots dropped",
                extra={"fields": {"camera": job.analyzer.camera.camera.id, "type": job.violation.type.value,
                                  "queued": len(self._jobs), "max_queued_frames": self.pool.max_queued}},
            )

    def depth(self) -> tuple[int, int]:
        with self._cond:
            return len(self._jobs), self._frames

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()

    # -- the thread ----------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    if not self._cond.wait(self.pool.poll_s if self._waiters else 1.0):
                        break  # time to look at the clips
                job = self._jobs.popleft() if self._jobs else None
                if job is not None and job.heavy:
                    self._frames -= 1
                closing = job is None and self._closing
            if closing:  # stopping: the clips still waiting are written with the footage there is
                for a in list(self._waiters.values()):
                    self._do(ClipFlush(a))
                return
            if job is not None:
                try:
                    self._do(job)
                except Exception:  # a bug, not the disk (writes are retried): never stop the lane
                    self.pool._count(lost=1)
                    log.exception("evidence job failed; its event is lost",
                                  extra={"fields": {"camera": job.analyzer.camera.camera.id}})
            self._poll_clips()

    def _do(self, job: Job) -> None:
        a = job.analyzer
        if isinstance(job, ClipFlush):
            if a.clips is not None:
                if job.tickets is None:
                    self._deliver_all(a._clips_done(force=True))
                else:
                    a.clips.poll(force=True, only=job.tickets)
                    self._deliver_all(a._clips_done())
            if not a._waiting:
                self._waiters.pop(id(a), None)
            return
        try:
            rec = job.build()
        except Exception:
            if job.frame is None:
                raise
            log.exception("evidence encoding failed; the event goes without snapshots",
                          extra={"fields": {"camera": a.camera.camera.id}})
            self.pool._count(encode_failures=1)
            job.drop_images()
            rec = job.build()
        if job.ticket is None:
            self._deliver(rec)
            return
        self._waiters[id(a)] = a
        self._deliver_all(a._wait_for_clip(rec, job.ticket))

    def _poll_clips(self) -> None:
        for key, a in list(self._waiters.items()):
            try:
                ready = a._clips_done()
            except Exception:  # clips.poll logs and absorbs write errors; anything else is a bug
                log.exception("clip poll failed", extra={"fields": {"camera": a.camera.camera.id}})
                continue
            self._deliver_all(ready)
            if not a._waiting:
                del self._waiters[key]
        self.clips_waiting = sum(len(a._waiting) for a in self._waiters.values())

    def _deliver_all(self, records: Iterable[EventRecord]) -> None:
        for rec in records:
            self._deliver(rec)

    def _deliver(self, rec: EventRecord) -> None:
        delay = 0.5
        while True:
            try:
                self.pool.submit(rec)
            except Exception as exc:
                self.pool._count(retries=1)
                log.error(
                    "event not written (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay,
                    extra={"fields": {"event_id": rec.event.id, "camera": rec.event.camera}},
                )
                if self.pool._abandon.wait(delay):
                    self.pool._count(lost=1)
                    log.error("event abandoned at shutdown", extra={"fields": {"event_id": rec.event.id}})
                    return
                delay = min(delay * 2, self.pool.retry_max_s)
            else:
                self.pool._count(submitted=1)
                return


class EvidenceWorker:
    """`threads` evidence threads for all cameras of a node; `put(camera, jobs)` never blocks."""

    def __init__(
        self,
        submit: Callable[[EventRecord], None],
        *,
        threads: int = 1,
        max_queued: int = 16,
        poll_s: float = 0.2,
        retry_max_s: float = 30.0,
    ) -> None:
        if threads < 1 or max_queued < 1:
            raise ValueError("need threads >= 1 and max_queued >= 1")
        self.submit = submit
        self.max_queued = max_queued
        self.poll_s = poll_s
        self.retry_max_s = retry_max_s
        self._lanes = [_Lane(i, self) for i in range(threads)]
        self._lane_of: dict[str, _Lane] = {}
        self._lock = threading.Lock()
        self._stats = EvidenceStats(max_queued_frames=max_queued)
        self._abandon = threading.Event()

    def _count(self, **delta: int) -> None:
        with self._lock:
            for k, v in delta.items():
                setattr(self._stats, k, getattr(self._stats, k) + v)

    def _lane(self, camera: str) -> _Lane:
        with self._lock:
            lane = self._lane_of.get(camera)
            if lane is None:  # cameras spread over the threads in the order they first speak
                lane = self._lane_of[camera] = self._lanes[len(self._lane_of) % len(self._lanes)]
            return lane

    def put(self, camera: str, jobs: Iterable[Job]) -> None:
        lane = self._lane(camera)
        for job in jobs:
            lane.put(job)

    def stats(self) -> dict[str, int]:
        depths = [lane.depth() for lane in self._lanes]
        with self._lock:
            s = EvidenceStats(**asdict(self._stats))
        s.queued = sum(d[0] for d in depths)
        s.queued_frames = sum(d[1] for d in depths)
        s.clips_waiting = sum(lane.clips_waiting for lane in self._lanes)
        return asdict(s)

    def start(self) -> None:
        for lane in self._lanes:
            lane.start()

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued (within `timeout`), then stop; what is left is counted as lost."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.close()
        for lane in self._lanes:
            if lane.is_alive():
                lane.join(max(0.0, deadline - time.monotonic()))
        if any(lane.is_alive() for lane in self._lanes):
            self._abandon.set()
            for lane in self._lanes:
                lane.join(2.0)
        left = sum(lane.depth()[0] for lane in self._lanes)
        if left:
            self._count(lost=left)
            log.error("evidence worker stopped with %d job(s) not done (events not written)", left)
