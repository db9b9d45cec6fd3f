"""The live node's analyzer: `CameraAnalyzer` with the evidence left to the evidence worker.

On the camera thread a violation becomes a `PendingEvent` (the violation, the frame, its time, the
tracks) and its clip is asked for at once (`ClipRecorder.request`: the ring buffer must hold the
pre-roll from this moment on). JPEG encoding, the event, the clip's remux and the outbox write
happen later on the node's evidence worker (`edge.runtime.evidence_worker`), which calls back into
the analyzer's own `_evidence`, `_event`, `_wait_for_clip` and `_clips_done`: the same code, so
the same events and evidence as `edge analyze`, only not on the camera thread.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from edge.frames import Frame
from edge.pipeline import CameraAnalyzer, EventRecord
from edge.rules import Violation
from pipelines.clips import ClipTicket


class PendingEvent:
    """A violation whose evidence and event are still to be made (by the evidence worker)."""

    __slots__ = ("analyzer", "frame", "pts", "ticket", "tracks", "violation", "when")

    def __init__(self, analyzer: LiveAnalyzer, violation: Violation, frame: Frame, when: datetime, tracks) -> None:
        self.analyzer = analyzer
        self.violation = violation
        self.frame: Frame | None = frame  # None once the snapshots were given up (queue full)
        self.pts = frame.pts
        self.when = when
        self.tracks = tracks
        self.ticket: ClipTicket | None = None  # the clip asked for on the camera thread

    @property
    def heavy(self) -> bool:
        """Still holds a frame (megabytes): what the evidence queue's bound counts."""
        return self.frame is not None

    def drop_images(self) -> None:
        """Give up the snapshots (the queue is full): the event is still made, without them (and
        without the composite: its moments' frames go too)."""
        self.frame = None
        self.tracks = None
        if self.violation.moments:
            self.violation = dataclasses.replace(self.violation, moments=())

    def build(self) -> EventRecord:
        """The event with its snapshots and crops (the JPEG encoding happens here)."""
        a = self.analyzer
        evidence = () if self.frame is None else a._evidence(self.violation, self.frame.image, self.when, self.tracks)
        return a._event(self.violation, self.pts, self.when, evidence)


class ClipFlush:
    """End of a stream (stop, stall, reconnect, crash): write the clips waiting at this moment with
    the footage there is (`tickets`; None: every one still waiting when the flush runs)."""

    __slots__ = ("analyzer", "tickets")
    heavy = False

    def __init__(self, analyzer: LiveAnalyzer, tickets: list[ClipTicket] | None = None) -> None:
        self.analyzer = analyzer
        self.tickets = tickets


class LiveAnalyzer(CameraAnalyzer):
    """`process` returns `PendingEvent`s (clips already requested) and `finish` a `ClipFlush`:
    the node hands both to its evidence worker, in order."""

    def _record(self, v: Violation, frame: Frame, when: datetime, tracks) -> PendingEvent:  # type: ignore[override]
        return PendingEvent(self, v, frame, when, tracks)

    def _attach_clips(self, records, pts: float, force: bool = False):
        if self.clips is not None:
            for pending in records:
                pending.ticket = self.clips.request(pts)
        return records

    def finish(self, flush_rules: bool = False):
        # The rules' held acts first (their clips asked for now), then the clips pending now, not
        # those of events decided after a reconnect while this waits.
        records, pts = self._flush_rules() if flush_rules else ([], 0.0)
        held = self._attach_clips(records, pts)
        return [*held, ClipFlush(self, self.clips.pending_tickets() if self.clips is not None else [])]
