"""`python -m edge`: the edge node's command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path

from contract.configfile import ConfigError
from contract.version import __version__, program


def _cmd_schema(args: argparse.Namespace) -> int:
    from contract.events import event_json_schema
    from contract.status import camera_health_json_schema, node_status_json_schema

    schemas = {"event": event_json_schema, "node_status": node_status_json_schema,
               "camera_health": camera_health_json_schema}
    print(json.dumps(schemas[args.which](), indent=2, ensure_ascii=False))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    """Validate a config, then check what a run would fail on: model files, sources (files exist,
    URLs are well-formed). A camera config given without --camera is recognised by its keys."""
    from contract.configfile import read_yaml
    from edge.config import (
        camera_run_problems,
        is_camera_config,
        load_camera_config,
        load_node_config,
        node_run_problems,
    )

    camera = args.camera
    if not camera and is_camera_config(read_yaml(args.file)):
        print(f"{args.file}: a camera config (top-level camera/scene keys): checked as one, as with --camera")
        camera = True
    if camera:
        problems = camera_run_problems(args.file, load_camera_config(args.file))
    else:
        node, cameras = load_node_config(args.file)
        problems = node_run_problems(args.file, node, cameras)
    if problems:
        n = len(problems)
        print(f"{args.file}: a run would fail ({n} problem{'s' if n != 1 else ''})", file=sys.stderr)
        print("\n".join(f"  {line}" for line in problems), file=sys.stderr)
        return 2
    from edge.config import DetectorConfig, camera_detector

    # Which engine a run opens (backend auto: the choice for this machine, and why), then the verdict.
    cfg = camera_detector(DetectorConfig(), load_camera_config(args.file)) if camera else node.detector
    print(f"{args.file}: detector {_engine_line(cfg)}")
    print(f"{args.file}: ok")
    return 0


def _engine_line(cfg) -> str:  # type: ignore[no-untyped-def]
    """What a run would open for this detector config: the pinned engine, or auto's choice and why."""
    import models

    path = models.resolve(cfg.model)
    if cfg.backend != "auto":
        return f"{path.name} on {cfg.backend}:{cfg.precision} (pinned by the config)"
    from edge.detect.choice import choose_for

    choice = choose_for(path, cfg.precision)
    return f"{path.name} on {choice.backend}:{choice.precision} (backend auto: {choice.why})"


def _start_time(arg: str | None, video: Path) -> datetime | None:
    """The time of the video's first frame: --start-time (a time with its zone, or `file-mtime`), else
    the file's creation_time tag; None (the reason printed) when neither says. Never 'now', never 1970."""
    from edge.analyze import StartTimeError, file_mtime, recording_start

    if arg == "file-mtime":
        return file_mtime(video)
    if arg:
        try:
            start = datetime.fromisoformat(arg.replace("Z", "+00:00"))
        except ValueError:
            start = None
        if start is None or start.tzinfo is None:
            print(f"edge analyze: --start-time {arg!r}: need a time with its zone (e.g. 2026-01-01T08:00:00+07:00) "
                  "or file-mtime", file=sys.stderr)
            return None
        return start
    try:
        return recording_start(video)
    except StartTimeError:
        print(f"edge analyze: {video} has no creation_time tag, so the time of its first frame is unknown "
              "(events would say 1970): pass --start-time with the time the recording began, e.g. "
              "--start-time 2026-01-01T08:00:00+07:00, or --start-time file-mtime to use the file's "
              "modification time", file=sys.stderr)
        return None


def _cmd_analyze(args: argparse.Namespace) -> int:
    from edge.analyze import analyze_video
    from edge.config import DetectorConfig, load_camera_config, load_node_config
    from edge.data import video_path

    camera = load_camera_config(args.config)
    detector = DetectorConfig()
    node_id = args.node_id
    if args.node:
        node, _ = load_node_config(args.node)
        detector, node_id = node.detector, node.node.id
    video = video_path(args.video)
    if not video.is_file():
        print(f"edge analyze: video not found: {video}", file=sys.stderr)
        return 2
    start = _start_time(args.start_time, video)
    if start is None:
        return 2
    s = analyze_video(
        video, camera, Path(args.out), node_id=node_id, detector_config=detector, start_time=start,
        debug_video=Path(args.debug_video) if args.debug_video else None, trace=[Path(p) for p in args.trace],
    )
    print(
        f"{Path(s.video).name}: {s.frames} frames analysed in {s.seconds:.1f} s "
        f"({s.analysed_fps:.1f} fps, video {s.video_seconds:.1f} s), {s.events} events -> {Path(args.out) / 'events.jsonl'}"
    )
    return 0


