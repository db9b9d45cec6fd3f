"""`make demo`: sample videos served as live RTSP cameras -> edge node -> MQTT -> central -> reports.

Three cameras by default, so the queue fills with different kinds of report within minutes: the
Hanoi intersection (red light: sent to its police at once, as a city may choose for clear acts),
the paved walkway beside a car park (illegal parking, repeating: one report grows a group) and a
sidewalk where a bag is left behind (littering). DEMO_VIDEOS (comma-separated file names under
EDGE_DATA_DIR/videos, each with configs/cameras/<stem>.yaml) picks others; DEMO_VIDEO one.

Everything runs on this machine as separate processes, started the way a user starts them. Stops
on Ctrl-C, or after DEMO_SECONDS seconds when that is set (for tests).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.data import data_dir  # noqa: E402
from edge.local_broker import BrokerError, free_port, port_open  # noqa: E402
from pipelines.rtsp_server import RtspTestServer  # noqa: E402
from scripts.demo_broker import demo_broker  # noqa: E402

DEFAULT_VIDEOS = (
    "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4",
    "vn_paved_parking_area_motorbike.mp4",
    "tw_sidewalk_bag_left_behind_aboda_video4.avi",
)
VIDEOS = [
    v.strip()
    for v in (os.environ.get("DEMO_VIDEOS") or os.environ.get("DEMO_VIDEO") or ",".join(DEFAULT_VIDEOS)).split(",")
    if v.strip()
]
# Violation types whose reports go to the police at once, before an operator has looked (central's
# alerts.immediate_types): the demo shows a police alert without anyone clicking.
IMMEDIATE_TYPES = ("red_light",)
STATE = REPO / "var" / "demo"
NODE_ID = "demo-node"


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def pick_port(preferred: int) -> int:
    return preferred if not port_open("127.0.0.1", preferred) else free_port()


def forward(stream, prefix: str, keep: list[str]) -> None:
    for line in iter(stream.readline, ""):
        keep.append(line)
        print(f"{prefix}{line}", end="", flush=True)


def start_process(name: str, args: list[str], env: dict[str, str], log_path: Path, console: list[str]):
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed when the demo ends
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
    )
    threading.Thread(target=forward, args=(proc.stdout, "", console), daemon=True).start()
    say(f"{name} started (pid {proc.pid}, log {log_path.relative_to(REPO)})")
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def police_scope_args(camera_config: Path) -> list[str]:
    """`user-add` arguments scoping a police user to where `camera_config`'s camera stands."""
    import yaml

    loc = ((yaml.safe_load(camera_config.read_text(encoding="utf-8")) or {}).get("camera") or {}).get("location") or {}
    if loc.get("ward"):
        return ["--ward", str(loc["ward"])]  # two-tier: police see their ward (or their area)
    return ["--district", str(loc["district"])] if loc.get("district") else []


