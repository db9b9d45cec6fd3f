"""Signal heads: red / yellow / green / unknown, read from the lamps' image regions or told by a controller.

Reading the picture: in each lamp's box, the lit blob (the largest connected region of bright,
saturated pixels with a hue that fits the lamp, with the overexposed white core it surrounds; sun
glare and a washed-out sky are bright but white, so alone they count for nothing), measured against
the lamp's expected disc (from the head's geometry), not against the box: a box drawn loose or a
little off reads as a tight one. The head is in a lamp's state when that lamp's lit share is high
enough and dominates every other lamp's of the head (a lit lamp stands out against the dark ones;
two lamps lit alike, as a red ball with a green arrow drawn as one head, or none lit: unknown, so a
dark amber never reads as anything). A new state is adopted only after it has been seen
`confirm_frames` times in a row (hysteresis against one odd frame), and a head that cannot be read
for `unknown_after_frames` frames becomes unknown. Rules never accuse anyone while a head is
unknown. A phase is dated from its start: from the first frame that leaned toward it, and across a
short unreadable gap (LED flicker) between two readings of the same colour.

Several heads for one approach (`combined`): red only when at least one head reads red and none
reads another colour; they agree on green or yellow likewise; otherwise unknown.

A signal controller can instead publish the state (see `edge.node`): `SignalBoard.set_external`
stores it with its time; a state older than `controller_timeout_s` is unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from edge.geometry import scale_points
from edge.scene import SignalHeadConfig

if TYPE_CHECKING:
    from edge.rules.base import BuildContext


class SignalState(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"
    UNKNOWN = "unknown"


# OpenCV hue (0-180) ranges that fit each lamp colour: a guard, not the judge. Amber lamps read at
# hue ~5-40 and red ones wrap around 0/180, reaching into magenta (~135) where a lens fringes purple,
# so red and amber overlap in the orange: the lamp's position in the head decides, the hue rules
# out the glow of a neighbouring lamp of another colour (at night a red lamp's bloom covers the
# amber one: red-hued, so not amber) and green things behind a red lamp's box.
_HUE_OK = {
    "red": ((0, 25), (135, 181)),
    "yellow": ((5, 45),),
    "green": ((35, 105),),
}
# A lit lamp's core is often overexposed white; such pixels count as part of its blob when they
# touch its coloured halo (white glare or a white car alone is not a lamp).
_WHITE_V = 215
# The lit blob must be at least this share coloured (the rest: its white core).
_MIN_COLOURED = 0.2
# A frame "leans" toward a lamp when that lamp dominates but is lit less than min_lit_fraction
# (at least this share of it): not a reading, but enough to date the start of a phase.
_LEAN = 0.25
# Red and green never show together on one head's single state, so beside a lit red the faintest
# green (this share of min_lit_fraction, at this share of min_value: a dim green arrow drawn as the
# head's green lamp beside its lit red ball) puts the verdict in doubt: red ahead, green to turn.
_CROSS = 0.25
_CROSS_V = 0.75
_OPPOSITE = {"red": "green", "green": "red"}
# An unreadable gap this short between two readings of the same colour is the same phase (LED
# flicker, a passing truck): no signal goes through another colour and back this fast.
PHASE_GAP_S = 3.0
# A green arrow counts as lit this long after it was last seen lit: LEDs flicker, and an arrow
# missed for a frame must not turn a permitted turn into an accusation.
ARROW_HOLD_S = 2.0


@dataclass(frozen=True)
class SignalReading:
    state: SignalState
    since: float | None  # camera-clock seconds when this state began (None: unknown)
    lit: dict[str, float]  # lamp colour -> lit share of the lamp's disc (image heads)
    frame: SignalState = SignalState.UNKNOWN  # this frame's own verdict, before hysteresis
    # Green arrow lamps lit now or within ARROW_HOLD_S (a movement they let go on a red ball).
    arrows: frozenset[str] = frozenset()

    def seconds_in_state(self, t: float) -> float:
        return 0.0 if self.since is None else max(0.0, t - self.since)


def lamp_diameter(boxes: Sequence[tuple[int, int, int, int]]) -> float:
    """The lamp's expected diameter in pixels, from the head's drawn boxes: the box's short side,
    or, when the lamps are stacked (boxes side by side), the spacing of their centres, which does
    not grow when the boxes are drawn loose."""
    sides = [min(b[2] - b[0], b[3] - b[1]) for b in boxes]
    d = float(max(1, min(sides)))
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
    for i, a in enumerate(centres):
        for j, c in enumerate(centres):
            if i < j:
                gap = float(np.hypot(a[0] - c[0], a[1] - c[1]))
                if gap <= 1.5 * max(sides[i], sides[j]):  # neighbours in one stack
                    d = min(d, gap)
    return max(1.0, d)


def lamp_lit_share(
    image: np.ndarray, box: tuple[int, int, int, int], color: str, min_v: int, min_s: int, diameter: float
) -> float:
    """The lit blob inside a lamp's box, as a share of the lamp's disc (pi/4 d^2), capped at 1.

    The blob is the largest connected region of bright pixels that are saturated with a hue that
    fits the lamp (plus overexposed white pixels touching them); it must be partly coloured. Its
    size against the lamp's expected disc, not against the box, so that a loose box reads as a
    tight one."""
    import cv2

    x1, y1, x2, y2 = box
    roi = image[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
    if roi.size == 0:
        return 0.0
    hsv = cv2.cvtColor(roi, cv2.COLOR_BGR2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hue_ok = np.zeros(h.shape, bool)
    for lo, hi in _HUE_OK[color]:
        hue_ok |= (h >= lo) & (h < hi)
    coloured = (v >= min_v) & (s >= min_s) & hue_ok
    if not coloured.any():
        return 0.0
    # White-hot pixels, unless saturated with another lamp's hue (that is the other lamp's glow).
    white = (v >= max(min_v, _WHITE_V)) & (s < min_s)
    mask = (coloured | white).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    best = 0
    for i in range(1, n):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area <= best:
            continue
        if np.count_nonzero(coloured[labels == i]) >= _MIN_COLOURED * area:
            best = area
    disc = np.pi / 4 * diameter * diameter
    return float(min(1.0, best / disc))


class SignalHead:
    """One head's state over time (image-read or controller-fed)."""

    def __init__(self, config: SignalHeadConfig, lamp_boxes: Sequence[tuple[str, tuple[int, int, int, int]]]) -> None:
        self.config = config
        self.id = config.id
        self.lamp_boxes = lamp_boxes  # (colour, box in frame pixels)
        # Which lamps are green arrows (aligned with lamp_boxes, the config's order): read apart, so
        # a red ball with its green turn arrow is red for the other movements, not a doubt.
        arrows: list[str | None] = [str(lamp.arrow) if lamp.arrow else None for lamp in config.lamps][: len(lamp_boxes)]
        self.lamp_arrows = arrows + [None] * (len(lamp_boxes) - len(arrows))
        self._arrow_seen: dict[str, float] = {}
        self.diameter = lamp_diameter([b for _, b in lamp_boxes]) if lamp_boxes else 1.0
        self._state = SignalState.UNKNOWN
        self._since: float | None = None
        self._frame = SignalState.UNKNOWN
        self._candidate: SignalState | None = None
        self._candidate_since = 0.0
        self._candidate_count = 0
        self._unreadable = 0
        self._lit: dict[str, float] = {}
        # The run of frames leaning toward one colour up to now: (colour, since).
        self._lean: tuple[SignalState, float] | None = None
        # The last colour read (confirmed), its phase start and the last time it was seen.
        self._last: tuple[SignalState, float, float] | None = None
        # Frames that showed red and green together, recent red/green verdicts, and until when
        # the head is in doubt (see _doubt).
        self._conflicts: list[float] = []
        self._rg: list[tuple[float, SignalState]] = []
        self._doubt_until = float("-inf")
        self._t = 0.0
        self._external: tuple[SignalState, float] | None = None  # (state, camera-clock time it was told)
        self._lock = threading.Lock()

    # -- image --------------------------------------------------------------------------------
    def classify(self, image: np.ndarray) -> tuple[SignalState, dict[str, float]]:
        """One frame's verdict, without hysteresis."""
        state, _, lit = self._judge(image)
        return state, lit

    def _judge(self, image: np.ndarray) -> tuple[SignalState, SignalState | None, dict[str, float]]:
        """(verdict, the colour the frame leans toward or None, lit share per lamp).

        A lamp is lit when its blob covers min_lit_fraction of its disc and `dominance` times
        every other lamp's: the lit lamp stands out against the head's dark ones. None lit, two
        lit alike, or red with any sign of green beside it (a red ball and a green arrow drawn
        as one head without `arrow:` on the arrow's lamp), or green with a lit red: unknown.
        Lamps marked `arrow:` are read apart: lit, they go in the reading's `arrows`."""
        cfg = self.config
        lit: dict[str, float] = {}
        balls = [cb for cb, arrow in zip(self.lamp_boxes, self.lamp_arrows, strict=True) if arrow is None]
        for (c, b), arrow in zip(self.lamp_boxes, self.lamp_arrows, strict=True):
            if arrow is not None:
                share = lamp_lit_share(image, b, c, cfg.min_value, cfg.min_saturation, self.diameter)
                lit[f"arrow_{arrow}"] = max(lit.get(f"arrow_{arrow}", 0.0), share)
                if share >= cfg.min_lit_fraction:
                    self._arrow_seen[arrow] = self._t
        for c, b in balls:
            lit[c] = max(lit.get(c, 0.0), lamp_lit_share(image, b, c, cfg.min_value, cfg.min_saturation, self.diameter))
        lit_balls = {c: v for c, v in lit.items() if not c.startswith("arrow_")}
        lit, arrows_lit = lit_balls, {c: v for c, v in lit.items() if c.startswith("arrow_")}
        verdict = self._judge_balls(image, lit, balls)
        lit.update(arrows_lit)
        return verdict

    def _judge_balls(
        self, image: np.ndarray, lit: dict[str, float], balls: list[tuple[str, tuple[int, int, int, int]]]
    ) -> tuple[SignalState, SignalState | None, dict[str, float]]:
        cfg = self.config
        if not lit:
            return SignalState.UNKNOWN, None, lit
        ranked = sorted(lit.items(), key=lambda kv: kv[1], reverse=True)
        best_color, best = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        # No lamp lit, or two lit alike (glare, a neighbour's bloom of the same hue): unknown.
        if best <= 0.0 or best < cfg.dominance * second:
            return SignalState.UNKNOWN, None, lit
        if best < cfg.min_lit_fraction:
            lean = SignalState(best_color) if best >= _LEAN * cfg.min_lit_fraction else None
            return SignalState.UNKNOWN, lean, lit
        other = _OPPOSITE.get(best_color)
        faint_v = int(_CROSS_V * cfg.min_value)
        for c, b in balls:
            if c != other:
                continue
            # Against a red verdict the faintest green counts (a false red accuses); against a
            # green one only a red lit as such (a pink shirt behind a loose red box is no red).
            if (
                lamp_lit_share(image, b, c, faint_v, cfg.min_saturation, self.diameter) >= _CROSS * cfg.min_lit_fraction
                if best_color == "red"
                else lit[c] >= cfg.min_lit_fraction
            ):
                self._conflicts = [x for x in self._conflicts if self._t - x <= PHASE_GAP_S] + [self._t]
                return SignalState.UNKNOWN, None, lit
        return SignalState(best_color), SignalState(best_color), lit

    def observe(self, t: float, image: np.ndarray | None) -> SignalReading:
        if self.config.source == "controller":
            return self._from_controller(t)
        if image is None:
            self._lit = {}
            return self._apply(t, SignalState.UNKNOWN, None)
        self._t = t
        state, lean, self._lit = self._judge(image)
        return self._apply(t, *self._doubt(t, state, lean))

    def _doubt(self, t: float, state: SignalState, lean: SignalState | None) -> tuple[SignalState, SignalState | None]:
        """Red and green on one head, together or in turn within PHASE_GAP_S (a red ball with its
        green arrow drawn as one head, flickering): no single state, so none for PHASE_GAP_S. One
        frame with both (the blend at a change) holds back a new red or green as long."""
        if state in (SignalState.RED, SignalState.GREEN):
            self._rg = [(x, c) for x, c in self._rg if 0.0 <= t - x <= PHASE_GAP_S] + [(t, state)]
            if sum(a[1] is not b[1] for a, b in zip(self._rg, self._rg[1:], strict=False)) >= 2:
                self._doubt_until = t + PHASE_GAP_S
        recent = [x for x in self._conflicts if 0.0 <= t - x <= PHASE_GAP_S]
        if len(recent) >= self.config.confirm_frames:
            self._doubt_until = max(self._doubt_until, recent[-1] + PHASE_GAP_S)
        if t <= self._doubt_until:
            self._state, self._since = SignalState.UNKNOWN, None
            return SignalState.UNKNOWN, None
        if recent and state in (SignalState.RED, SignalState.GREEN) and state is not self._state:
            return SignalState.UNKNOWN, None
        return state, lean

    def _apply(self, t: float, state: SignalState, lean: SignalState | None = None) -> SignalReading:
        cfg = self.config
        self._frame = state
        if lean is None:
            self._lean = None
        elif self._lean is None or self._lean[0] is not lean:
            self._lean = (lean, t)
        if state is not SignalState.UNKNOWN and self._last is not None and self._last[0] is not state:
            self._last = None  # another colour seen: what follows is a new phase
        if state is SignalState.UNKNOWN:
            self._unreadable += 1
            self._candidate, self._candidate_count = None, 0
            if self._unreadable >= cfg.unknown_after_frames:
                self._state, self._since = SignalState.UNKNOWN, None
            return self.reading()
        self._unreadable = 0
        if state == self._state:
            self._candidate, self._candidate_count = None, 0
            self._remember(t)
            return self.reading()
        if state != self._candidate:
            self._candidate, self._candidate_since, self._candidate_count = state, t, 0
        self._candidate_count += 1
        if self._candidate_count >= cfg.confirm_frames:
            self._state, self._since = state, self._phase_start(state, t)
            self._candidate, self._candidate_count = None, 0
            self._remember(t)
        return self.reading()

    def _phase_start(self, state: SignalState, t: float) -> float:
        """When the phase now confirmed began: when it was first seen, not when it was confirmed;
        earlier still when the frames just before leaned toward it (lit, but weakly), and the
        same phase as before when only a short unreadable gap (flicker, occlusion) separates it
        from the last reading of this colour."""
        since = self._candidate_since
        if self._lean is not None and self._lean[0] is state:
            since = min(since, self._lean[1])
        if self._last is not None and self._last[0] is state and since - self._last[2] <= PHASE_GAP_S:
            since = min(since, self._last[1])
        return since

    def _remember(self, t: float) -> None:
        if self._since is not None:
            self._last = (self._state, self._since, t)

    def reading(self) -> SignalReading:
        arrows = frozenset(a for a, seen in self._arrow_seen.items() if 0.0 <= self._t - seen <= ARROW_HOLD_S)
        return SignalReading(self._state, self._since, dict(self._lit), self._frame, arrows)

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
        self.readings: dict[str, SignalReading] = {h.id: SignalReading(SignalState.UNKNOWN, None, {}) for h in heads}
        self.t = 0.0
        self._updated: float | None = None

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
        """Read every head on this frame; once per frame, however many rules share the board (a
        second call would count the frame twice in the hysteresis)."""
        if self._updated == t:
            return
        self._updated = self.t = t
        for head_id, head in self.heads.items():
            self.readings[head_id] = head.observe(t, image)

    def reading(self, head_id: str) -> SignalReading:
        return self.readings[head_id]

    def combined(self, head_ids: Sequence[str]) -> SignalReading:
        """The state of an approach controlled by several heads (they show the same phase): a
        colour when at least one head reads it and every other head reads it too or is unknown
        (red: no head green or yellow); unknown when they disagree or none is read. Since: the
        earliest start among the heads reading it."""
        readings = [self.readings[h] for h in head_ids]
        if len(readings) == 1:
            return readings[0]
        arrows = frozenset().union(*(r.arrows for r in readings))  # any head's arrow lets its movement go
        states = {r.state for r in readings} - {SignalState.UNKNOWN}
        if len(states) != 1:
            return SignalReading(SignalState.UNKNOWN, None, {}, arrows=arrows)
        (state,) = states
        since = [r.since for r in readings if r.state is state and r.since is not None]
        lit = {f"{h}.{c}": v for h, r in zip(head_ids, readings, strict=True) for c, v in r.lit.items()}
        return SignalReading(state, min(since) if since else None, lit, state, arrows)

    def set_external(self, head_id: str, state: SignalState, t: float | None = None) -> bool:
        """A controller's state for a head, at camera-clock time t (default: the latest frame's)."""
        head = self.heads.get(head_id)
        if head is None:
            return False
        head.set_external(state, self.t if t is None else t)
        return True


def camera_signal_board(ctx: BuildContext) -> SignalBoard:
    """The camera's one signal board, shared by every rule that reads its heads (read once a frame)."""
    return ctx.shared(
        "signal_board", lambda: SignalBoard.from_config(ctx.camera.scene.signals, ctx.reference_wh, ctx.frame_wh)
    )


def signal_board(rules: list) -> SignalBoard | None:
    """The camera's signal board (for a controller feeding states), if a rule uses one."""
    for rule in rules:
        board = getattr(rule, "board", None)
        if isinstance(board, SignalBoard):
            return board
    return None