def _cmd_snapshot(args: argparse.Namespace) -> int:
    """One frame as the edge analyses it (rotation applied), written as a picture; its size printed."""
    from edge.snapshot import SnapshotError, check_picture_name, grab_frame, write_image

    try:
        check_picture_name(Path(args.out))
        snap = grab_frame(args.source, args.at, platform=args.platform, timeout_s=args.timeout)
        out = write_image(Path(args.out), snap.image)
    except SnapshotError as e:
        print(f"edge snapshot: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"path": str(out), "width": snap.width, "height": snap.height, "source": snap.source,
                          "pts": round(snap.pts, 6)}))
    else:
        print(f"{out}: {snap.width}x{snap.height} (scene.reference_size: [{snap.width}, {snap.height}], "
              f"scene.reference_image: {out.name}) from {snap.source} at {snap.pts:.3f} s")
    return 0


def _cmd_draw(args: argparse.Namespace) -> int:
    """The camera's scene drawn on a frame: --frame, else one grabbed from the camera's source."""
    import cv2

    from edge.config import load_camera_config
    from edge.scene_drawing import draw_scene
    from edge.snapshot import SnapshotError, check_picture_name, grab_frame, write_image

    camera = load_camera_config(args.config)
    try:
        check_picture_name(Path(args.out))
        if args.frame:
            frame = cv2.imread(args.frame, cv2.IMREAD_COLOR)
            if frame is None:
                raise SnapshotError(f"{args.frame}: not a picture that can be read")
        elif camera.camera.source:
            frame = grab_frame(camera.camera.source, args.at, platform=args.platform, timeout_s=args.timeout).image
        else:
            raise SnapshotError(f"{args.config}: camera.source is not set: give a picture with --frame")
        out = write_image(Path(args.out), draw_scene(frame, camera))
    except SnapshotError as e:
        print(f"edge draw: {e}", file=sys.stderr)
        return 2
    h, w = frame.shape[:2]
    ref = camera.scene.reference_size
    scaled = "" if (w, h) == tuple(ref) else f", scaled from the reference {ref[0]}x{ref[1]}"
    print(f"{out}: the scene of {camera.camera.id} on a {w}x{h} frame{scaled}")
    return 0


