"""Model variants against FP32 (docs/benchmarks.md, "Model variants"): `python -m models agreement`
on the sample footage, plus, with --synthetic, the nine synthetic traffic scenes of
tests/scenarios/test_traffic_synthetic.py as a second set of events (the footage alone has few).

    EDGE_DATA_DIR=../shared/data PYTHONPATH=. .venv/bin/python benchmarks/model_agreement.py \
        [--synthetic] [--renditions 1080p 720p] [--write] [NAME ...]

Prints a markdown table; --write records the agreement and `kept` in models/variants.yaml.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from models import VARIANTS_PATH
from models import agreement as ag


def synthetic_events(detector) -> dict[str, list[dict[str, Any]]]:
    from tests.scenarios.test_traffic_synthetic import run_scene, scenarios

    out: dict[str, list[dict[str, Any]]] = {}
    for name, scene in scenarios(0).items():
        events = []
        for *_, event in run_scene(scene, detector):
            ev = json.loads(event.to_json())
            ev["camera"] = name
            events.append(ev)
        out[f"synthetic/{name}"] = events
    return out


def rendition_events(resolutions: list[str]):
    """Events of every sample camera on the footage as `python -m edge bench` serves it (H.264,
    25 fps, stretched to 1080p/720p): the same scenes through another scaler and encoder, so a
    variant's verdict does not rest on one rendition of a few events."""
    import tempfile
    from pathlib import Path

    from edge.bench import prepare_footage
    from edge.config import load_camera_config

    def run(detector) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with tempfile.TemporaryDirectory(prefix="ioc-renditions-") as tmp:
            for path in ag.camera_configs():
                cam = load_camera_config(path)
                for res in resolutions:
                    video = prepare_footage(cam.camera.source, res)
                    out[f"{res}/{path.stem}"] = ag.analyze_events(
                        video, cam, Path(tmp) / f"{res}-{path.stem}", detector
                    )
        return out

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="variants (default: all in models/variants.yaml)")
    ap.add_argument("--synthetic", action="store_true", help="also the synthetic traffic scenes' events")
    ap.add_argument(
        "--renditions",
        nargs="*",
        default=[],
        choices=["1080p", "720p"],
        help="also the sample footage as the bench's cameras send it (H.264 25 fps at these sizes)",
    )
    ap.add_argument("--write", action="store_true", help="record the results and `kept` in models/variants.yaml")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument(
        "--backends",
        nargs="+",
        metavar="BACKEND:PRECISION",
        help="instead of the variant files: these engines (e.g. openvino:fp32 openvino:bf16) on the FP32 model, "
        "against onnxruntime:fp32 at 384x640",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    label = "configs/cameras/*.yaml with a sample video (python -m edge analyze, clips off)"
    if args.synthetic:
        label += " + the 9 synthetic traffic scenes (tests/scenarios/test_traffic_synthetic.py)"
    extras = []
    if args.synthetic:
        extras.append(synthetic_events)
    if args.renditions:
        extras.append(rendition_events(args.renditions))
        label += " + the same footage as the bench's " + "/".join(args.renditions) + " H.264 25 fps cameras"

    def extra_events(detector) -> dict[str, list[dict[str, Any]]]:
        return {k: v for f in extras for k, v in f(detector).items()}

    if args.backends and args.write:
        ap.error("--write records variant files' verdicts; a backend's goes into docs/benchmarks.md")
    measure = ag.measure if not args.backends else lambda _names, **kw: ag.measure_backends(args.backends, **kw)
    results = measure(
        args.names or None,
        timing=not args.no_timing,
        extra_events=extra_events if extras else None,
        footage_label=label,
        log=lambda m: print(m, flush=True),
    )
    print(f"\n{time.perf_counter() - t0:.0f} s\n")
    print(ag.table(results))
    for a in results:
        print(f"  {a.variant}: " + ", ".join(f"{k}: {v}" for k, v in a.by_set.items()))
        for line in a.lost_detail:
            print(f"  {a.variant} lost   {line}")
        for line in a.extra_detail:
            print(f"  {a.variant} extra  {line}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(ag.to_json(results))
    if args.write:
        ag.write_results(results)
        print(f"agreement and kept written to {VARIANTS_PATH}")


if __name__ == "__main__":
    main()
