"""Plate text: a Vietnamese plate crop -> its text, or "unreadable". Offline: the PP-OCRv6 (small)
text-line recogniser that ships inside the `rapidocr` 3.10 wheel (no download at run time; chosen
over rapidocr-onnxruntime's PP-OCRv4: its confidences separate right from wrong reads far better,
docs/benchmarks.md "Plate reading").

Lines: PP-OCR's text detector from the same wheel (`TextLineFinder`) finds the plate's one or two
text lines and each is cut to its own extent (not PP-OCR's whole pipeline: on a tight plate crop it
breaks a line into fragments, which are joined here by rows). When it finds no such lines, or no
layout fits what is read from them, a wide crop is one line and a square one is cut at the
faintest row between its two lines; each line goes to the recogniser.

A wrong plate accuses an innocent owner, so the reader prefers "unreadable" to a guess:
- the recogniser's CTC output is restricted to [0-9A-Z.-] and each character keeps the model's own
  (unrenormalised) probability: a glyph the model takes for something else scores low;
- the text must fit a Vietnamese layout (`parse`): province 2 digits, series 1-2 letters (a letter
  and a digit on a two-line plate's top row), 4 or 5 digits;
- the usual confusions (O/0, I/1, B/8, D/0, S/5, Z/2, G/6) are fixed only where the layout decides
  (a digit position or a letter position); a place the layout leaves open is never changed;
- a character's confidence is the probability of everything the layout turns into it (a "D" and
  a "0" at a digit position); punctuation is not counted;
- several views of the crop (as cut, padded, contrast-equalised) must read the same plate; the
  plate's confidence is the mean over the views of each one's least sure character, and below
  `min_confidence` it is unreadable;
- across a track's frames (`PlateVote`) the reads must agree; a split vote is unreadable.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

UNREADABLE = "unreadable"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-."
# Letters Vietnamese series use (no I, J, O, Q, W: they would read as digits or not at all).
SERIES_LETTERS = set("ABCDEFGHKLMNPRSTUVXYZ")
TO_DIGIT = {"O": "0", "D": "0", "Q": "0", "I": "1", "B": "8", "S": "5", "Z": "2", "G": "6"}
TO_LETTER = {"0": "D", "8": "B", "5": "S", "2": "Z", "6": "G"}
MODEL_FILE = "PP-OCRv6_rec_small.onnx"
LINE_MODEL_FILE = "PP-OCRv6_det_small.onnx"  # the text detector beside it: finds the plate's lines
MIN_CONFIDENCE = 0.80  # mean over the views; docs/benchmarks.md "Plate reading" (chosen on the tuning half)
MAX_FIXES = 2  # more position-decided fixes than this: the read is too far from a plate
REC_HEIGHT = 48
ONE_LINE_RATIO = 2.8  # width/height above which a plate crop is one line (VN: 4.7 one-line, <=2.0 two-line)


def default_model() -> Path | None:
    """The recogniser inside the rapidocr wheel (PP-OCRv6 small); None when the package is absent.
    Found without importing rapidocr's own code (its pipeline is not used here)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILE
    return path if path.is_file() else None


def default_line_model() -> Path | None:
    """The text detector beside the recogniser in the rapidocr wheel; None when absent."""
    rec = default_model()
    path = rec.parent / LINE_MODEL_FILE if rec is not None else None
    return path if path is not None and path.is_file() else None


@dataclass(frozen=True)
class LineRead:
    text: str
    probs: tuple[float, ...]  # one per character of text
    # Per character: the model's probability of each character of the plate alphabet it was
    # likely to be (>= 1%), at the frame where that character peaks. The layout decides which of
    # them are the same plate character (a "D" and a "0" at a digit position).
    alts: tuple[tuple[tuple[str, float], ...], ...] = ()


