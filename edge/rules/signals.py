"""Signal heads: red / yellow / green / unknown, read from the lamps' image regions or told by a controller.

Reading the picture: in each lamp's region, the share of pixels that are bright *and* saturated
(a lit lamp is a coloured blob; sun glare and a washed-out sky are bright but white, so they count
for nothing) with a hue that fits the lamp's colour. The head is in a lamp's state when that lamp's
share is high enough and dominates the other lamps'. A new state is adopted only after it has been
seen `confirm_frames` times in a row (hysteresis against one odd frame), and a head that cannot be
read for `unknown_after_frames` frames becomes unknown. Rules never accuse anyone while a head is
unknown.

A signal controller can instead publish the state (see `edge.node`): `SignalBoard.set_external`
stores it with its time; a state older than `controller_timeout_s` is unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from edge.geometry import scale_points
from edge.scene import SignalHeadConfig


class SignalState(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"
    UNKNOWN = "unknown"


# OpenCV hue (0-180) ranges that fit each lamp colour. Amber lamps read at hue ~10-30, red ones
# wrap around 0/180; the lamp's position in the head decides, the hue rules out the glow of a
# neighbouring lamp (at night a red lamp's bloom covers the amber one: red-hued, so not amber).
_HUE_OK = {
    "red": ((0, 20), (150, 181)),
    "yellow": ((6, 45),),
    "green": ((35, 105),),
}


@dataclass(frozen=True)
class SignalReading:
    state: SignalState
    since: float | None  # camera-clock seconds when this state began (None: unknown)
    lit: dict[str, float]  # lamp colour -> lit share of its region (image heads)

    def seconds_in_state(self, t: float) -> float:
        return 0.0 if self.since is None else max(0.0, t - self.since)


def lamp_lit_fraction(image: np.ndarray, box: tuple[int, int, int, int], color: str, min_v: int, min_s: int) -> float:
    import cv2

    x1, y1, x2, y2 = box
    roi = image[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
    if roi.size == 0:
        return 0.0
    hsv = cv2.cvtColor(roi, cv2.COLOR_BGR2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    mask = (v >= min_v) & (s >= min_s)
    hue_ok = np.zeros_like(mask)
    for lo, hi in _HUE_OK[color]:
        hue_ok |= (h >= lo) & (h < hi)
    return float(np.count_nonzero(mask & hue_ok)) / float(mask.size)


class SignalHead:
    """One head's state over time (image-read or controller-fed)."""

    def __init__(self, config: SignalHeadConfig, lamp_boxes: Sequence[tuple[str, tuple[int, int, int, int]]]) -> None:
        self.config = config
        self.id = config.id
        self.lamp_boxes = lamp_boxes  # (colour, box in frame pixels)
        self._state = SignalState.UNKNOWN
        self._since: float | None = None
        self._candidate: SignalState | None = None
        self._candidate_since = 0.0
        self._candidate_count = 0
        self._unreadable = 0
        self._lit: dict[str, float] = {}
        self._external: tuple[SignalState, float] | None = None  # (state, camera-clock time it was told)
        self._lock = threading.Lock()

    # -- image --------------------------------------------------------------------------------
    def classify(self, image: np.ndarray) -> tuple[SignalState, dict[str, float]]:
        """One frame's verdict, without hysteresis."""
        cfg = self.config
        lit = {c: lamp_lit_fraction(image, b, c, cfg.min_value, cfg.min_saturation) for c, b in self.lamp_boxes}
        if not lit:
            return SignalState.UNKNOWN, lit
        ranked = sorted(lit.items(), key=lambda kv: kv[1], reverse=True)
        best_color, best = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if best < cfg.min_lit_fraction or best < cfg.dominance * second:
            return SignalState.UNKNOWN, lit
        return SignalState(best_color), lit

    def observe(self, t: float, image: np.ndarray | None) -> SignalReading:
        if self.config.source == "controller":
            return self._from_controller(t)
        if image is None:
            return self._apply(t, SignalState.UNKNOWN)
        state, self._lit = self.classify(image)
        return self._apply(t, state)

    def _apply(self, t: float, state: SignalState) -> SignalReading:
        cfg = self.config
        if state is SignalState.UNKNOWN:
            self._unreadable += 1
            self._candidate, self._candidate_count = None, 0
            if self._unreadable >= cfg.unknown_after_frames:
                self._state, self._since = SignalState.UNKNOWN, None
            return self.reading()
        self._unreadable = 0
        if state == self._state:
            self._candidate, self._candidate_count = None, 0
            return self.reading()
        if state != self._candidate:
            self._candidate, self._candidate_since, self._candidate_count = state, t, 0
        self._candidate_count += 1
        if self._candidate_count >= cfg.confirm_frames:
            # The state began when it was first seen, not when it was confirmed.
            self._state, self._since = state, self._candidate_since
            self._candidate, self._candidate_count = None, 0
        return self.reading()

    def reading(self) -> SignalReading:
        return SignalReading(self._state, self._since, dict(self._lit))

    # -- controller ---------------------------------------------------------------------------
    def set_external(self, state: SignalState, t: float) -> None:
        """A controller's report (thread-safe: called from the MQTT thread)."""
        with self._lock:
            self._external = (state, t)

    def _from_controller(self, t: float) -> SignalReading:
        with self._lock:
            ext = self._external
        if ext is None or t - ext[1] > self.config.controller_timeout_s or ext[1] > t + 1.0:
            state = SignalState.UNKNOWN
        else:
            state = ext[0]
        if state != self._state:
            self._state = state
            self._since = None if state is SignalState.UNKNOWN else (ext[1] if ext else t)
        return self.reading()


class SignalBoard:
    """All heads of one camera; `update` once per analysed frame, before the rules read it."""

    def __init__(self, heads: list[SignalHead]) -> None:
        self.heads = {h.id: h for h in heads}
        self.readings: dict[str, SignalReading] = {
            h.id: SignalReading(SignalState.UNKNOWN, None, {}) for h in heads
        }
        self.t = 0.0

    @classmethod
    def from_config(
        cls, configs: list[SignalHeadConfig], reference_wh: tuple[int, int], frame_wh: tuple[int, int]
    ) -> SignalBoard:
        heads = []
        for cfg in configs:
            boxes = []
            for lamp in cfg.lamps:
                pts = scale_points(np.asarray(lamp.box, np.float32).reshape(2, 2), reference_wh, frame_wh)
                x1, y1 = np.floor(pts[0]).astype(int)
                x2, y2 = np.ceil(pts[1]).astype(int)
                boxes.append((lamp.color, (int(x1), int(y1), int(x2), int(y2))))
            heads.append(SignalHead(cfg, boxes))
        return cls(heads)

    def update(self, t: float, image: np.ndarray | None) -> None:
        self.t = t
        for head_id, head in self.heads.items():
            self.readings[head_id] = head.observe(t, image)

    def reading(self, head_id: str) -> SignalReading:
        return self.readings[head_id]

    def set_external(self, head_id: str, state: SignalState, t: float | None = None) -> bool:
        """A controller's state for a head, at camera-clock time t (default: the latest frame's)."""
        head = self.heads.get(head_id)
        if head is None:
            return False
        head.set_external(state, self.t if t is None else t)
        return True


def signal_board(rules: list) -> SignalBoard | None:
    """The camera's signal board (for a controller feeding states), if a rule uses one."""
    for rule in rules:
        board = getattr(rule, "board", None)
        if isinstance(board, SignalBoard):
            return board
    return None
