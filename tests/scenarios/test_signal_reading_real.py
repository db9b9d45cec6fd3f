"""Signal heads read on real footage, with default settings, against states labelled by looking at
frames (tests/scenarios/labels/signals_<clip>.yaml: each head's lamp boxes in the clip's pixels and
its true state per time span).

Every labelled frame is read at ~5 fps through a `SignalBoard` (hysteresis included: what the rules
see). Per head: the share of red frames read red and of green frames read green must reach a floor
measured on these clips, and no frame may read the opposite colour, nor red/green while the head
shows both at once (`mixed`: a red ball with a lit green turn arrow drawn as one head). The same
heads are read again with their boxes drawn loose (1.6x and 2x the lamp) and offset by a quarter
of the lamp: reading must not depend on how tightly a box is drawn.

    EDGE_DATA_DIR=../shared/data .venv/bin/python tests/scenarios/test_signal_reading_real.py

prints the table of docs/benchmarks.md ("Signal reading").
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from edge.rules.signals import SignalBoard
from edge.scene import SignalHeadConfig

LABELS = Path(__file__).parent / "labels"
CLIPS = sorted(p.stem.removeprefix("signals_") for p in LABELS.glob("signals_*.yaml"))
FPS = 5.0
# Box variants: (name, scale of the box about its centre, offset as a share of the box's size).
VARIANTS = [("tight", 1.0, 0.0), ("loose 1.6x", 1.6, 0.0), ("loose 2x", 2.0, 0.0), ("offset", 1.3, 0.25)]

# Floors (share of labelled frames read right, per clip / head / colour), measured with the default
# settings (docs/benchmarks.md, "Signal reading") a little under what every box variant reaches.
# The Hai Phong heads flicker dark now and then (a 7 s clip: few frames), so their floors are lower.
FLOORS = {
    ("hanoi_lythuongkiet_hangbai_intersection_trafficlight", "near-right"): {"red": 0.95, "green": 0.95},
    ("hanoi_lythuongkiet_hangbai_intersection_trafficlight", "far-centre"): {"red": 0.95, "green": 0.9},
    ("vn_intersection_cctv_phone_screenrec_signal", "main"): {"red": 0.95, "green": 0.95},
    ("vn_intersection_cctv_red_queue_saigon-label", "right"): {"red": 0.9},
    ("vn_haiphong_intersection_cctv_signals_stopline", "left"): {"red": 0.75},
    ("vn_haiphong_intersection_cctv_signals_stopline", "right"): {"red": 0.8},
}


MIXED_FLOOR = 0.9


def load(clip: str) -> dict:
    return yaml.safe_load((LABELS / f"signals_{clip}.yaml").read_text(encoding="utf-8"))


def _box(box: list[float], scale: float, offset: float, size: tuple[int, int]) -> tuple[float, ...]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + offset * w, (y1 + y2) / 2 + offset * h
    W, H = size
    return (
        max(0.0, cx - w * scale / 2),
        max(0.0, cy - h * scale / 2),
        min(W, cx + w * scale / 2),
        min(H, cy + h * scale / 2),
    )


# A new state counts after `confirm_frames` frames in a row (0.4 s at 5 fps): the first frames of
# each span after a change are not scored.
SETTLE_S = 0.4


def truth(head: dict, t: float) -> str | None:
    for i, span in enumerate(head["spans"]):
        settle = SETTLE_S if i > 0 or span["from"] > 0 else 0.0
        if span["from"] + settle <= t <= span["to"]:
            return span["state"]
    return None


def read_clip(clip: str, scale: float = 1.0, offset: float = 0.0) -> dict[str, Counter]:
    """Per head: Counter of (true state, read state) over the labelled frames at ~FPS."""
    import cv2

    from edge.data import video_path

    labels = load(clip)
    size = tuple(labels["size"])
    heads = [
        SignalHeadConfig(
            id=h["id"],
            lamps=[{"color": lamp["color"], "box": _box(lamp["box"], scale, offset, size)} for lamp in h["lamps"]],
        )
        for h in labels["heads"]
    ]
    board = SignalBoard.from_config(heads, size, size)
    cap = cv2.VideoCapture(str(video_path(labels["video"])))
    assert cap.isOpened(), labels["video"]
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == size
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    counts: dict[str, Counter] = {h["id"]: Counter() for h in labels["heads"]}
    index, next_t = 0, 0.0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        t = index / fps
        index += 1
        if t + 1e-6 < next_t:
            continue
        next_t += 1.0 / FPS
        board.update(t, img)
        for h in labels["heads"]:
            want = truth(h, t)
            if want is not None:
                counts[h["id"]][(want, board.reading(h["id"]).state.value)] += 1
    cap.release()
    return counts


def _need_clip(clip: str) -> None:
    from edge.data import data_dir

    path = data_dir() / "videos" / load(clip)["video"]
    if not path.is_file():
        pytest.skip(f"{path} is missing (set EDGE_DATA_DIR to the shared data folder)")


def share(c: Counter, state: str) -> float | None:
    n = sum(v for (want, _), v in c.items() if want == state)
    return None if n == 0 else c[(state, state)] / n


def wrong(c: Counter) -> int:
    """Frames read as a colour the head did not show: red for green or mixed (a false red accuses),
    green for red, yellow for red or green. (Green for mixed accuses nobody: a head whose red ball
    flickers dark beside its lit arrow.)"""
    bad = {("green", "red"), ("mixed", "red"), ("red", "green"), ("red", "yellow"), ("green", "yellow")}
    return sum(v for k, v in c.items() if k in bad)


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize(("variant", "scale", "offset"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_heads_read_right_whatever_the_box(clip, variant, scale, offset):
    _need_clip(clip)
    counts = read_clip(clip, scale, offset)
    for head, c in counts.items():
        assert wrong(c) == 0, f"{clip} {head} ({variant}): wrong colour read {dict(c)}"
        for state, floor in FLOORS.get((clip, head), {}).items():
            got = share(c, state)
            assert got is not None, f"{clip} {head}: no labelled {state} frames"
            assert got >= floor, f"{clip} {head} ({variant}): {state} read {got:.2f} < {floor} {dict(c)}"
        mixed = sum(v for (want, _), v in c.items() if want == "mixed")
        if mixed:  # a red ball with its lit green arrow, drawn as one head: in doubt, mostly unknown
            assert c[("mixed", "unknown")] >= MIXED_FLOOR * mixed, f"{clip} {head} ({variant}): {dict(c)}"


def main() -> None:
    print("| clip | head | boxes | red read red | green read green | wrong colour | frames |")
    print("|---|---|---|---|---|---|---|")
    for clip in CLIPS:
        for variant, scale, offset in VARIANTS:
            for head, c in read_clip(clip, scale, offset).items():
                cells = []
                for state in ("red", "green"):
                    s = share(c, state)
                    cells.append("–" if s is None else f"{s:.2f}")
                mixed = sum(v for (w, _), v in c.items() if w == "mixed")
                if mixed:
                    cells = [
                        f"mixed: unknown {c[('mixed', 'unknown')] / mixed:.2f}, green {c[('mixed', 'green')]}",
                        "–",
                    ]
                print(
                    f"| {clip} | {head} | {variant} | {cells[0]} | {cells[1]} | {wrong(c)} | {sum(c.values())} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