class TextLineModel:
    """A PP-OCR CTC text-line recogniser with the pool's model interface (preprocess / infer /
    decode), so it can run on `InferencePool` workers; `__call__` runs it here."""

    max_batch: int | None = 1
    names = ("text",)

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        chars = self.session.get_modelmeta().custom_metadata_map.get("character")
        if not chars:
            raise ValueError(f"{path}: no 'character' table in the model's metadata (not a PP-OCR recogniser)")
        table = ["<blank>", *chars.splitlines(), " "]
        self.keep = np.array([0] + [i for i, c in enumerate(table) if c in ALPHABET], np.int64)
        self.table = [table[i] for i in self.keep]
        self.model_name = Path(path).name
        self.model_version = Path(path).stem
        self.provider = "CPUExecutionProvider"

    def preprocess(self, line: np.ndarray) -> tuple[np.ndarray, None]:
        import cv2

        h, w = line.shape[:2]
        width = max(8, min(640, int(np.ceil(REC_HEIGHT * w / max(h, 1)))))
        img = cv2.resize(line, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        img = (img / 255.0 - 0.5) / 0.5
        blob = np.zeros((1, 3, REC_HEIGHT, max(width, 320)), np.float32)  # PP-OCR pads to >= 320
        blob[0, :, :, :width] = img.transpose(2, 0, 1)
        return blob, None

    def infer(self, blob: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: blob})[0]

    def decode(self, out: np.ndarray, _lb: object = None, _hw: object = None) -> LineRead:
        probs = out[:, self.keep]  # only blank and [0-9A-Z.-]; the model's own probabilities
        idx = probs.argmax(axis=1)
        best = probs.max(axis=1)
        text: list[str] = []
        conf: list[float] = []
        peak: list[int] = []  # the frame where each character is surest
        prev = 0
        for t, (i, p) in enumerate(zip(idx, best, strict=True)):
            if i != 0 and i == prev:
                if p > conf[-1]:
                    conf[-1], peak[-1] = float(p), t
            elif i != 0:
                text.append(self.table[i])
                conf.append(float(p))
                peak.append(t)
            prev = i
        alts = tuple(
            tuple((self.table[k], float(probs[t, k])) for k in np.flatnonzero(probs[t] >= 0.01) if k != 0) for t in peak
        )
        return LineRead("".join(text), tuple(conf), alts)

    def __call__(self, line: np.ndarray) -> LineRead:
        blob, _ = self.preprocess(line)
        return self.decode(self.infer(blob)[0])


LINE_SIDE = 256  # px: the longer side of a plate crop as the text detector sees it
LINE_THRESHOLD = 0.3  # DB text probability of a text pixel (PP-OCR's default)
LINE_UNCLIP = 1.5  # DB regions are shrunk text: grown back by area * this / perimeter (PP-OCR's)


class TextLineFinder:
    """PP-OCRv6's text detector (the same rapidocr wheel) as a plate's line finder: where the
    text lines are, so each is cut to its own extent, not at a fixed row or with the bumper and
    the frame around it (a car plate seen small in a wide junction view). Pool interface like
    `TextLineModel`; `__call__` runs it here and gives line boxes (x1, y1, x2, y2), top first."""

    max_batch: int | None = 1
    names = ("text_line",)

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.model_name = Path(path).name
        self.model_version = Path(path).stem
        self.provider = "CPUExecutionProvider"

    def preprocess(self, crop: np.ndarray) -> tuple[np.ndarray, None]:
        import cv2

        h, w = crop.shape[:2]
        k = LINE_SIDE / max(h, w)
        size = (max(32, round(w * k / 32) * 32), max(32, round(h * k / 32) * 32))
        img = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        img = (img - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        return img.transpose(2, 0, 1)[None].astype(np.float32), None

    def infer(self, blob: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: blob})[0]

    def decode(
        self, out: np.ndarray, _lb: object = None, hw: tuple[int, int] | None = None
    ) -> list[tuple[int, int, int, int]]:
        import cv2

        prob = out[0] if out.ndim == 3 else out[0, 0]
        ph, pw = prob.shape
        h, w = hw if hw is not None else (ph, pw)
        n, labels, stats, _ = cv2.connectedComponentsWithStats((prob > LINE_THRESHOLD).astype(np.uint8), connectivity=4)
        boxes = []
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if area < 0.002 * ph * pw or bh < 3 or float(prob[labels == i].mean()) < 0.5:
                continue  # specks, or a blur the detector is unsure of
            d = area * LINE_UNCLIP / (2 * (bw + bh))
            boxes.append([x - d, y - d, x + bw + d, y + bh + d])
        # Fragments of one line (a detector breaks "51F" and "598.81" apart) are joined by rows.
        lines: list[list[float]] = []
        for b in sorted(boxes, key=lambda b: (b[1] + b[3]) / 2):
            last = lines[-1] if lines else None
            if last is not None:
                overlap = min(last[3], b[3]) - max(last[1], b[1])
                if overlap > 0.5 * min(last[3] - last[1], b[3] - b[1]):
                    lines[-1] = [min(last[0], b[0]), min(last[1], b[1]), max(last[2], b[2]), max(last[3], b[3])]
                    continue
            lines.append(b)
        sx, sy = w / pw, h / ph
        return [
            (max(0, int(x1 * sx)), max(0, int(y1 * sy)), min(w, int(np.ceil(x2 * sx))), min(h, int(np.ceil(y2 * sy))))
            for x1, y1, x2, y2 in lines
        ]

    def __call__(self, crop: np.ndarray) -> list[tuple[int, int, int, int]]:
        blob, _ = self.preprocess(crop)
        return self.decode(self.infer(blob), None, crop.shape[:2])


