"""Model variants against FP32 (docs/benchmarks.md, "Model variants"): `python -m models agreement`
on the sample footage, plus, with --synthetic, the nine synthetic traffic scenes of
tests/scenarios/test_traffic_synthetic.py as a second set of events (the footage alone has few).

    EDGE_DATA_DIR=../shared/data PYTHONPATH=. .venv/bin/python benchmarks/model_agreement.py \
        [--synthetic [--variants N]] [--urban] [--renditions 1080p 720p] [--grown] [--write] [NAME ...]

--grown is the set a verdict needs (at least 100 FP32 events, issue 20): every camera config with a
sample video, the same footage as the bench's 1080p cameras, and the synthetic traffic scenes with 10
jittered copies each (as benchmarks/rules_accuracy.py --variants makes them). --urban (the synthetic
littering / sidewalk scenarios) is not in it: at the harness's 384x640 input they yield few events
per CPU second. With --backends, engines on the FP32 model instead of variant files
(`openvino:fp32 openvino:bf16 openvino:int8-head ...`); --write then records each engine's verdict
in models/backends.yaml, which the edge's `detector.backend: auto` chooses from.

Prints a markdown table; --write records the agreement and `kept` in models/variants.yaml.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from models import VARIANTS_PATH
from models import agreement as ag

GROWN_VARIANTS = 10  # jittered copies per synthetic traffic scene in --grown (9 scenes x 11 renderings)
# One bench rendition: a synthetic rendering yields ~3x the events per CPU second of a rendition pass.
GROWN_RENDITIONS = ["1080p"]


def synthetic_events(variants: int = 0):
    """Events of the synthetic traffic scenes: the scripted ones, and `variants` jittered copies of
    each (paths shifted sideways and in time, sprites swapped: tests/scenarios/synth.jittered),
    which move each borderline moment to another place and time."""

    def run(detector) -> dict[str, list[dict[str, Any]]]:
        from tests.scenarios.test_traffic_synthetic import run_scene, scenarios

        out: dict[str, list[dict[str, Any]]] = {}
        for variant in range(variants + 1):
            for name, scene in scenarios(variant).items():
                events = []
                for *_, event in run_scene(scene, detector):
                    ev = json.loads(event.to_json())
                    ev["camera"] = f"{name}/v{variant}"
                    events.append(ev)
                out[f"synthetic/{name}" + (f"/v{variant}" if variant else "")] = events
        return out

    return run


def urban_events(detector) -> dict[str, list[dict[str, Any]]]:
    """Events of the synthetic urban scenarios (littering, sidewalk; tests/scenarios/urban_synth.py)."""
    from tests.scenarios import urban_synth as u

    out: dict[str, list[dict[str, Any]]] = {}
    cam = u.camera()
    for scn in u.littering_scenarios() + u.sidewalk_scenarios():
        events = []
        for _, event in u.run(scn, scn.camera or cam, detector):
            ev = json.loads(event.to_json())
            ev["camera"] = scn.name
            events.append(ev)
        out[f"urban/{scn.name}"] = events
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
    ap.add_argument("--variants", type=int, default=0, help="with --synthetic: jittered copies of each scene")
    ap.add_argument("--urban", action="store_true", help="also the synthetic urban scenarios' events")
    ap.add_argument(
        "--grown",
        action="store_true",
        help=f"the set a verdict needs: --synthetic --variants {GROWN_VARIANTS} --renditions "
        + " ".join(GROWN_RENDITIONS),
    )
    ap.add_argument(
        "--renditions",
        nargs="*",
        default=[],
        choices=["1080p", "720p"],
        help="also the sample footage as the bench's cameras send it (H.264 25 fps at these sizes)",
    )
    ap.add_argument(
        "--reference-cache",
        help="with --backends: keep the ONNX Runtime FP32 reference run in this file and reuse it in later "
        "runs on the same set (so engines can be measured one run each)",
    )
    ap.add_argument(
        "--timing-only",
        action="store_true",
        help="with --backends: only the ms/frame of every engine against onnxruntime:fp32, in one interleaved run",
    )
    ap.add_argument(
        "--write",
        action="store_true",
        help="record the results and `kept` in models/variants.yaml (with --backends: models/backends.yaml)",
    )
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
    if args.grown:
        args.synthetic = True
        args.variants = max(args.variants, GROWN_VARIANTS)
        args.renditions = sorted(set(args.renditions) | set(GROWN_RENDITIONS), reverse=True)
    t0 = time.perf_counter()
    label = "configs/cameras/*.yaml with a sample video (python -m edge analyze, clips off)"
    extras = []
    if args.synthetic:
        extras.append(synthetic_events(args.variants))
        label += " + the 9 synthetic traffic scenes (tests/scenarios/test_traffic_synthetic.py)"
        if args.variants:
            label += f" and {args.variants} jittered copies of each"
    if args.urban:
        extras.append(urban_events)
        label += " + the synthetic urban scenarios (tests/scenarios/urban_synth.py)"
    if args.renditions:
        extras.append(rendition_events(args.renditions))
        label += " + the same footage as the bench's " + "/".join(args.renditions) + " H.264 25 fps cameras"

    def extra_events(detector) -> dict[str, list[dict[str, Any]]]:
        return {k: v for f in extras for k, v in f(detector).items()}

    def measure(_names, **kw):  # type: ignore[no-untyped-def]
        if not args.backends:
            return ag.measure(_names, **kw)
        cache = Path(args.reference_cache) if args.reference_cache else None
        return ag.measure_backends(args.backends, reference_cache=cache, analyse=not args.timing_only, **kw)

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
    if args.write and args.backends:
        path = ag.write_backend_results(results, command=" ".join(sys.argv[1:]), timing_only=args.timing_only)
        print(f"agreement and kept written to {path}")
    elif args.write:
        ag.write_results(results)
        print(f"agreement and kept written to {VARIANTS_PATH}")


if __name__ == "__main__":
    main()
