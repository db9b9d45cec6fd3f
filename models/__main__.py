"""`python -m models`: build model variants, check them, measure their agreement with FP32.

python -m models build-variants [--out DIR] [--sizes 384x640 256x416] [--register | --check]
python -m models agreement [NAME ...] [--write] [--json FILE]
python -m models verify [NAME ...]   (default: every model in registry.yaml, then every variant)
python -m models build-openvino-int8 [--variant int8-decode int8-head int8-ac] [--subset-size N]  (needs [quantize])
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import models
from contract.version import __version__


def _cmd_build(args: argparse.Namespace) -> int:
    from models import variants as v

    sizes = [v.parse_size(s) for s in args.sizes]
    specs = [s for s in v.default_specs(args.base, sizes) if s.precision in args.precision]
    out = Path(args.out).expanduser().resolve() if args.out else models.cache_dir()
    entries = v.build_variants(specs, out, calibration_frames=args.calibration_frames, fp32_scope=args.fp32_scope)
    for name, e in entries.items():
        print(
            f"{name}: {out / e['file']}  sha256 {e['sha256']}  input {e['input'][0]}x{e['input'][1]}  {e['precision']}"
        )
    if args.register:
        path = v.write_registry(entries)
        print(f"registered in {path}")
        return 0
    problems = v.check_against_registry(entries)
    if problems:
        print("differs from models/variants.yaml:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1 if args.check else 0
    print("every built file matches models/variants.yaml (sha256, input, precision, calibration input)")
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    from models import agreement as ag

    cache = Path(args.cache).expanduser().resolve() if args.cache else None
    work = Path(args.work_dir).resolve() if args.work_dir else None
    results = ag.measure(
        args.names or None, cache=cache, work_dir=work, timing=not args.no_timing, log=lambda m: print(m, flush=True)
    )
    print()
    print(ag.table(results))
    for a in results:
        for line in a.lost_detail:
            print(f"  {a.variant} lost   {line}")
        for line in a.extra_detail:
            print(f"  {a.variant} extra  {line}")
    if args.json:
        Path(args.json).write_text(ag.to_json(results), encoding="utf-8")
    if args.write:
        ag.write_results(results)
        print(f"agreement and kept written to {models.VARIANTS_PATH}")
    return 0


def _cmd_build_ov_int8(args: argparse.Namespace) -> int:
    from models import openvino_int8 as ovq

    out = Path(args.out).expanduser().resolve() if args.out else None
    for variant in args.variant:
        xml = ovq.build(
            out,
            variant=variant,
            base=args.base,
            subset_size=args.subset_size,
            max_drop=args.max_drop,
            validation_frames=args.validation_frames,
        )
        m = ovq.read_manifest(xml) or {}
        print(f"{xml}  sha256 {m.get('xml_sha256')}  settings {m.get('settings')}", flush=True)
    print("kept: see benchmarks/model_agreement.py --backends openvino:<variant> --write (models/backends.yaml)")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    bad = 0
    found = models.registered_variants()
    for name in args.names or [*sorted(models.registry()), *sorted(found)]:
        try:
            path = models.verify_variant(name) if name in found else models.verify(name)
            kept = found.get(name, {}).get("kept")
            print(f"{name}: ok ({path}){'' if name not in found else f', kept: {kept}'}")
        except (KeyError, FileNotFoundError, ValueError) as e:
            print(f"{name}: {e}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-variants", help="static-shape FP32 and INT8 QDQ variants of a registered model")
    p.add_argument("--out", help=f"output folder (default: {models.CACHE_ENV} or ~/.cache/ioc-edge/models)")
    p.add_argument("--base", default="yolo11n", help="a model in models/registry.yaml (default yolo11n)")
    p.add_argument("--sizes", nargs="+", default=["384x640", "256x416"], help="input sizes HxW")
    p.add_argument("--precision", nargs="+", choices=["fp32", "int8"], default=["fp32", "int8"])
    p.add_argument("--calibration-frames", type=int, default=200, help="frames from the sample videos (INT8)")
    p.add_argument(
        "--fp32-scope",
        choices=["decode", "logits", "head", "head+attention"],
        default="head",
        help="INT8: what stays FP32 (default: the whole detection head)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--register", action="store_true", help="write the entries into models/variants.yaml")
    g.add_argument("--check", action="store_true", help="exit 1 unless every file matches models/variants.yaml")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("build-openvino-int8", help="INT8 OpenVINO IR of a registered model (NNCF post-training)")
    p.add_argument("--out", help=f"output folder (default: {models.CACHE_ENV} or ~/.cache/ioc-edge/models)")
    p.add_argument("--base", default="yolo11n", help="a model in models/registry.yaml (default yolo11n)")
    p.add_argument("--subset-size", type=int, default=300, help="calibration frames from the sample videos")
    p.add_argument(
        "--variant",
        nargs="+",
        choices=["int8-decode", "int8-head", "int8-ac"],
        default=["int8-decode", "int8-head", "int8-ac"],
        help="DFL + box decode kept FP / the whole Detect head kept FP / accuracy control (default: all)",
    )
    p.add_argument("--max-drop", type=float, help="int8-ac: largest box-F1 drop vs FP32 (default 0.01)")
    p.add_argument("--validation-frames", type=int, default=40, help="int8-ac: validation frames")
    p.set_defaults(func=_cmd_build_ov_int8)

    p = sub.add_parser("agreement", help="detections, events and speed of each variant against FP32")
    p.add_argument("names", nargs="*", help="variants (default: all in models/variants.yaml)")
    p.add_argument("--cache", help="where the variant files are (default: the model cache)")
    p.add_argument("--write", action="store_true", help="record the results and `kept` in models/variants.yaml")
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.add_argument("--work-dir", help="keep each run's events.jsonl here (default: a temporary folder)")
    p.add_argument("--no-timing", action="store_true", help="skip the ms/frame measurement")
    p.set_defaults(func=_cmd_agreement)

    p = sub.add_parser("verify", help="check model files against their sha256 (default: every registered model and variant)")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=_cmd_verify)

    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
