"""INT8 YOLO for the openvino backend: NNCF post-training quantization of the registered ONNX model,
written as an OpenVINO IR (`<base>-openvino-<variant>.xml` / `.bin`) into the model cache, with a
manifest (`.json`) that records how it was made (base sha256, settings, calibration frames, the
files' sha256). nncf is needed only here (`pip install 'ioc-edge[quantize]'`); the backend that
loads a built IR (`detector: {backend: openvino, precision: int8-head}`) needs openvino alone.

    python -m models build-openvino-int8 [--variant int8-decode int8-head int8-ac] [--subset-size 300]

The variants (VARIANTS), each a way of quantizing the same model:
- `int8-decode`: everything INT8 except the DFL and the box decode / class sigmoid after the head's
  last convolutions (the final Concat mixes pixels with 0..1 scores, which one 8-bit scale cannot hold);
- `int8-head`: the whole Detect module (its convolutions too) stays floating point;
- `int8-ac`: `nncf.quantize_with_accuracy_control` from a fully quantized model: it reverts the
  quantizers that cost most until box agreement with FP32 (F1 of one-to-one matched boxes, see
  `box_f1`) drops by at most `max_drop` (absolute) on validation frames from other times of the
  same videos.

- The model is read from the ONNX by OpenVINO as it is (dynamic height/width): the backend reshapes
  it per camera letterbox, and the quantizers' scales do not depend on the input size.
- Calibration: `subset_size` frames from every sample video (EDGE_DATA_DIR/videos), evenly in time
  but half a step off the start of each clip, letterboxed to 384x640 as the detector does. The
  agreement harness also scores these videos (there is no other real footage), so the frames overlap
  in scene though rarely in time; the synthetic scenes it scores are never calibration frames.
- Preset MIXED (symmetric weights, asymmetric activations: the SiLU activations are not centred).
- The floating-point parts are saved as FP32 and run with FP32 inference precision (the backend
  asks for f32: on an AMX CPU OpenVINO's default would run them in BF16).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import models
from contract.paths import data_dir, file_sha256

log = logging.getLogger(__name__)

IGNORE_SCOPES = ("decode", "head", "none")
# variant -> how it is made; the name is also the backend's `precision` and the IR's file suffix.
VARIANTS: dict[str, dict[str, Any]] = {
    "int8-decode": {"ignore": "decode"},
    "int8-head": {"ignore": "head"},
    "int8-ac": {"ignore": "none", "accuracy_control": True, "max_drop": 0.01},
}
CALIBRATION_HW = (384, 640)
DEFAULT_SUBSET = 300
MAX_RESTORE_STEPS = 30
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov"}
BUILD_COMMAND = "python -m models build-openvino-int8"


def ir_path(base_stem: str, variant: str, folder: Path | None = None) -> Path:
    """Where an INT8 IR of a base model (by its file's stem, e.g. yolo11n) lives."""
    if variant not in VARIANTS:
        raise ValueError(f"INT8 variant {variant!r}: one of {', '.join(VARIANTS)}")
    return (folder or models.cache_dir()) / f"{base_stem}-openvino-{variant}.xml"


def manifest_path(xml: Path) -> Path:
    return xml.with_suffix(".json")


def read_manifest(xml: Path) -> dict[str, Any] | None:
    path = manifest_path(xml)
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def verified_ir(base_path: Path, variant: str, folder: Path | None = None) -> Path:
    """The IR of `variant` made from exactly this base file, after checking the files against its
    manifest; FileNotFoundError / ValueError say how to build it."""
    xml = ir_path(base_path.stem, variant, folder)
    how = f"build it with `{BUILD_COMMAND} --variant {variant}` (needs ioc-edge[quantize])"
    data = read_manifest(xml)
    if data is None or not xml.is_file() or not xml.with_suffix(".bin").is_file():
        raise FileNotFoundError(f"INT8 IR {xml} (or its .bin / .json) not found: {how}")
    if data.get("base_sha256") != file_sha256(base_path):
        raise ValueError(f"{xml} was made from another {base_path.name} (base sha256 differs): re{how}")
    for key, f in (("xml_sha256", xml), ("bin_sha256", xml.with_suffix(".bin"))):
        if data.get(key) != file_sha256(f):
            raise ValueError(f"{f} does not match its manifest ({key}): re{how}")
    return xml


def write_manifest(xml: Path, data: dict[str, Any]) -> None:
    tmp = manifest_path(xml).with_suffix(".json.part")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(manifest_path(xml))


# ----------------------------------------------------------------------------------- frames


def sample_frames(count: int, *, offset: float = 0.5, videos: Sequence[Path] | None = None) -> tuple[list, list]:
    """About `count` BGR frames spread over the sample videos: per video, evenly spaced frame indices
    shifted by `offset` of a step (0.5 for calibration; another offset gives frames of other times,
    for validation). Returns (frames, per-video sources)."""
    import av

    paths = sorted(videos if videos is not None else (data_dir() / "videos").iterdir())
    paths = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    if not paths:
        raise FileNotFoundError(f"no sample videos in {data_dir() / 'videos'} (EDGE_DATA_DIR)")
    per_video = [count // len(paths) + (1 if i < count % len(paths) else 0) for i in range(len(paths))]
    frames: list[np.ndarray] = []
    sources: list[dict[str, Any]] = []
    for path, want in zip(paths, per_video, strict=True):
        if want == 0:
            continue
        with av.open(str(path)) as c:
            n = sum(1 for _ in c.decode(video=0))  # counted, not trusted from the header (VFR clips)
        step = n / want
        idx = sorted({min(n - 1, int((k + offset) * step)) for k in range(want)})
        wanted = set(idx)
        with av.open(str(path)) as c:
            frames += [f.to_ndarray(format="bgr24") for i, f in enumerate(c.decode(video=0)) if i in wanted]
        sources.append({"video": path.name, "frames": len(idx), "indices": [idx[0], idx[-1]]})
    return frames, sources


def letterboxed(frames: Sequence[np.ndarray], size_hw: tuple[int, int] = CALIBRATION_HW) -> list[np.ndarray]:
    from edge.detector import boxed_to_blob, letterbox

    return [boxed_to_blob(letterbox(f, size_hw)[0]) for f in frames]


def blobs_sha256(blobs: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(np.ascontiguousarray(b).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------- scope


def head_prefix(model: Any) -> str:
    """The Detect module's name prefix (e.g. /model.23/), found from its DFL node."""
    for op in model.get_ordered_ops():
        m = re.match(r"^(/model\.\d+/)dfl/", op.get_friendly_name())
        if m:
            return m.group(1)
    raise ValueError("no DFL node in the model: cannot tell the detection head")


def ignored_scope(model: Any, scope: str) -> Any:
    """The nncf.IgnoredScope of a setting (None for "none")."""
    import nncf

    if scope not in IGNORE_SCOPES:
        raise ValueError(f"ignore {scope!r}: one of {IGNORE_SCOPES}")
    if scope == "none":
        return None
    head = re.escape(head_prefix(model))
    # "decode": the module's own ops (decode arithmetic, Concat, Sigmoid) and the DFL, not its cv2/cv3 convs.
    patterns = [f"^{head}.*"] if scope == "head" else [f"^{head}[^/]+$", f"^{head}dfl/.*"]
    # validate=False: a pattern may match only ops NNCF would not quantize anyway.
    return nncf.IgnoredScope(patterns=patterns, validate=False)


# ----------------------------------------------------------------------------------- accuracy metric


def box_f1(ref: Sequence[tuple], test: Sequence[tuple]) -> list[float]:
    """Per frame: F1 of one-to-one matched boxes (same class, IoU >= 0.5) of `test` against `ref`."""
    from models.agreement import match_boxes

    out = []
    for r, t in zip(ref, test, strict=True):
        n = len(r[0]) + len(t[0])
        out.append(1.0 if n == 0 else 2 * match_boxes(r, t) / n)
    return out


def _decode_all(decoder: Any, outputs: Sequence[np.ndarray], frames: Sequence[np.ndarray]) -> list[tuple]:
    from edge.detector import letterbox

    boxes = []
    for pred, frame in zip(outputs, frames, strict=True):
        lb = letterbox(frame, CALIBRATION_HW)[1]
        d = decoder.decode(pred, lb, frame.shape[:2])
        boxes.append((d.xyxy, d.class_id, d.confidence))
    return boxes


# ----------------------------------------------------------------------------------- building


def build(
    out_dir: Path | None = None,
    *,
    variant: str = "int8-head",
    base: str = "yolo11n",
    base_path: Path | None = None,
    subset_size: int = DEFAULT_SUBSET,
    validation_frames: int = 40,
    max_drop: float | None = None,
    videos: Sequence[Path] | None = None,
) -> Path:
    """Quantize the base model as `variant` into out_dir (default: the model cache); returns the .xml."""
    import nncf
    import openvino as ov

    if variant not in VARIANTS:
        raise ValueError(f"INT8 variant {variant!r}: one of {', '.join(VARIANTS)}")
    how = VARIANTS[variant]
    ignore = how["ignore"]
    accuracy_control = bool(how.get("accuracy_control"))
    max_drop = float(how.get("max_drop", 0.01) if max_drop is None else max_drop)
    path = base_path or models.verify(base)
    out = ir_path(path.stem, variant, out_dir)
    core = ov.Core()
    model = core.read_model(str(path))
    frames, sources = sample_frames(subset_size, offset=0.5, videos=videos)
    blobs = letterboxed(frames)
    calib = nncf.Dataset(blobs)
    scope = ignored_scope(model, ignore)
    common: dict[str, Any] = {
        "preset": nncf.QuantizationPreset.MIXED,
        "subset_size": len(blobs),
        "ignored_scope": scope,
    }
    settings: dict[str, Any] = {
        "variant": variant,
        "tool": f"nncf {nncf.__version__}",
        "preset": "MIXED",
        "ignore": ignore,
        "ignored_patterns": list(scope.patterns) if scope is not None else [],
        "accuracy_control": accuracy_control,
    }
    if accuracy_control:
        q = _quantize_with_accuracy_control(model, path, calib, max_drop, validation_frames, videos, common)
        settings.update({"max_drop": max_drop, "metric": "box F1 vs FP32", "validation_frames": validation_frames})
    else:
        q = nncf.quantize(model, calib, **common)
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(q, str(out), compress_to_fp16=False)  # the floating-point parts stay FP32 in the file
    manifest = {
        "name": out.stem,
        "variant": variant,
        "base": base,
        "base_file": path.name,
        "base_sha256": file_sha256(path),
        "xml_sha256": file_sha256(out),
        "bin_sha256": file_sha256(out.with_suffix(".bin")),
        "settings": settings,
        "calibration": {
            "frames": len(blobs),
            "input": list(CALIBRATION_HW),
            "videos": sources,
            "sampling": "per video, evenly spaced frame indices, half a step off the clip's start",
            "preprocessing": "edge.detector.letterbox (grey 114 pad, centred) + BGR->RGB /255, as the detector",
            "sha256": blobs_sha256(blobs),
        },
        "built_with": {"nncf": nncf.__version__, "openvino": ov.__version__},
    }
    write_manifest(out, manifest)
    log.info("built %s (%s)", out, settings)
    return out


def _quantize_with_accuracy_control(
    model: Any,
    path: Path,
    calib: Any,
    max_drop: float,
    n_validation: int,
    videos: Sequence[Path] | None,
    common: dict[str, Any],
) -> Any:
    import nncf

    from edge.detector import YoloDetector

    # Validation frames from other times of the clips (offset 0.25, not the calibration's 0.5).
    frames, _ = sample_frames(n_validation, offset=0.25, videos=videos)
    blobs = letterboxed(frames)
    decoder = YoloDetector(path, input_size=CALIBRATION_HW)  # its decode + NMS, and the FP32 reference boxes
    ref = _decode_all(decoder, [decoder.infer(b)[0] for b in blobs], frames)

    def validate(compiled: Any, data: Any) -> tuple[float, list[float]]:
        # NNCF passes any subset of the items (one, to learn the return type; the worst ones, to rank),
        # so each item is its frame's index: the boxes are compared with that frame's FP32 boxes.
        idx = list(data)
        outs = [np.asarray(compiled(blobs[i])[0])[0] for i in idx]  # output 0, batch item 0
        per = box_f1([ref[i] for i in idx], _decode_all(decoder, outs, [frames[i] for i in idx]))
        return float(np.mean(per)), per

    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    # One ranking worker (a small shared box); at most MAX_RESTORE_STEPS reverted groups, so a metric
    # that cannot be met ends the build in bounded time (the harness then judges what it gave).
    restorer = AdvancedAccuracyRestorerParameters(max_num_iterations=MAX_RESTORE_STEPS, num_ranking_workers=1)
    return nncf.quantize_with_accuracy_control(
        model,
        calib,
        nncf.Dataset(list(range(len(blobs))), lambda i: blobs[i]),
        validate,
        max_drop=max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        advanced_accuracy_restorer_parameters=restorer,
        **common,
    )
