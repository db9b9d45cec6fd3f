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
    from edge.config import load_camera_config, load_node_config

    if args.camera:
        load_camera_config(args.file)
    else:
        load_node_config(args.file)
    print(f"{args.file}: ok")
    return 0


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
    start = datetime.fromisoformat(args.start_time.replace("Z", "+00:00")) if args.start_time else None
    if start is not None and start.tzinfo is None:
        print("edge analyze: --start-time needs a time zone (e.g. 2026-01-01T08:00:00+07:00)", file=sys.stderr)
        return 2
    s = analyze_video(video, camera, Path(args.out), node_id=node_id, detector_config=detector, start_time=start)
    print(
        f"{Path(s.video).name}: {s.frames} frames analysed in {s.seconds:.1f} s "
        f"({s.analysed_fps:.1f} fps, video {s.video_seconds:.1f} s), {s.events} events -> {Path(args.out) / 'events.jsonl'}"
    )
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
    p = sub.add_parser("check-config", help="validate a node config (or a camera config with --camera)")
    p.add_argument("file")
    p.add_argument("--camera", action="store_true")
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("analyze", help="analyse a video file offline, deterministically")
    p.add_argument("video", help="a path, or a file name under EDGE_DATA_DIR/videos")
    p.add_argument("--config", required=True, help="camera config (scene and rules)")
    p.add_argument("--out", required=True, help="output folder: events.jsonl and evidence/")
    p.add_argument("--node", help="node config, for its detector settings and node id")
    p.add_argument("--node-id", default="offline")
    p.add_argument("--start-time", help="UTC time of the video's first frame (default: its creation_time tag)")
    p.set_defaults(func=_cmd_analyze)
    p = sub.add_parser("run", help="run the live edge node")
    p.add_argument("--config", required=True, help="node config")
    p.set_defaults(func=_cmd_run)
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