def found_lines(crop: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[np.ndarray] | None:
    """The line finder's boxes as line crops, when they look like a plate's one or two lines
    (each at least 1/8 of the crop's width and 4 px high: specks and screws left out); None
    otherwise."""
    h, w = crop.shape[:2]
    ok = [b for b in boxes if b[2] - b[0] >= w / 8 and b[3] - b[1] >= 4]
    if len(ok) not in (1, 2):
        return None
    return [crop[y1:y2, x1:x2] for x1, y1, x2, y2 in ok]


def split_lines(crop: np.ndarray, force_two: bool = False) -> list[np.ndarray]:
    """A plate crop as its text lines: wide -> one; square -> two, cut at the row with the least
    ink between 30% and 70% of the height (the gap between the rows), halves when unclear."""
    h, w = crop.shape[:2]
    if w >= ONE_LINE_RATIO * h and not force_two:
        return [crop]
    gray = crop.mean(axis=2) if crop.ndim == 3 else crop.astype(np.float32)
    # Ink: local contrast along each row (edges of characters); the gap between rows has little.
    ink = np.abs(np.diff(gray, axis=1)).mean(axis=1)
    lo, hi = int(0.3 * h), int(0.7 * h)
    cut_at = lo + int(np.argmin(ink[lo:hi])) if hi - lo > 2 else h // 2
    pad = max(1, h // 20)
    return [crop[: min(h, cut_at + pad)], crop[max(0, cut_at - pad) :]]


@dataclass(frozen=True)
class PlateRead:
    text: str  # canonical ("30A-123.45", "29-B1 123.45") or UNREADABLE
    confidence: float
    lines: int
    raw: str = ""  # what the recogniser read, lines joined by a space
    reason: str = ""  # why unreadable

    @property
    def readable(self) -> bool:
        return self.text != UNREADABLE


def _fix(ch: str, want: str) -> str | None:
    """`ch` at a digit ('D') or letter ('L') position: itself, its position-decided fix, or None."""
    if want == "D":
        return ch if ch.isdigit() else TO_DIGIT.get(ch)
    if ch in SERIES_LETTERS:
        return ch
    fixed = TO_LETTER.get(ch)
    return fixed if fixed in SERIES_LETTERS else None


def _apply(chars: str, pattern: str) -> tuple[str, int] | None:
    """Fit `chars` to a pattern of D (digit), L (letter), X (letter or digit, left as read)."""
    if len(chars) != len(pattern):
        return None
    out, fixes = [], 0
    for ch, want in zip(chars, pattern, strict=True):
        if want == "X":
            if not (ch.isdigit() or ch in SERIES_LETTERS):
                return None  # the layout cannot say what it should be
            out.append(ch)
            continue
        f = _fix(ch, want)
        if f is None:
            return None
        fixes += f != ch
        out.append(f)
    return "".join(out), fixes


def _number(d: str) -> str:
    return f"{d[:3]}.{d[3:]}" if len(d) == 5 else d


def parse(lines: list[str]) -> tuple[str, int] | None:
    """Recognised line texts -> (canonical plate, fixes made), or None if no single layout fits.
    (`layout` also says which position is a digit, a letter or either.)"""
    got = layout(lines)
    return None if got is None else got[:2]


def layout(lines: list[str]) -> tuple[str, int, str] | None:
    """Recognised line texts -> (canonical plate, fixes made, pattern), the pattern one of D
    (digit), L (letter), X (either) per plate character [0-9A-Z] as read; None if no single
    layout fits.

    One line: PP S-NNNN / PP S-NNN.NN with S one or two letters ("30A-123.45", "93LD-001.03").
    Two lines: top PP-S with S a letter, two letters, or a letter and a digit ("29-B1", "59-AA",
    square car plates "68E"); bottom 4 or 5 digits."""
    lines = [s.upper() for s in lines if re.sub(r"[^0-9A-Z]", "", s.upper())]
    clean = [re.sub(r"[^0-9A-Z]", "", s) for s in lines]
    # A dot read in the number says it has five digits, the dot before the last two.
    dotted = bool(lines) and "." in lines[-1]
    if dotted and len(re.sub(r"[^0-9A-Z]", "", lines[-1].rsplit(".", 1)[1])) != 2:
        return None
    if len(clean) == 1:
        s = clean[0]
        fits = {}
        for series in ("L", "LL"):
            for digits in (5,) if dotted else (4, 5):
                got = _apply(s, "DD" + series + "D" * digits)
                if got is not None:
                    fits[(series, digits)] = got
        dash = re.match(r"^[^-]*?([0-9A-Z]+)-", lines[0].upper().strip())
        if dash and len(fits) > 1:  # a dash read after the series says how long the series is
            n = len(re.sub(r"[^0-9A-Z]", "", lines[0].upper().split("-")[0])) - 2
            fits = {k: v for k, v in fits.items() if len(k[0]) == n} or fits
        least = min((f for _, f in fits.values()), default=0)
        fits = {k: v for k, v in fits.items() if v[1] == least}
        if len(fits) != 1:
            return None  # none, or two layouts read it equally well ("51A12345" vs "51AB1234" with a B/8)
        (series, digits), (text, fixes) = next(iter(fits.items()))
        k = 2 + len(series)
        return f"{text[:k]}-{_number(text[k:])}", fixes, "DD" + series + "D" * digits
    if len(clean) == 2:
        top, bottom = clean
        tops = [(t, p) for t, p in ((_apply(top, p), p) for p in ("DDL", "DDLX")) if t is not None]
        bots = [(b, p) for b, p in ((_apply(bottom, "D" * n), "D" * n) for n in ((5,) if dotted else (4, 5))) if b]
        if len(tops) != 1 or len(bots) != 1:
            return None
        ((t, f1), p1), ((b, f2), p2) = tops[0], bots[0]
        head = t if len(t) == 3 else f"{t[:2]}-{t[2:]}"
        return f"{head} {_number(b)}", f1 + f2, p1 + p2
    return None


def plate_chars(text: str) -> str:
    """A plate as [0-9A-Z] only: how reads and labels are compared."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def char_confidences(reads: list[LineRead], pattern: str, text: str) -> list[float]:
    """How sure the model is of each plate character [0-9A-Z] of `text` (as the layout fixed it):
    the probability of every character it could have been that the layout turns into the same
    one (at a digit position a "D" 0.58 and a "0" 0.41 are a 0 at 0.99; at a letter position
    they are not the same). Punctuation is the layout's, not the plate's: not counted."""
    out: list[float] = []
    want = iter(zip(pattern, plate_chars(text), strict=True))
    for r in reads:
        alts = r.alts or tuple(((c, p),) for c, p in zip(r.text, r.probs, strict=True))
        for ch, cands in zip(r.text, alts, strict=True):
            if not plate_chars(ch):
                continue
            w, got = next(want)
            out.append(sum(p for c, p in cands if (c if w == "X" else _fix(c, w)) == got))
    return out


def _padded(crop: np.ndarray) -> np.ndarray:
    """A border added: the recogniser sees the glyphs at another scale and place."""
    b = max(2, crop.shape[0] // 8)
    return np.pad(crop, ((b, b), (b, b), (0, 0)), mode="edge")


def _contrast(crop: np.ndarray) -> np.ndarray:
    """Local contrast equalised on lightness (CLAHE): faint, shaded or glared glyphs."""
    import cv2

    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def _tight(crop: np.ndarray) -> np.ndarray:
    """4% cut off each side (a loose crop's frame and screws)."""
    h, w = crop.shape[:2]
    dy, dx = max(1, h // 25), max(1, w // 25)
    return crop[dy : h - dy, dx : w - dx]


VIEWS = {"as_cut": lambda c: c, "padded": _padded, "contrast": _contrast, "tight": _tight}
DEFAULT_VIEWS = ("as_cut", "padded", "contrast")


class PlateReader:
    """A plate crop -> `PlateRead`. `model` is a `TextLineModel` or anything that maps a line image
    to a `LineRead` (the pool's runner for it)."""

    def __init__(
        self,
        model,
        min_confidence: float = MIN_CONFIDENCE,
        views_agree: bool = True,
        views: tuple[str, ...] = DEFAULT_VIEWS,
        line_finder=None,
    ) -> None:
        self.model = model
        self.line_finder = line_finder  # a TextLineFinder (or its pool runner); None: rows only
        self.min_confidence = min_confidence
        self.views_agree = views_agree
        self.views = views

    def read(self, crop: np.ndarray) -> PlateRead:
        """Several views of the crop (`views`: as cut, with a border, with local contrast
        equalised) must all read the same plate, and the plate's confidence is the mean over
        the views of each one's least sure character: a glyph the model is unsure of flips
        between views, or scores low in some, more often than one view's probability says.
        The wrong plates of the real set read 0.5-0.9 in one view but <= 0.71 as the mean of
        three (docs/benchmarks.md "Plate reading")."""
        if crop is None or crop.size == 0 or min(crop.shape[:2]) < 8:
            return PlateRead(UNREADABLE, 0.0, 0, reason="crop too small")
        if crop.ndim == 2:
            crop = np.repeat(crop[:, :, None], 3, axis=2)
        names = self.views if self.views_agree else self.views[:1]
        reads: list[PlateRead] = []
        for i, name in enumerate(names):
            r = self._read_view(VIEWS[name](crop), gate=False)
            reads.append(r)
            if not r.readable or r.text != reads[0].text:
                break
            # The rest cannot lift the mean to the gate even read at 1.0: stop here.
            if (sum(x.confidence for x in reads) + len(names) - i - 1) / len(names) < self.min_confidence:
                break
        first = reads[0]
        conf = round(sum(r.confidence for r in reads) / len(names), 3)
        if not first.readable:
            return first
        if any(r.text != first.text for r in reads):
            seen = " / ".join(dict.fromkeys(r.text for r in reads))
            return PlateRead(UNREADABLE, conf, first.lines, first.raw, f"views disagree ({seen})")
        if len(reads) < len(names) or conf < self.min_confidence:
            return PlateRead(UNREADABLE, conf, first.lines, first.raw, f"confidence {conf} < {self.min_confidence}")
        return PlateRead(first.text, conf, first.lines, first.raw)

    def _read_view(self, crop: np.ndarray, gate: bool = True) -> PlateRead:
        # The lines where the text detector finds them; else (or when no layout fits) cut at
        # the faintest row; else the other line count (a loose crop can mislead the shape).
        cuts = []
        if self.line_finder is not None:
            cuts.append(lambda: found_lines(crop, self.line_finder(crop)))
        cuts.append(lambda: split_lines(crop))
        parts: list[np.ndarray] = [crop]
        reads: list[LineRead] = []
        parsed: tuple[str, int, str] | None = None
        for make in cuts:
            lines = make()
            if lines is None:
                continue
            got = [self.model(p) for p in lines]
            if not reads:
                parts, reads = lines, got
            parsed = layout([r.text for r in got])
            if parsed is not None:
                parts, reads = lines, got
                break
        if parsed is None:
            other = [crop] if len(parts) == 2 else split_lines(crop, force_two=True)
            other_reads = [self.model(p) for p in other]
            other_parsed = layout([r.text for r in other_reads])
            if other_parsed is not None:
                parts, reads, parsed = other, other_reads, other_parsed
        raw = " ".join(r.text for r in reads)
        # The lines that hold text (a loose crop of a one-line plate cut in two leaves one empty).
        nlines = max(1, sum(1 for r in reads if plate_chars(r.text)))
        probs = [p for r in reads for c, p in zip(r.text, r.probs, strict=True) if plate_chars(c)]
        conf = round(min(probs), 3) if probs else 0.0
        if parsed is None:
            return PlateRead(UNREADABLE, conf, nlines, raw, "no Vietnamese layout fits")
        text, fixes, pattern = parsed
        conf = round(min(char_confidences(reads, pattern, text)), 3)
        if fixes > MAX_FIXES:
            return PlateRead(UNREADABLE, conf, nlines, raw, f"{fixes} characters would need fixing")
        if gate and conf < self.min_confidence:
            return PlateRead(UNREADABLE, conf, nlines, raw, f"confidence {conf} < {self.min_confidence}")
        return PlateRead(text, conf, nlines, raw)


@dataclass
class PlateVote:
    """The reads of one vehicle's plate across frames -> one plate, or unreadable when they
    disagree. The winner needs at least `share` of the readable reads' confidence."""

    share: float = 0.66
    reads: list[PlateRead] = field(default_factory=list)

    def add(self, read: PlateRead) -> None:
        self.reads.append(read)

    def result(self) -> PlateRead:
        ok = [r for r in self.reads if r.readable]
        lines = max((r.lines for r in self.reads), default=0)
        if not ok:
            best = max(self.reads, key=lambda r: r.confidence, default=None)
            return best or PlateRead(UNREADABLE, 0.0, 0, reason="no read")
        weight: dict[str, float] = {}
        for r in ok:
            weight[r.text] = weight.get(r.text, 0.0) + r.confidence
        text = max(weight, key=lambda k: weight[k])
        part = weight[text] / sum(weight.values())
        mine = [r for r in ok if r.text == text]
        conf = round(max(r.confidence for r in mine) * part, 3)
        if part < self.share:
            return PlateRead(UNREADABLE, conf, lines, reason=f"frames disagree ({len(weight)} plates)")
        return PlateRead(text, conf, mine[0].lines, mine[0].raw)


_local: dict[str, TextLineModel | TextLineFinder] = {}
_local_lock = threading.Lock()


def local_reader(path: str | Path | None = None, min_confidence: float = MIN_CONFIDENCE) -> PlateReader | None:
    """A reader on a session of this process (CLI, benchmark, a node without an inference pool);
    None, with a log line, when no recogniser is installed."""
    p = Path(path) if path else default_model()
    if p is None:
        log.warning(
            "plate text: rapidocr is not installed (pip install 'ioc-edge[plates]'): plates are cropped, not read"
        )
        return None
    lines = default_line_model()
    with _local_lock:
        if str(p) not in _local:
            _local[str(p)] = TextLineModel(p)
        if lines is not None and str(lines) not in _local:
            _local[str(lines)] = TextLineFinder(lines)
    finder = _SerialModel(_local[str(lines)]) if lines is not None else None
    return PlateReader(_SerialModel(_local[str(p)]), min_confidence, line_finder=finder)


class _SerialModel:
    """One session shared by threads: one run at a time (ORT sessions are thread-safe, but one
    intra-op thread per run is what this box affords; platform notes)."""

    def __init__(self, model) -> None:
        self.model = model
        self.lock = threading.Lock()

    def __call__(self, image: np.ndarray):
        with self.lock:
            return self.model(image)


def object_plate(details: dict, track_id: int, plate_sha256: str | None) -> dict:
    """The contract's `ObjectRef` fields for the plate read of `track_id` (none when no plate was
    read for it): `plate` the text only when readable, `plate_read` the read and the crop's hash."""
    text = details.get("plate_text")
    if text is None or details.get("plate_track") != track_id:
        return {}
    read = {
        "text": text,
        "confidence": float(details.get("plate_text_confidence", 0.0)),
        "lines": min(2, max(1, int(details.get("plate_lines", 1)))),
        "crop_sha256": plate_sha256,
    }
    return {"plate": text if text != UNREADABLE else None, "plate_read": read}