def _cmd_regions_advice(args: argparse.Namespace) -> int:
    """Whether the camera needs the regions-of-interest pass: the full-frame pass over a stretch of
    its footage, the share of road users in its zones and at its lines that are small."""
    from edge.analyze import make_detector
    from edge.config import DetectorConfig, camera_detector, load_camera_config
    from edge.data import video_path
    from edge.regions import regions_advice
    from edge.sources import VideoFileSource

    camera = load_camera_config(args.config)
    source = args.video or camera.camera.source
    if not source:
        print(f"edge regions-advice: {args.config}: camera.source is not set: give --video", file=sys.stderr)
        return 2
    cfg = camera_detector(DetectorConfig(), camera)
    detector = make_detector(cfg)
    dets, wh = [], (0, 0)
    for frame in VideoFileSource(video_path(source), camera.camera.analysis_fps).frames():
        if frame.pts > args.seconds:
            break
        h, w = frame.image.shape[:2]
        wh = (w, h)
        dets.append(detector(frame.image))
    advice = regions_advice(camera.scene, wh, dets, cfg.long_side)
    print(f"{camera.camera.id}: {len(dets)} frames ({wh[0]}x{wh[1]}), {advice.boxes} road users in the zones and at "
          f"the lines, {advice.small} small ({advice.small_share:.0%}): {advice.reason}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edge.config import load_node_config
    from edge.logs import set_log_context
    from edge.node import EdgeNode

    config, cameras = load_node_config(args.config)
    set_log_context(node=config.node.id)  # every line of a live node names it
    node = EdgeNode(config, cameras)
    signal.signal(signal.SIGTERM, lambda *_: node.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: node.stopping.set())
    try:
        node.run()
    finally:
        node.stop()
    return 0


def _cmd_plates(args: argparse.Namespace) -> int:
    from edge.plates import read_images

    results, ok = read_images(args.images, input_size=args.input_size, crop=args.crop)
    for r in results:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            plates = ", ".join(f"{p['text']} ({p['confidence']:.2f})" for p in r.get("plates", []))
            print(f"{r['image']}: {r.get('error') or plates or 'no plate found'}")
    return 0 if ok else 2


def _frame_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--at", type=float, default=0.0, metavar="SECONDS", help="the first frame this long after the "
                   "source's first (default 0)")
    p.add_argument("--platform", default="cpu", choices=("cpu", "vaapi", "jetson"), help="RTSP decode elements")
    p.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS", help="wait this long for an RTSP frame")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own options (python -m edge bench --help)
        from edge.bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog=program("edge", "ioc-edge"), description="Video-analytics edge node")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("schema", help="print a contract's JSON Schema (the event's by default)")
    p.add_argument("which", nargs="?", default="event", choices=("event", "node_status", "camera_health"))
    p.set_defaults(func=_cmd_schema)
    p = sub.add_parser("check-config", help="validate a node or camera config and what a run needs (models, sources)")
    p.add_argument("file")
    p.add_argument("--camera", action="store_true", help="a camera config (recognised by its keys without this)")
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("analyze", help="analyse a video file offline, deterministically")
    p.add_argument("video", help="a path, or a file name under EDGE_DATA_DIR/videos")
    p.add_argument("--config", required=True, help="camera config (scene and rules)")
    p.add_argument("--out", required=True, help="output folder: events.jsonl and evidence/")
    p.add_argument("--node", help="node config, for its detector settings and node id")
    p.add_argument("--node-id", default="offline")
    p.add_argument("--start-time", help="time of the video's first frame, with its zone (2026-01-01T08:00:00+07:00), "
                   "or file-mtime: the file's modification time. Default: its creation_time tag; without one, "
                   "analyze refuses")
    p.add_argument("--debug-video", metavar="MP4", help="write the analysed frames with detections, tracks, scene, "
                   "signal readings and rule states (H.264, plays in a browser)")
    p.add_argument("--trace", metavar="FILE", action="append", default=[],
                   help="per analysed frame: t, signal readings, rule states (.jsonl, or .csv); may be repeated")
    p.set_defaults(func=_cmd_analyze)
    p = sub.add_parser("snapshot", help="grab one frame as the edge analyses it (rotation applied) and print its size")
    p.add_argument("source", help="an rtsp(s):// URL, a path, or a file name under EDGE_DATA_DIR/videos")
    p.add_argument("--out", required=True, help="the picture to write (.jpg or .png)")
    p.add_argument("--json", action="store_true", help="print {path, width, height, source, pts} as JSON")
    _frame_options(p)
    p.set_defaults(func=_cmd_snapshot)
    p = sub.add_parser("draw", help="draw a camera config's scene (zones, lines, lanes, lamps, calibration, grid) "
                       "on a frame")
    p.add_argument("config", help="camera config")
    p.add_argument("--frame", help="the picture to draw on (default: a frame grabbed from camera.source)")
    p.add_argument("--out", required=True, help="the picture to write (.png or .jpg)")
    _frame_options(p)
    p.set_defaults(func=_cmd_draw)
    p = sub.add_parser("regions-advice", help="whether a camera needs the regions-of-interest pass (small road "
                       "users in its zones and at its lines), from a stretch of its footage")
    p.add_argument("config", help="camera config")
    p.add_argument("--video", help="footage of the camera (a path or a file under EDGE_DATA_DIR/videos); "
                   "default: camera.source")
    p.add_argument("--seconds", type=float, default=30.0, help="of the footage, from its start (default 30)")
    p.set_defaults(func=_cmd_regions_advice)
    p = sub.add_parser("run", help="run the live edge node")
    p.add_argument("--config", required=True, help="node config")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("plates", help="read the licence plates of still images (text or unreadable, confidence, box)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON line per image")
    p.add_argument("--crop", action="store_true", help="each image is one plate crop (no plate detection)")
    p.add_argument("--input-size", type=int, default=640, help="plate detector input size (default 640)")
    p.set_defaults(func=_cmd_plates)
    sub.add_parser("bench", help="how many live cameras this box analyses in real time (see bench --help)")
    args = parser.parse_args(argv)

    from edge.logs import setup_logging

    setup_logging(args.log_level)
    try:
        return args.func(args)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a clear one-line reason; the traceback goes to the debug log
        from edge.detector import DetectorError

        if isinstance(e, DetectorError):
            print(f"edge: {e}", file=sys.stderr)
            return 2
        logging.getLogger("edge").debug("fatal", exc_info=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
