"""Model variants against FP32 (docs/benchmarks.md, "Model variants"): `python -m models agreement`
on the sample footage, plus, with --synthetic, the nine synthetic traffic scenes of
tests/scenarios/test_traffic_synthetic.py as a second set of events (the footage alone has few).

    EDGE_DATA_DIR=../shared/data PYTHONPATH=. .venv/bin/python benchmarks/model_agreement.py \
        [--synthetic] [--write] [NAME ...]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="variants (default: all in models/variants.yaml)")
    ap.add_argument("--synthetic", action="store_true", help="also the synthetic traffic scenes' events")
    ap.add_argument("--write", action="store_true", help="record the results and `kept` in models/variants.yaml")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    label = "configs/cameras/*.yaml with a sample video (python -m edge analyze, clips off)"
    if args.synthetic:
        label += " + the 9 synthetic traffic scenes (tests/scenarios/test_traffic_synthetic.py)"
    results = ag.measure(
        args.names or None,
        timing=not args.no_timing,
        extra_events=synthetic_events if args.synthetic else None,
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