def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "0") or 0)
    cameras: list[tuple[str, Path, Path]] = []  # (mount, video, camera config)
    for i, name in enumerate(VIDEOS, 1):
        video = data_dir() / "videos" / name
        config = REPO / "configs" / "cameras" / f"{Path(name).stem}.yaml"
        if not video.is_file():
            say(f"sample video not found: {video}. Set EDGE_DATA_DIR to the folder with videos/ and weights/.")
            return 2
        if not config.is_file():
            say(f"no camera config for {name}: expected {config}")
            return 2
        cameras.append((f"camera{i}", video, config))
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    with ExitStack() as stack:
        # Broker: our own Mosquitto with the access control central.broker_security generates
        # (dynamic-security plugin: accounts for central and the node, client ids bound, no $share
        # for the node), never an anonymous one, so the demo runs as a deployment does.
        try:
            secured = demo_broker(STATE, NODE_ID)
            broker = stack.enter_context(secured.broker)
        except (BrokerError, RuntimeError) as e:
            say(f"no MQTT broker with access control: {e}")
            return 1
        mqtt_url = broker.url
        say(f"broker: started Mosquitto at {mqtt_url} (dynamic-security accounts: central, {NODE_ID})")

        rtsp = stack.enter_context(RtspTestServer({m: str(v) for m, v, _ in cameras}, port=pick_port(8554)))
        for mount, video, _ in cameras:
            say(f"camera: {video.name} served as a live RTSP camera at {rtsp.url(mount)}")

        web_port = pick_port(8080)
        public_url = f"http://127.0.0.1:{web_port}"
        upload_token = secrets.token_urlsafe(24)  # the node's credential for uploading clips to central
        (STATE / "central.yaml").write_text(
            f"database_url: sqlite:///{STATE / 'central.db'}\n"
            f"evidence_dir: {STATE / 'central-evidence'}\n"
            f"mqtt:\n  url: {mqtt_url}\n  client_id: demo-central\n"
            f"  username: {secured.central_user}\n  password_file: {secured.central_password_file}\n"
            f"web:\n  host: 127.0.0.1\n  port: {web_port}\n  public_url: {public_url}\n"
            f"uploads:\n  nodes:\n    demo-node: '{upload_token}'\n"
            f"alerts:\n  immediate_types: [{', '.join(IMMEDIATE_TYPES)}]\n",
            encoding="utf-8",
        )
        (STATE / "node.yaml").write_text(
            f"node:\n  id: {NODE_ID}\n"
            f"  state_dir: {STATE / 'edge'}\n"
            f"mqtt:\n  url: {mqtt_url}\n  password_file: {secured.node_password_file}\n"
            "status_interval_s: 5\n"
            f"upload:\n  url: {public_url}\n  token: '{upload_token}'\n"
            "cameras:\n"
            + "".join(f"  - config: {config}\n    source: {rtsp.url(mount)}\n" for mount, _, config in cameras),
            encoding="utf-8",
        )
        env = {**os.environ, "PYTHONPATH": str(REPO), "EDGE_DATA_DIR": str(data_dir()), "PYTHONUNBUFFERED": "1"}
        env.pop("CENTRAL_DATABASE_URL", None)
        env.pop("CENTRAL_MQTT_URL", None)
        # A console user for the person watching the demo (the console needs a log-in).
        operator_password = secrets.token_urlsafe(9)
        central_cfg = ["-m", "central", "--config", str(STATE / "central.yaml")]
        # And a police officer who sees the first camera's area (its red-light alerts arrive live).
        police_scope = police_scope_args(cameras[0][2])
        steps = [["migrate"], ["user-add", "demo", "--role", "operator"]]
        if police_scope:
            steps.append(["user-add", "police", "--role", "police", *police_scope])
        for step in steps:
            done = subprocess.run(
                [sys.executable, *central_cfg, *step], cwd=REPO, capture_output=True, text=True, timeout=120,
                env={**env, "CENTRAL_USER_PASSWORD": operator_password},
            )
            if done.returncode != 0:
                say(f"central {step[0]} failed: {done.stderr.strip()[-500:]}")
                return 1
        console: list[str] = []
        central = start_process(
            "central", ["-m", "central", "--config", str(STATE / "central.yaml"), "run"], env, STATE / "central.log", console
        )
        stack.callback(stop_process, central)
        edge = start_process(
            "edge node", ["-m", "edge", "run", "--config", str(STATE / "node.yaml")], env, STATE / "edge.log", []
        )
        stack.callback(stop_process, edge)  # callbacks run in reverse: the edge stops before central

        say(f"console: {public_url}/queue   log in as demo / {operator_password}   (Ctrl-C to stop)")
        if police_scope:
            say(f"police view: {public_url}/police   log in as police / {operator_password}")
        say("each REPORT line below carries a read-only link that works without logging in")
        started = time.monotonic()
        while not stop.wait(1.0):
            if seconds and time.monotonic() - started >= seconds:
                break
            for name, proc in (("central", central), ("edge node", edge)):
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; see its log in {STATE.relative_to(REPO)}")
                    return 1
        reports = sum(1 for line in console if line.startswith("REPORT"))
        say(f"stopping after {time.monotonic() - started:.0f} s; {reports} report(s) so far at {public_url}/reports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
