"""A province on one box: N simulated edge nodes, each a real MQTT connection with its own
credentials, publishing contract-v1 events, snapshots, node status and camera health through a
real broker to central's real ingesters, into PostgreSQL (or SQLite). Steady, rush hour (10x),
steady again; optionally a ramp that raises the rate until the path saturates.

    python benchmarks/province_sim.py                      # 1,000 nodes, 60 s / 30 s x10 / 30 s
    python benchmarks/province_sim.py --saturate 10,20,40,80 --step-s 20
    python benchmarks/province_sim.py --nodes 50 --steady-s 5 --burst-s 5 --after-s 5 --db sqlite
    python benchmarks/province_sim.py probe                # ms per message of each ingest path

What is real: Mosquitto (the system binary, dynamic-security plugin with one account and one
client id per node from central.broker_security, so a node may publish only under its own id),
`python -m central ingest` processes (shared subscription, ack after commit), PostgreSQL
(a fresh database on TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres,
dropped after) or a SQLite file; or, with `--broker rabbitmq`, a RabbitMQ cluster on this box
(tests/rabbitmq_cluster.py; nodes on MQTT 3.1.1, events to the ingesters from the quorum queue
over AMQP, central/ingest_rabbitmq.py). What is simulated: the nodes. They are "light": no cameras, no
disk outbox; each keeps its unacknowledged messages in memory and sends them again after a
reconnect, as the outbox would. Many nodes share a process: paho's external-loop API on one
selector per worker process (`--workers`), no thread per client.

What a node sends, and where the numbers come from:
- cameras per node: 1-5 (mean 3.2; docs/benchmarks.md "live 1080p cameras per box": one box
  keeps up with 5 cameras), each camera a profile of the repo's sample camera configs
  (configs/cameras/*.yaml: their rules are the camera's event types, their zones and location go
  into the events), in turn;
- events per camera: 1,000 a day in the steady phases (docs/deploy.md's database plan, derived
  from the Hanoi footage: 9 events in 128 s on one camera, ~6,000 a day if sustained); rush hour
  x10 = 0.116/s per camera, above that busiest measured camera (0.070/s). Poisson arrivals.
- each event as the live edge sends it (edge/pipeline.py, edge/node.py, "event first"): its
  snapshots as MQTT evidence messages (kinds and sizes per type in EVIDENCE, measured from
  `edge analyze` on the sample clips), then the event with `evidence_pending: [clip]`, then
  ~3 s later (the post-roll; "clip latency p50 3.2 s" in docs/benchmarks.md) the same id again
  with the clip's reference (the clip itself goes over HTTP: not simulated here). Sidewalk
  encroachment is an incident: a `start` event, an `end` event when it is over.
- node status (retained, with every camera's health inside) every `status_interval_s` (10 s, the
  edge default) and each camera's health on its own retained topic as often; last will offline.

Measured: connections held (the simulators' count and the broker's $SYS count), refused
CONNACKs and dropped connections; offered and stored events/s per phase; publish->stored latency
(the event's `ended_at` is set when it is published; stored = `report_events.added_at`, written
in the storing transaction) p50/p95/p99/max per phase; lost and stored-twice from the database;
CPU of broker, ingesters, PostgreSQL backends and simulators per phase (/proc). Exit status 0
only when nothing was lost, nothing stored twice and every connection was held.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import resource
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
import yaml  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from contract.events import EvidenceRef, ViolationEvent, known_violation_types, new_event_id  # noqa: E402
from contract.status import CameraHealth, NodeStatus  # noqa: E402
from contract.topics import camera_health_topic, event_topic, evidence_topic, node_status_topic  # noqa: E402

PREFIX = "ioc"
EVENTS_PER_CAMERA_DAY = 1000.0  # docs/deploy.md, database capacity plan
CAMERAS_PER_NODE = {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.2, 5: 0.2}  # mean 3.2; 5 = a full box (docs/benchmarks.md)
STATUS_INTERVAL_S = 10.0  # edge/config.py status_interval_s default
CLIP_AFTER_S = 3.2  # docs/benchmarks.md: clip_latency p50 3.2 s at 5 cameras (post-roll 3 s)
KEEPALIVE_S = 30  # edge/publisher.py default
WINDOW = 100  # edge/publisher.py: QoS 1 messages in flight per node
# MQTT evidence per event (snapshots, composites, crops; clips go over HTTP): bytes per file,
# measured with `python -m edge analyze` on the sample clips (docs/benchmarks.md, "A province on
# one box"): Hanoi intersection (640x480), 9 red-light events: snapshot 102-107 kB, clean copy
# 85-90 kB, composite 532-548 kB, its clean copy 251-266 kB; helmet clip (1054x586), 1 no-helmet
# event: snapshot 113 kB, clean 85 kB, plate crop 3.4 kB, head crop 9.9 kB. A 1080p camera's
# snapshots are larger: --evidence-scale.
SNAPSHOT_BYTES = 105_000
CLEAN_BYTES = 87_000
COMPOSITE_BYTES = 540_000
COMPOSITE_CLEAN_BYTES = 259_000
CROSSING_TYPES = {"red_light", "stop_line", "wrong_way", "lane", "forbidden_turn"}


def evidence_kinds(vtype: str, scale: float) -> list[tuple[str, int]]:
    if scale <= 0:
        return []
    kinds = [("snapshot", SNAPSHOT_BYTES), ("snapshot_clean", CLEAN_BYTES)]
    if vtype in CROSSING_TYPES:
        kinds += [("composite", COMPOSITE_BYTES), ("composite_clean", COMPOSITE_CLEAN_BYTES)]
    if vtype in CROSSING_TYPES or vtype == "no_helmet":
        kinds += [("plate", 3_400)]
    if vtype == "no_helmet":
        kinds += [("crop", 9_900)]
    return [(k, max(64, int(n * scale))) for k, n in kinds]


# ----------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Profile:
    """A camera kind: one of the repo's sample camera configs."""

    name: str
    types: tuple[str, ...]
    zones: tuple[tuple[str, str], ...]
    location: dict[str, Any]


def load_profiles() -> list[Profile]:
    known = known_violation_types()
    out = []
    for path in sorted((REPO / "configs" / "cameras").glob("*.yaml")):
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
        types = tuple(t for t in (d.get("rules") or {}) if t in known)
        if not types:
            continue
        zones = tuple((z["id"], z.get("kind", "zone")) for z in (d.get("scene") or {}).get("zones") or [] if "id" in z)
        loc = {k: v for k, v in ((d.get("camera") or {}).get("location") or {}).items()
               if k in ("province", "ward", "district", "address", "lat", "lon")}
        out.append(Profile(path.stem, types, zones or (("zone-1", "no_stopping"),), loc))
    return out


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    x: float  # multiple of the steady rate


def plan_nodes(n: int, seed: int) -> list[tuple[str, int]]:
    """(node id, cameras) for each node, reproducible from the seed."""
    rng = random.Random(seed)
    sizes, weights = zip(*CAMERAS_PER_NODE.items(), strict=True)
    return [(f"sim-{i:05d}", rng.choices(sizes, weights)[0]) for i in range(n)]


# ------------------------------------------------------------------------------ the simulator


@dataclass
class PhaseCounts:
    events: int = 0  # first publishes of events
    messages: int = 0  # every MQTT message (events, re-publishes, evidence, status, health)
    bytes: int = 0
    status: int = 0
    lag: list[float] = field(default_factory=list)  # s behind schedule


class SimNode:
    def __init__(self, sim: Worker, node_id: str, password: str, cameras: list[tuple[str, Profile]]) -> None:
        self.sim, self.id, self.cameras = sim, node_id, cameras
        self.started = time.time()
        self.pending: dict[int, tuple[str, bytes, bool, str | None]] = {}  # mid -> topic, payload, retain, event id
        self.unsent: list[tuple[str, bytes, bool, str | None]] = []  # to send again after a reconnect
        self.connected = False
        self.ever_connected = False
        self.published = 0
        self.next_retry = 0.0
        v5 = sim.spec.get("protocol", "5") == "5"
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=node_id, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                        clean_session=None if v5 else True)
        c.username_pw_set(node_id, password)
        c.will_set(node_status_topic(PREFIX, node_id), NodeStatus(node=node_id, state="offline").to_json(), qos=1, retain=True)
        c.max_inflight_messages_set(WINDOW)
        c.max_queued_messages_set(0)
        c.on_socket_open = sim.sock_open
        c.on_socket_close = sim.sock_close
        c.on_socket_register_write = sim.sock_want_write
        c.on_socket_unregister_write = sim.sock_no_write
        c.on_connect = self.on_connect
        c.on_disconnect = self.on_disconnect
        c.on_publish = self.on_publish
        c.user_data_set(self)
        self.client = c

    # paho callbacks (in this worker's one thread)
    def on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.sim.refused += 1
            self.sim.refusals[str(reason)] = self.sim.refusals.get(str(reason), 0) + 1
            return
        self.connected = True
        if self.ever_connected:
            self.sim.reconnected += 1
        self.ever_connected = True
        # What the broker did not acknowledge goes again (the outbox keeps it until a PUBACK).
        again, self.unsent = self.unsent + list(self.pending.values()), []
        self.pending.clear()
        self.send_status()
        for topic, payload, retain, eid in again:
            self.publish(topic, payload, retain, eid, again=True)

    def on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self.connected and not self.sim.stopping:
            self.sim.dropped += 1
            self.sim.drop_reasons[str(reason)] = self.sim.drop_reasons.get(str(reason), 0) + 1
        self.connected = False
        self.unsent += list(self.pending.values())
        self.pending.clear()
        self.next_retry = time.monotonic() + 1.0

    def on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        msg = self.pending.pop(mid, None)
        if msg is None:
            return
        code = int(reason.value) if hasattr(reason, "value") else int(reason)
        if code >= 0x80 or code == 0x10:  # refused, or nobody subscribed: kept and sent again, as the outbox does
            self.sim.puback_refused += 1
            what = f"{msg[0].split('/')[-2] if msg[0].count('/') >= 4 else msg[0].split('/')[-1]}: {reason}"
            self.sim.puback_codes[what] = self.sim.puback_codes.get(what, 0) + 1
            self.unsent.append(msg)
            self.next_retry = time.monotonic() + 1.0
            return
        eid = msg[3]
        if eid is not None and eid in self.sim.sent_at:
            self.sim.puback_ms.append((time.time() - self.sim.sent_at.pop(eid)) * 1000)

    # sending
    def publish(self, topic: str, payload: bytes, retain: bool = False, eid: str | None = None, again: bool = False) -> None:
        if not self.connected:
            self.unsent.append((topic, payload, retain, eid))
            return
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            self.unsent.append((topic, payload, retain, eid))
            return
        self.pending[info.mid] = (topic, payload, retain, eid)
        counts = self.sim.counts()
        counts.messages += 1
        counts.bytes += len(payload)
        if again:
            self.sim.resent += 1

    def health(self, camera: str, now: datetime) -> CameraHealth:
        up = time.time() - self.started
        return CameraHealth(
            node=self.id, camera=camera, state="streaming", at=now, last_frame_at=now,
            frames_decoded=int(up * 25), frames_delivered=int(up * 5), analysed_frames=int(up * 5),
            analysis_fps=5.0, analysis_fps_target=5.0, lag_ms_p50=80.0, lag_ms_max=140.0,
            events=self.sim.camera_events.get((self.id, camera), 0),
        )

    def send_status(self) -> None:
        now = datetime.now(UTC)
        cams = {cam: self.health(cam, now) for cam, _p in self.cameras}
        status = NodeStatus(
            node=self.id, state="online", at=now, uptime_s=round(time.time() - self.started, 1),
            outbox_backlog=len(self.pending) + len(self.unsent), published=self.published, held_no_subscriber=0,
            mqtt_connected=self.connected, publishes_refused=0, cameras=cams,
        )
        self.publish(node_status_topic(PREFIX, self.id), status.to_json().encode(), retain=True)
        for cam, h in cams.items():
            self.publish(camera_health_topic(PREFIX, self.id, cam), h.to_json().encode(), retain=True)
        self.sim.counts().status += 1


def _box(rng: random.Random) -> tuple[float, float, float, float]:
    x, y = rng.uniform(0, 1700), rng.uniform(200, 900)
    return (round(x, 1), round(y, 1), round(x + rng.uniform(40, 220), 1), round(y + rng.uniform(60, 180), 1))


class Worker:
    """Many simulated nodes on one selector (paho's external-loop API): one thread, one process."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.rng = random.Random(spec["seed"])
        self.sel = selectors.DefaultSelector()
        self.phases = [Phase(**p) for p in spec["phases"]]
        self.t0 = 0.0
        self.stopping = False
        self.refused = self.dropped = self.reconnected = self.puback_refused = self.resent = 0
        self.refusals: dict[str, int] = {}
        self.drop_reasons: dict[str, int] = {}
        self.puback_codes: dict[str, int] = {}
        self.sent_at: dict[str, float] = {}
        self.puback_ms: list[float] = []
        self.camera_events: dict[tuple[str, str], int] = {}
        self.per_phase = [PhaseCounts() for _ in self.phases] + [PhaseCounts()]  # + after the schedule
        self.events: list[tuple[str, float, float, int]] = []  # id, due (s after t0), published (epoch), phase
        self.connected_min: list[int] = [len(spec["nodes"])] * (len(self.phases) + 1)
        profiles = load_profiles()
        self.nodes: list[SimNode] = []
        k = spec["camera_offset"]
        for node_id, n_cams in spec["nodes"]:
            cams = []
            for j in range(n_cams):
                cams.append((f"cam-{j + 1}", profiles[k % len(profiles)]))
                k += 1
            self.nodes.append(SimNode(self, node_id, spec["passwords"][node_id], cams))
        filler = (REPO / "benchmarks" / "province_sim.py").read_bytes()
        self.filler = (filler * (1 + 2_000_000 // len(filler)))[:2_000_000]

    # selector plumbing for paho
    def sock_open(self, client: mqtt.Client, node: SimNode, sock: Any) -> None:
        self.sel.register(sock, selectors.EVENT_READ, node)

    def sock_close(self, client: mqtt.Client, node: SimNode, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)

    def sock_want_write(self, client: mqtt.Client, node: SimNode, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, node)

    def sock_no_write(self, client: mqtt.Client, node: SimNode, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.modify(sock, selectors.EVENT_READ, node)

    def phase_at(self, t: float) -> int:
        acc = 0.0
        for i, p in enumerate(self.phases):
            acc += p.seconds
            if t < acc:
                return i
        return len(self.phases)

    def counts(self) -> PhaseCounts:
        # Before the schedule starts (connecting) counts with "after the schedule": outside every phase.
        return self.per_phase[self.phase_at(time.time() - self.t0) if self.t0 else len(self.phases)]

    def pump(self, timeout: float) -> None:
        for key, mask in self.sel.select(timeout):
            node: SimNode = key.data
            if mask & selectors.EVENT_READ:
                node.client.loop_read()
            if mask & selectors.EVENT_WRITE:
                node.client.loop_write()

    def connect_all(self) -> None:
        ports = self.spec["ports"]  # a cluster: nodes spread over its members
        for i, node in enumerate(self.nodes):
            try:
                node.client.connect("127.0.0.1", ports[(self.spec["camera_offset"] + i) % len(ports)], keepalive=KEEPALIVE_S)
            except OSError as e:
                self.refused += 1
                self.refusals[f"socket: {e}"] = self.refusals.get(f"socket: {e}", 0) + 1
            if i % 20 == 19:
                self.pump(0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(n.connected for n in self.nodes) + self.refused < len(self.nodes):
            self.pump(0.05)

    def schedule(self) -> list[tuple[float, int, int, str, str]]:
        """(due s after t0, node, camera, type, phase kind) for every event; Poisson per camera."""
        base = self.spec["per_camera_s"]
        out = []
        for ni, node in enumerate(self.nodes):
            for ci, (_cam, prof) in enumerate(node.cameras):
                start = 0.0
                for p in self.phases:
                    rate = base * p.x
                    t = start + self.rng.expovariate(rate) if rate > 0 else start + p.seconds
                    while t < start + p.seconds:
                        vtype = self.rng.choice(prof.types)
                        out.append((t, ni, ci, vtype, "start" if vtype == "sidewalk_encroachment" else "point"))
                        t += self.rng.expovariate(rate)
                    start += p.seconds
        return out

    def make_event(self, node: SimNode, ci: int, vtype: str, phase: str, incident: str | None,
                   refs: list[dict[str, Any]], pending: bool) -> ViolationEvent:
        cam, prof = node.cameras[ci]
        rng = self.rng
        now = datetime.now(UTC)
        zid, zkind = rng.choice(prof.zones)
        cls = "motorcycle" if vtype in ("no_helmet", "red_light", "wrong_way") else rng.choice(["car", "motorcycle", "truck"])
        if vtype in ("littering",):
            cls = "person"
        objects = [{"class_name": cls, "track_id": rng.randrange(1, 5000), "box": _box(rng),
                    "confidence": round(rng.uniform(0.4, 0.95), 2)}]
        if vtype in CROSSING_TYPES or vtype == "no_helmet":
            plate = f"{rng.randrange(11, 99)}A-{rng.randrange(100, 999)}.{rng.randrange(10, 99)}"
            objects[0]["plate"] = plate
            objects[0]["plate_read"] = {"text": plate, "confidence": round(rng.uniform(0.6, 0.99), 2), "lines": 1}
        details: dict[str, Any] = {"sim": True}
        if vtype == "illegal_stopping":
            details["stopped_seconds"] = round(rng.uniform(8, 300), 1)
        elif vtype == "sidewalk_encroachment":
            details["occupied_seconds"] = round(rng.uniform(60, 600), 1)
        elif vtype in CROSSING_TYPES:
            details["signal"] = "red"
        seconds = {"illegal_stopping": details.get("stopped_seconds", 2.0)}.get(vtype, 2.0)
        return ViolationEvent.model_validate({
            "id": new_event_id(), "node": node.id, "camera": cam, "type": vtype,
            "category": known_violation_types()[vtype], "phase": phase, "incident": incident,
            "started_at": now - timedelta(seconds=float(seconds)), "ended_at": now, "detected_at": now,
            "confidence": round(rng.uniform(0.5, 0.97), 2), "objects": objects,
            "zone": {"id": zid, "kind": zkind}, "location": prof.location, "evidence": refs,
            "evidence_pending": ["clip"] if pending else [],
            "model": {"name": "yolo11n", "version": "province-sim"}, "details": details,
        })

    def snapshot_bytes(self, size: int) -> bytes:
        # Starts like a JPEG (central sniffs the media type), unique per file (content-addressed).
        head = b"\xff\xd8\xff\xe0" + secrets.token_bytes(16)
        off = self.rng.randrange(0, len(self.filler) - size) if size < len(self.filler) else 0
        return head + self.filler[off:off + size - len(head)]

    def fire_event(self, due: float, ni: int, ci: int, vtype: str, phase: str, later: list) -> None:
        node = self.nodes[ni]
        cam = node.cameras[ci][0]
        files = [(kind, self.snapshot_bytes(size)) for kind, size in evidence_kinds(vtype, self.spec["evidence_scale"])]
        refs: list[dict[str, Any]] = [{"kind": k, "media_type": "image/jpeg", "sha256": sha256(b).hexdigest(), "size": len(b)}
                                      for k, b in files]
        incident = str(uuid.uuid4()) if phase == "start" else None
        ev = self.make_event(node, ci, vtype, phase, incident, refs, pending=self.spec["clips"])
        for (_k, b), ref in zip(files, refs, strict=True):
            node.publish(evidence_topic(PREFIX, node.id, cam, ref["sha256"]), b)
        payload = ev.to_json().encode()
        now = time.time()
        self.sent_at[ev.id] = now
        node.publish(event_topic(PREFIX, node.id, cam, vtype), payload, eid=ev.id)
        node.published += 1
        self.camera_events[(node.id, cam)] = self.camera_events.get((node.id, cam), 0) + 1
        ph = self.phase_at(due)
        self.events.append((ev.id, due, now, ph))
        counts = self.per_phase[ph]
        counts.events += 1
        counts.lag.append(now - self.t0 - due)
        if self.spec["clips"]:
            clip = EvidenceRef(kind="clip", media_type="video/mp4", sha256=secrets.token_hex(32), size=2_400_000)
            again = ev.model_copy(update={"evidence": [*ev.evidence, clip], "evidence_pending": []})
            heapq.heappush(later, (due + CLIP_AFTER_S + self.rng.expovariate(1.0), 1, ni, ci, again))
        if phase == "start":
            end = due + float(ev.details["occupied_seconds"]) / 10  # shortened: the run is minutes, not hours
            heapq.heappush(later, (end, 2, ni, ci, ev))

    def fire_later(self, kind: int, ni: int, ci: int, ev: ViolationEvent) -> None:
        node = self.nodes[ni]
        cam = node.cameras[ci][0]
        if kind == 1:  # the re-publish with the clip (same id)
            node.publish(event_topic(PREFIX, node.id, cam, ev.type.value), ev.to_json().encode())
            return
        # the incident's end: an event of its own
        end = self.make_event(node, ci, ev.type.value, "end", ev.incident, [], pending=False)
        now = time.time()
        self.sent_at[end.id] = now
        node.publish(event_topic(PREFIX, node.id, cam, end.type.value), end.to_json().encode(), eid=end.id)
        node.published += 1
        ph = self.phase_at(now - self.t0)
        self.events.append((end.id, now - self.t0, now, ph))
        self.per_phase[ph].events += 1

    def run(self) -> None:
        events = self.schedule()
        heapq.heapify(events)
        self.connect_all()
        held = sum(n.connected for n in self.nodes)
        print(json.dumps({"ready": True, "connected": held, "refused": self.refused}), flush=True)
        line = sys.stdin.readline()  # "go <t0>"
        self.t0 = float(line.split()[1])
        total = sum(p.seconds for p in self.phases)
        later: list = []
        interval = self.spec["status_interval_s"]
        status_due = [(self.t0 + self.rng.uniform(0, interval), i) for i in range(len(self.nodes))]
        heapq.heapify(status_due)
        stdin_sel = selectors.DefaultSelector()
        stdin_sel.register(sys.stdin, selectors.EVENT_READ)
        last_misc = 0.0
        finished_schedule = False
        while True:
            now = time.time()
            t = now - self.t0
            while events and events[0][0] <= t:
                due, ni, ci, vtype, ph = heapq.heappop(events)
                if self.nodes[ni].ever_connected:
                    self.fire_event(due, ni, ci, vtype, ph, later)
            while later and later[0][0] <= t:
                _due, kind, ni, ci, ev = heapq.heappop(later)
                if t < total + 30:
                    self.fire_later(kind, ni, ci, ev)
            while status_due and status_due[0][0] <= now:
                _d, i = heapq.heappop(status_due)
                if self.nodes[i].connected:
                    self.nodes[i].send_status()
                heapq.heappush(status_due, (_d + interval, i))
            if now - last_misc >= 0.5:
                last_misc = now
                held = 0
                mono = time.monotonic()
                for node in self.nodes:
                    node.client.loop_misc()
                    held += node.connected
                    if not node.connected and node.ever_connected and mono >= node.next_retry and not self.stopping:
                        node.next_retry = mono + 2.0
                        with contextlib.suppress(OSError):
                            node.client.reconnect()
                    elif node.connected and node.unsent and mono >= node.next_retry:
                        again, node.unsent = node.unsent, []
                        for topic, payload, retain, eid in again:
                            node.publish(topic, payload, retain, eid, again=True)
                now_phase = self.phase_at(t)
                self.connected_min[now_phase] = min(self.connected_min[now_phase], held)
                if t >= total and not finished_schedule and not events:
                    finished_schedule = True
                    print(json.dumps({"scheduled_done": True}), flush=True)
                if stdin_sel.select(0) and sys.stdin.readline().strip() == "stop":
                    break
            nxt = min([events[0][0] + self.t0 if events else now + 0.05, later[0][0] + self.t0 if later else now + 0.05,
                       status_due[0][0] if status_due else now + 0.05, now + 0.05])
            self.pump(max(0.0, nxt - time.time()))
        self.stop()

    def stop(self) -> None:
        # A node that stops says so (retained offline status), then disconnects cleanly.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(n.pending or n.unsent for n in self.nodes if n.connected):
            self.pump(0.05)
            for n in self.nodes:
                n.client.loop_misc()
        unacked = sum(len(n.pending) + len(n.unsent) for n in self.nodes)
        self.stopping = True
        for n in self.nodes:
            if n.connected:
                n.client.publish(node_status_topic(PREFIX, n.id),
                                 NodeStatus(node=n.id, state="offline", at=datetime.now(UTC)).to_json(), qos=1, retain=True)
        end = time.monotonic() + 5
        while time.monotonic() < end and any(n.client.want_write() for n in self.nodes if n.connected):
            self.pump(0.05)
        for n in self.nodes:
            if n.connected:
                n.client.disconnect()
                with contextlib.suppress(Exception):
                    n.client.loop_write()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out = {
            "events": self.events,
            "unacked": unacked,
            "refused": self.refused, "refusals": self.refusals, "dropped": self.dropped,
            "drop_reasons": self.drop_reasons, "reconnected": self.reconnected,
            "puback_refused": self.puback_refused, "puback_codes": self.puback_codes, "resent": self.resent,
            "puback_ms": self.puback_ms,
            "connected_min": self.connected_min,
            "per_phase": [{"events": c.events, "messages": c.messages, "bytes": c.bytes, "status": c.status,
                           "lag": c.lag} for c in self.per_phase],
            "cpu_s": ru.ru_utime + ru.ru_stime,
        }
        Path(self.spec["out"]).write_text(json.dumps(out), encoding="utf-8")
        print(json.dumps({"done": True}), flush=True)


def worker_main(spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Worker(spec).run()
    return 0


# ----------------------------------------------------------------------------- measuring


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def box_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole box since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / CLK_TCK, sum(v[:8]) / CLK_TCK


class CpuMeter:
    """CPU seconds per component, sampled at phase boundaries; PostgreSQL: our database's backends."""

    def __init__(self, groups: dict[str, list[int]], pg_pids: Any) -> None:
        self.groups = groups
        self.pg_pids = pg_pids  # callable -> current backend pids of our database
        self.seen_pg: dict[int, float] = {}
        self.samples: list[tuple[float, dict[str, float], tuple[float, float]]] = []

    def sample(self) -> None:
        vals = {}
        for name, pids in self.groups.items():
            vals[name] = sum(c for p in pids if (c := proc_cpu_s(p)) is not None)
        for p in self.pg_pids():
            c = proc_cpu_s(p)
            if c is not None:
                self.seen_pg.setdefault(p, c)  # first seen: count from there
                self.seen_pg[p] = max(self.seen_pg[p], c)
        vals["postgresql"] = sum(self.seen_pg.values())
        self.samples.append((time.monotonic(), vals, box_cpu_s()))

    def cores(self, i: int) -> dict[str, float]:
        (t0, a, b0), (t1, b, b1) = self.samples[i], self.samples[i + 1]
        dt = t1 - t0
        out = {k: (b[k] - a.get(k, 0.0)) / dt for k in b}
        out["box (all processes)"] = (b1[0] - b0[0]) / dt
        return out


class SysWatcher:
    """The broker's own count of connected clients ($SYS), read as central."""

    def __init__(self, port: int, password: str) -> None:
        self.values: list[tuple[float, int]] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"central-sys-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
        c.username_pw_set("central", password)
        c.on_connect = lambda cl, *_a: cl.subscribe("$SYS/broker/clients/connected")
        c.on_message = lambda _c, _u, m: self.values.append((time.time(), int(m.payload or b"0")))
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# ------------------------------------------------------------------------------ orchestration


class MosquittoBroker:
    """One Mosquitto, the single-box default: the dynamic-security plugin with one account per node,
    each bound to its client id (central.broker_security), deploy/mosquitto/mosquitto.conf's
    persistence and queue settings."""

    protocol = "5"

    def __init__(self, work: Path, nodes: list[str], central_password: str) -> None:
        from central.broker_security import dynsec_broker_files
        from edge.local_broker import LocalMosquitto

        self.passwords = {n: secrets.token_urlsafe(18) for n in nodes}
        security = dynsec_broker_files(work / "security", self.passwords, central_password, prefix=PREFIX, tls=False)

        class Broker(LocalMosquitto):
            def _write_config(self) -> None:
                super()._write_config()
                with open(self.config_path, "a", encoding="utf-8") as f:
                    f.write("sys_interval 1\nmax_connections -1\n")

        # deploy/mosquitto/mosquitto.conf: autosave every 60 s, 100,000 queued per client.
        self.broker = Broker(state_dir=work / "broker", max_queued_messages=100_000, autosave_interval_s=60,
                             security=security).start()
        self.ports = [self.broker.port]
        self.name = "mosquitto 1 node (dynamic security: one account + client id per node)"

    def pids(self) -> list[int]:
        proc = self.broker._proc
        return [proc.pid] if proc is not None else []

    def central_yaml(self, k: int, password_file: Path) -> str:
        return (f"mqtt:\n  url: {self.broker.url}\n  share_group: central\n  client_id: central-sim-{k}\n"
                f"  username: central\n  password_file: {password_file}\n")

    def stop(self) -> None:
        self.broker.stop()


class RabbitBroker:
    """A RabbitMQ cluster on this box (tests/rabbitmq_cluster.py: distinct ports and data dirs),
    accounts and the events quorum queue from central.rabbitmq_cluster; nodes speak MQTT 3.1.1 to
    it, spread over its members; ingesters consume the quorum queue over AMQP
    (central/ingest_rabbitmq.py) and take status, health and evidence over MQTT."""

    protocol = "3.1.1"

    def __init__(self, work: Path, nodes: list[str], central_password: str, size: int) -> None:
        from central.rabbitmq_cluster import RabbitUsers, definitions
        from tests.rabbitmq_cluster import start_cluster

        self.passwords = {n: secrets.token_urlsafe(18) for n in nodes}
        self.replicas = min(3, size)
        doc = definitions(RabbitUsers(nodes=self.passwords, central_password=central_password), prefix=PREFIX,
                          replicas=self.replicas)
        self.cluster = start_cluster(work / "rabbit", size, definitions=doc)
        self.ports = [int(u.rsplit(":", 1)[1]) for u in self.cluster.mqtt_urls]
        self.name = f"rabbitmq {size} nodes (quorum queue on {self.replicas}; MQTT 3.1.1, one account per node)"

    def pids(self) -> list[int]:
        return [p.pid for p in self.cluster.procs.values()]

    def central_yaml(self, k: int, password_file: Path) -> str:
        urls = self.cluster.mqtt_urls
        servers = ", ".join(self.cluster.amqp_urls)
        return (f"mqtt:\n  url: {urls[k % len(urls)]}\n  protocol: \"3.1.1\"\n  share_group: null\n"
                f"  client_id: central-sim-{k}\n  username: central\n  password_file: {password_file}\n"
                f"rabbitmq:\n  servers: [{servers}]\n  password_file: {password_file}\n  replicas: {self.replicas}\n")

    def stop(self) -> None:
        self.cluster.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from central.db import make_engine, migrate

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.nodes + 4096
    if soft < need:  # the broker inherits it: one descriptor per connection
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    if args.saturate:
        steps = [float(x) for x in args.saturate.split(",")]
        phases = [Phase("steady", args.steady_s, 1.0)] + [Phase(f"x{s:g}", args.step_s, s) for s in steps]
    else:
        phases = [Phase("steady", args.steady_s, 1.0), Phase(f"rush x{args.burst_x:g}", args.burst_s, args.burst_x),
                  Phase("after", args.after_s, 1.0)]
    work = Path(tempfile.mkdtemp(prefix="province-sim-"))
    plan = plan_nodes(args.nodes, args.seed)
    cameras = sum(c for _n, c in plan)
    per_camera_s = args.events_per_camera_day / 86400.0
    central_password = secrets.token_urlsafe(18)
    admin = dbname = None
    if args.db == "postgresql":
        from tests.services import DEFAULT_POSTGRES_ADMIN_URL, create_database

        admin = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
        dbname = f"province_{uuid.uuid4().hex[:10]}"
        db_url = create_database(admin, dbname)
    else:
        db_url = f"sqlite:///{work / 'central.db'}"
    migrate(db_url)
    engine = make_engine(db_url)
    procs: list[subprocess.Popen] = []
    sims: list[subprocess.Popen] = []
    broker: MosquittoBroker | RabbitBroker | None = None
    watcher = None
    result: dict[str, Any] = {}
    try:
        (work / "central.password").write_text(central_password + "\n", encoding="utf-8")
        (work / "central.password").chmod(0o600)
        nodes = [n for n, _c in plan]
        broker = (MosquittoBroker(work, nodes, central_password) if args.broker == "mosquitto"
                  else RabbitBroker(work, nodes, central_password, args.cluster_size))
        env = {**os.environ, "PYTHONPATH": str(REPO), "CENTRAL_DATABASE_URL": db_url}
        for k in range(args.ingesters):
            cfg = work / f"central-{k}.yaml"
            cfg.write_text(broker.central_yaml(k, work / "central.password") + f"evidence_dir: {work / 'evidence'}\n",
                           encoding="utf-8")
            log = open(work / f"ingester-{k}.log", "w")  # noqa: SIM115
            procs.append(subprocess.Popen([sys.executable, "-m", "central", "--config", str(cfg), "ingest"],
                                          cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
        watcher = SysWatcher(broker.ports[0], central_password) if args.broker == "mosquitto" else None
        # Wait until every ingester has subscribed (else the first events find no subscriber).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            logs = [(work / f"ingester-{k}.log").read_text(errors="replace") for k in range(args.ingesters)]
            ready_word = "mqtt_subscribed" if args.broker == "mosquitto" else "rabbitmq_consuming"
            if all("mqtt_subscribed" in t and ready_word in t for t in logs):
                break
            for p in procs:
                if p.poll() is not None:
                    raise SystemExit(f"an ingester exited early; see {work}")
            time.sleep(0.2)
        else:
            raise SystemExit(f"the ingesters did not subscribe within 60 s; see {work}")
        # The simulators: nodes split over `workers` processes.
        chunks = [plan[i::args.workers] for i in range(args.workers)]
        offset = 0
        for w, chunk in enumerate(chunks):
            spec = {
                "nodes": chunk, "passwords": {n: broker.passwords[n] for n, _c in chunk}, "ports": broker.ports,
                "protocol": broker.protocol,
                "phases": [vars(p) for p in phases], "per_camera_s": per_camera_s, "seed": args.seed * 100 + w,
                "camera_offset": offset, "evidence_scale": args.evidence_scale, "clips": not args.no_clips,
                "out": str(work / f"sim-{w}.json"), "status_interval_s": args.status_interval_s,
            }
            offset += sum(c for _n, c in chunk)
            spec_file = work / f"sim-{w}.spec.json"
            spec_file.write_text(json.dumps(spec), encoding="utf-8")
            spec_file.chmod(0o600)
            sims.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_worker", str(spec_file)],
                                         cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         stderr=open(work / f"sim-{w}.log", "w")))  # noqa: SIM115
        connect_started = time.monotonic()
        ready = [json.loads(_readline(s, 120)) for s in sims]
        connect_s = time.monotonic() - connect_started
        held_at_start = sum(r["connected"] for r in ready)
        # Settle: every node's first status and health (sent on connect, all at once) stored
        # before the clock starts, so the first phase does not measure the connection storm.
        settle_started = time.monotonic()
        while time.monotonic() - settle_started < args.settle_s:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM camera_health")).scalar_one() >= cameras:
                    break
            time.sleep(0.5)
        settle_s = time.monotonic() - settle_started

        def pg_pids() -> list[int]:
            if args.db != "postgresql":
                return []
            with engine.connect() as conn:
                return [r[0] for r in conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))]

        meter = CpuMeter({"broker": broker.pids(), "ingesters": [p.pid for p in procs],
                          "simulators": [s.pid for s in sims]}, pg_pids)
        t0 = time.time() + 1.0
        for s in sims:
            assert s.stdin is not None
            s.stdin.write(f"go {t0}\n")
            s.stdin.flush()
        time.sleep(max(0.0, t0 - time.time()))
        boundaries = [t0]
        for phase in phases:
            boundaries.append(boundaries[-1] + phase.seconds)
        meter.sample()
        for b in boundaries[1:]:
            while time.time() < b:
                time.sleep(min(0.5, b - time.time()))
            meter.sample()
        for s in sims:
            json.loads(_readline(s, 120))  # scheduled_done
        schedule_end = time.time()
        # The simulators keep their connections (status, the last clip re-publishes, at most 30 s
        # more) until the count has not moved for 4 s, at least 8 s and at most 35 s after the
        # schedule; they know what they published only at the end.
        published_guess = 0
        last, stable_since = -1, time.monotonic()
        while time.time() - schedule_end < 35:
            with engine.connect() as conn:
                stored_now = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
            if stored_now != last:
                last, stable_since = stored_now, time.monotonic()
            time.sleep(1.0)
            if time.time() - schedule_end > 8 and time.monotonic() - stable_since > 4:
                break
        meter.sample()
        for s in sims:
            assert s.stdin is not None
            s.stdin.write("stop\n")
            s.stdin.flush()
        for s in sims:
            json.loads(_readline(s, 90))
            s.wait(30)
        outs = [json.loads((work / f"sim-{w}.json").read_text(encoding="utf-8")) for w in range(len(sims))]
        published = [e for o in outs for e in o["events"]]
        published_guess = len(published)
        # Let the last ones land: wait while the count still grows (a backlog being worked off),
        # at most --drain-s; what is not stored then is a backlog, not yet a verdict of loss.
        deadline = time.monotonic() + args.drain_s
        last, moved_at = -1, time.monotonic()
        drained = False
        while time.monotonic() < deadline and time.monotonic() - moved_at < 15:
            with engine.connect() as conn:
                now_count = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
            if now_count >= published_guess:
                drained = True
                break
            if now_count != last:
                last, moved_at = now_count, time.monotonic()
            time.sleep(0.5)
        drain_s = time.time() - schedule_end
        with engine.connect() as conn:
            rows = list(conn.execute(text(
                "SELECT e.id, e.ended_at, e.received_at, re.added_at FROM events e "
                "LEFT JOIN report_events re ON re.event_id = e.id")).all())
            n_rows, n_ids = conn.execute(text("SELECT count(*), count(DISTINCT id) FROM events")).one()
            linked_twice = conn.execute(text(
                "SELECT count(*) FROM (SELECT event_id FROM report_events GROUP BY event_id HAVING count(*) > 1) x"
            )).scalar_one()
            with_clip = conn.execute(text(
                "SELECT count(*) FROM events WHERE payload::text LIKE '%\"clip\"%'" if args.db == "postgresql"
                else "SELECT count(*) FROM events WHERE payload LIKE '%\"clip\"%'")).scalar_one()
            status_rows = conn.execute(text("SELECT count(*) FROM node_status")).scalar_one()
            health_rows = conn.execute(text("SELECT count(*) FROM camera_health")).scalar_one()
            dead = conn.execute(text("SELECT count(*) FROM dead_letters")).scalar_one()
            evidence_rows = conn.execute(text("SELECT count(*) FROM evidence")).scalar_one()
        result = summarise(args, phases, boundaries, plan, cameras, per_camera_s, outs, rows, meter, watcher,
                           ready, connect_s, held_at_start, drain_s, fd_limit, broker.name)
        result["settle_s"] = round(settle_s, 1)
        result.update({
            "stored_rows": n_rows, "stored_distinct": n_ids, "stored_twice": n_rows - n_ids + linked_twice,
            "republished_with_clip": with_clip, "node_status_rows": status_rows, "camera_health_rows": health_rows,
            "dead_letters": dead, "evidence_rows": evidence_rows, "drained": drained,
            "status_interval_s": args.status_interval_s,

            "redeliveries_ignored": sum(count_log(work / f"ingester-{k}.log", "event_duplicate") for k in range(args.ingesters)),
            "per_ingester_stored": [count_log(work / f"ingester-{k}.log", "event_stored") for k in range(args.ingesters)],
        })
    finally:
        for s in sims:
            if s.poll() is None:
                s.kill()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if result:  # their own counters, logged when they stop
            result["ingester_counters"] = [ingester_counters(work / f"ingester-{k}.log") for k in range(args.ingesters)]
        if watcher is not None:
            watcher.close()
        if broker is not None:
            broker.stop()
        engine.dispose()
        if admin and dbname:
            from tests.services import drop_database

            drop_database(admin, dbname)
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            result["work_dir"] = str(work)
    return result


def ingester_counters(path: Path) -> dict[str, int]:
    """The ingester's own counters from its last log line (`ingester_stopped`)."""
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if "ingester_stopped" in line:
            with contextlib.suppress(ValueError):
                d = json.loads(line)
                return {k: d[k] for k in ("received", "stored", "duplicates", "amended", "status_updates", "evidence_stored",
                                          "batches", "acked", "db_errors") if k in d}
    return {}


def count_log(path: Path, event: str) -> int:
    """Lines of one event in an ingester's log (JSON lines, or key=value text)."""
    text_ = path.read_text(errors="replace")
    return text_.count(f'"event": "{event}"') + text_.count(f"event={event} ")


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    t.start()
    t.join(timeout)
    if not out or not out[0]:
        raise SystemExit(f"a simulator did not answer within {timeout:.0f} s (exit code {proc.poll()})")
    return out[0]


def _utc(t: datetime | str) -> datetime:
    if isinstance(t, str):  # SQLite hands back text for a raw query
        t = datetime.fromisoformat(t)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def summarise(args: argparse.Namespace, phases: list[Phase], boundaries: list[float], plan: list, cameras: int,
              per_camera_s: float, outs: list[dict], rows: list, meter: CpuMeter, watcher: SysWatcher | None,
              ready: list[dict], connect_s: float, held_at_start: int, drain_s: float, fd_limit: int,
              broker_name: str) -> dict[str, Any]:
    published = {e[0]: e for o in outs for e in o["events"]}
    stored = {r[0]: r for r in rows}
    lost_ids = set(published) - set(stored)
    t0 = boundaries[0]
    table = []
    for i, p in enumerate(phases):
        lo, hi = boundaries[i], boundaries[i + 1]
        mine = [e for e in published.values() if e[3] == i]
        lat = []
        for e in mine:
            r = stored.get(e[0])
            if r is not None and r[3] is not None:
                lat.append((_utc(r[3]).timestamp() - e[2]) * 1000)
        stored_in = sum(1 for r in rows if r[3] is not None and lo <= _utc(r[3]).timestamp() < hi)
        msgs = sum(o["per_phase"][i]["messages"] for o in outs)
        mbytes = sum(o["per_phase"][i]["bytes"] for o in outs)
        lag = [x for o in outs for x in o["per_phase"][i]["lag"]]
        conn = sum(o["connected_min"][i] for o in outs)
        # $SYS is published when it changes: the value in force during the phase too.
        seen = watcher.values if watcher else []
        sys_vals = [v for t, v in seen if lo <= t < hi] or [v for t, v in seen if t < lo][-1:]
        cpu = meter.cores(i)
        table.append({
            "phase": p.name, "seconds": p.seconds, "x": p.x,
            "offered_events_per_s_planned": round(cameras * per_camera_s * p.x, 1),
            "offered_events_per_s": round(len(mine) / p.seconds, 1),
            "stored_events_per_s": round(stored_in / p.seconds, 1),
            "messages_per_s": round(msgs / p.seconds, 1), "mbytes_per_s": round(mbytes / p.seconds / 1e6, 2),
            "latency_ms": {q: (round(v, 1) if (v := pct(lat, x)) is not None else None)
                           for q, x in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
            "lost": sum(1 for e in mine if e[0] in lost_ids),
            "sim_lag_ms_p99": round(1000 * (pct(lag, 0.99) or 0.0), 1),
            "connections_held_min": conn,
            "broker_sys_connected": [min(sys_vals), max(sys_vals)] if sys_vals else None,
            "cpu_cores": {k: round(v, 2) for k, v in cpu.items()},
        })
    drain_cpu = meter.cores(len(phases)) if len(meter.samples) > len(phases) + 1 else {}
    puback = [x for o in outs for x in o["puback_ms"]]
    bottleneck = judge(table, args.ingesters)
    return {
        "nodes": len(plan), "cameras": cameras, "ingesters": args.ingesters, "workers": args.workers,
        "db": args.db, "broker": broker_name,
        "events_per_camera_day": args.events_per_camera_day, "evidence_scale": args.evidence_scale,
        "fd_limit": fd_limit,
        "connect_all_s": round(connect_s, 1), "connections_held_at_start": held_at_start,
        "connack_refused": sum(o["refused"] for o in outs),
        "refusals": _merge([o["refusals"] for o in outs]),
        "dropped": sum(o["dropped"] for o in outs), "drop_reasons": _merge([o["drop_reasons"] for o in outs]),
        "reconnected": sum(o["reconnected"] for o in outs),
        "puback_refused_or_unheard": sum(o["puback_refused"] for o in outs),
        "puback_codes": _merge([o["puback_codes"] for o in outs]), "resent": sum(o["resent"] for o in outs),
        "unacked_at_end": sum(o["unacked"] for o in outs),
        "published_events": len(published), "stored_events": len(set(published) & set(stored)),
        "lost": len(lost_ids),
        "unlinked": sum(1 for r in rows if r[3] is None),
        "puback_ms_p50_p99": [round(pct(puback, 0.5) or 0, 1), round(pct(puback, 0.99) or 0, 1)],
        "drain_s": round(drain_s, 1), "drain_cpu_cores": {k: round(v, 2) for k, v in drain_cpu.items()},
        "simulator_cpu_s": round(sum(o["cpu_s"] for o in outs), 1),
        "phases": table, "saturation": bottleneck, "t0": datetime.fromtimestamp(t0, UTC).isoformat(),
    }


def _merge(ds: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in ds:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def judge(table: list[dict[str, Any]], ingesters: int) -> dict[str, Any]:
    """The first phase that did not keep up (stored < 95% of offered, or p99 > 5 s), and who was busiest."""
    for row in table:
        p99 = row["latency_ms"]["p99"]
        behind = row["stored_events_per_s"] < 0.95 * row["offered_events_per_s"]
        if behind or row["lost"] or (p99 is not None and p99 > 5000):
            cpu = {k: v for k, v in row["cpu_cores"].items() if k != "box (all processes)"}
            per_process = dict(cpu)
            if ingesters:
                per_process["ingesters"] = cpu["ingesters"] / ingesters  # per ingester process
            busiest = max(per_process, key=lambda k: per_process[k])
            return {"saturated_at": row["phase"], "offered_events_per_s": row["offered_events_per_s"],
                    "stored_events_per_s": row["stored_events_per_s"], "p99_ms": p99,
                    "busiest_process": busiest, "its_cores": round(per_process[busiest], 2),
                    "box_cores": row["cpu_cores"]["box (all processes)"],
                    "simulator_lag_ms_p99": row["sim_lag_ms_p99"]}
    return {"saturated_at": None}


def print_table(r: dict[str, Any]) -> None:
    print(f"province_sim: {r['nodes']} nodes, {r['cameras']} cameras, {r['ingesters']} ingester(s), {r['db']}, "
          f"{r['workers']} simulator process(es); {r['events_per_camera_day']:g} events/camera/day steady; fd limit {r['fd_limit']}")
    print(f"connections: {r['connections_held_at_start']} of {r['nodes']} held after {r['connect_all_s']} s "
          f"(their first status + health stored {r.get('settle_s')} s later); "
          f"refused {r['connack_refused']} {r['refusals'] or ''}; dropped {r['dropped']} {r['drop_reasons'] or ''}; "
          f"reconnected {r['reconnected']}")
    cols = ["phase", "s", "held", "$SYS", "offered ev/s", "stored ev/s", "msg/s", "MB/s", "p50 ms", "p95 ms", "p99 ms",
            "max ms", "lost", "sim lag p99", "broker", "ingesters", "postgres", "sims", "box"]
    lines = [cols]
    for p in r["phases"]:
        c, lat = p["cpu_cores"], p["latency_ms"]
        lines.append([p["phase"], f"{p['seconds']:g}", str(p["connections_held_min"]),
                      "-" if not p["broker_sys_connected"] else f"{p['broker_sys_connected'][0]}",
                      f"{p['offered_events_per_s']:g}", f"{p['stored_events_per_s']:g}", f"{p['messages_per_s']:g}",
                      f"{p['mbytes_per_s']:g}", *(str(lat[q]) for q in ("p50", "p95", "p99", "max")), str(p["lost"]),
                      f"{p['sim_lag_ms_p99']:g}", f"{c['broker']:.2f}", f"{c['ingesters']:.2f}",
                      f"{c['postgresql']:.2f}", f"{c['simulators']:.2f}", f"{c['box (all processes)']:.2f}"])
    widths = [max(len(row[i]) for row in lines) for i in range(len(cols))]
    for k, row in enumerate(lines):
        print(" | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        if k == 0:
            print("-+-".join("-" * w for w in widths))
    print("(CPU columns: cores used during the phase; 'held': fewest connections the simulators held; "
          "'$SYS': the broker's own count, incl. ingesters)")
    if not r["drained"]:
        print(f"NOT DRAINED: {r['lost']} events still unstored {r['drain_s']} s after the schedule, the count no longer "
              "growing fast enough (a backlog in the broker/ingesters: the path is saturated; 'lost' below is that backlog)")
    print(f"events published {r['published_events']}, stored {r['stored_events']}, lost {r['lost']}, "
          f"stored twice {r['stored_twice']}, not linked to a report {r['unlinked']}, dead letters {r['dead_letters']}; "
          f"re-published with the clip {r['republished_with_clip']}; copies that changed nothing (the ingester's "
          f"event_duplicate) {r['redeliveries_ignored']}; "
          f"per ingester {r['per_ingester_stored']}")
    print(f"node status rows {r['node_status_rows']}, camera health rows {r['camera_health_rows']}, "
          f"evidence files {r['evidence_rows']}; PUBACK p50/p99 {r['puback_ms_p50_p99']} ms; "
          f"unacked at end {r['unacked_at_end']}; resent {r['resent']} (PUBACK refused/no subscriber: "
          f"{r['puback_codes'] or 0}); drained {r['drain_s']} s after the schedule")
    for k, c in enumerate(r.get("ingester_counters") or []):
        print(f"ingester {k}: " + ", ".join(f"{name} {v}" for name, v in c.items()))
    s = r["saturation"]
    if s["saturated_at"]:
        print(f"saturation: at {s['saturated_at']} ({s['offered_events_per_s']} offered, {s['stored_events_per_s']} stored/s, "
              f"p99 {s['p99_ms']} ms); busiest process: {s['busiest_process']} at {s['its_cores']} cores "
              f"(box {s['box_cores']} cores; simulator lag p99 {s['simulator_lag_ms_p99']} ms)")
    else:
        print("saturation: every phase kept up (stored >= 95% of offered, p99 <= 5 s, nothing lost)")


def probe(n: int = 1000) -> dict[str, Any]:
    """Cost per message of each ingest path, in this process (no broker, no simulator): one
    MessageProcessor on a fresh PostgreSQL database; new events and their re-publish with the clip
    in batches of 100 (as the worker batches them); node status and camera health, and MQTT
    evidence (a 105 kB snapshot), both one per transaction (`process`, a message alone) and in
    batches of 100 (`process_status`, `process_evidence`: what the worker does under load, where
    the processor has them)."""
    from central.db import make_engine, make_session_factory, migrate
    from central.ingester import MessageProcessor
    from tests.services import DEFAULT_POSTGRES_ADMIN_URL, create_database, drop_database

    admin = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
    name = f"province_probe_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    work = Path(tempfile.mkdtemp(prefix="province-probe-"))
    out: dict[str, Any] = {}
    try:
        migrate(url)
        engine = make_engine(url)
        proc = MessageProcessor(make_session_factory(engine), dialect_name="postgresql", evidence_dir=work, topic_prefix=PREFIX)
        nodes = [(f"sim-{i:05d}", 3) for i in range(100)]
        w = Worker({"seed": 1, "phases": [], "nodes": nodes, "camera_offset": 0, "passwords": {x: "-" for x, _ in nodes},
                    "evidence_scale": 0, "clips": True})
        first, again, status, evidence, evidence2 = [], [], [], [], []

        def status_set(node: Any, at: datetime) -> list[tuple[str, bytes]]:
            cams = {c: node.health(c, at) for c, _p in node.cameras}
            st = NodeStatus(node=node.id, state="online", at=at, uptime_s=1.0, outbox_backlog=0, published=0,
                            held_no_subscriber=0, cameras=cams)
            return [(node_status_topic(PREFIX, node.id), st.to_json().encode()),
                    *[(camera_health_topic(PREFIX, node.id, c), h.to_json().encode()) for c, h in cams.items()]]

        now = datetime.now(UTC)
        for k in range(n):
            node = w.nodes[k % len(w.nodes)]
            ci = w.rng.randrange(len(node.cameras))
            cam, prof = node.cameras[ci]
            vtype = w.rng.choice(prof.types)
            ev = w.make_event(node, ci, vtype, "point", None, [], pending=True)
            clip = EvidenceRef(kind="clip", media_type="video/mp4", sha256=secrets.token_hex(32), size=2_400_000)
            topic = event_topic(PREFIX, node.id, cam, vtype)
            first.append((topic, ev.to_json().encode(), now))
            again.append((topic, ev.model_copy(update={"evidence": [clip], "evidence_pending": []}).to_json().encode(), now))
            if k < len(w.nodes):
                status += status_set(node, now)
            if k < 200:
                for into in (evidence, evidence2):  # new files for each of the two ways
                    b = w.snapshot_bytes(SNAPSHOT_BYTES)
                    into.append((evidence_topic(PREFIX, node.id, cam, sha256(b).hexdigest()), b))

        def timed(label: str, count: int, fn: Any) -> None:
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            out[label] = {"messages": count, "ms_wall": round(1000 * wall / count, 2), "ms_cpu": round(1000 * cpu / count, 2),
                          "per_s_one_ingester": round(count / wall)}

        timed("new events (batches of 100)", n, lambda: [proc.process_events(first[i:i + 100]) for i in range(0, n, 100)])
        timed("clip re-publish, amend (batches of 100)", n,
              lambda: [proc.process_events(again[i:i + 100]) for i in range(0, n, 100)])
        timed("node status + camera health (1 per transaction)", len(status), lambda: [proc.process(t, b) for t, b in status])
        timed("MQTT evidence 105 kB (1 per transaction)", len(evidence), lambda: [proc.process(t, b) for t, b in evidence])
        if hasattr(proc, "process_status"):
            later = now + timedelta(seconds=10)  # the next status set: newer than the stored one, all written
            msgs = [(t, b, later) for node in w.nodes for t, b in status_set(node, later)]
            timed("node status + camera health (batches of 100)", len(msgs),
                  lambda: [proc.process_status(msgs[i:i + 100]) for i in range(0, len(msgs), 100)])
            ev = [(t, b, later) for t, b in evidence2]
            timed("MQTT evidence 105 kB (batches of 100)", len(ev),
                  lambda: [proc.process_evidence(ev[i:i + 100]) for i in range(0, len(ev), 100)])
        engine.dispose()
    finally:
        drop_database(admin, name)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        return worker_main(argv[1])
    if argv[:1] == ["probe"]:
        for label, v in probe().items():
            print(f"{label:>48}: {v['ms_wall']:6.2f} ms wall, {v['ms_cpu']:5.2f} ms CPU per message "
                  f"-> {v['per_s_one_ingester']}/s for one ingester ({v['messages']} messages)")
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2, help="simulator processes (nodes are split between them)")
    p.add_argument("--ingesters", type=int, default=2)
    p.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--broker", choices=["mosquitto", "rabbitmq"], default="mosquitto",
                   help="one Mosquitto (the single-box default) or a RabbitMQ cluster on this box")
    p.add_argument("--cluster-size", type=int, default=3, help="RabbitMQ nodes")
    p.add_argument("--steady-s", type=float, default=60)
    p.add_argument("--burst-s", type=float, default=30)
    p.add_argument("--burst-x", type=float, default=10)
    p.add_argument("--after-s", type=float, default=30)
    p.add_argument("--saturate", default="", metavar="X,Y,...",
                   help="instead of burst+after: steps at these multiples of the steady rate, --step-s each")
    p.add_argument("--step-s", type=float, default=20)
    p.add_argument("--events-per-camera-day", type=float, default=EVENTS_PER_CAMERA_DAY)
    p.add_argument("--evidence-scale", type=float, default=1.0,
                   help="snapshot sizes x this (0: events without MQTT evidence, 'light' messages only)")
    p.add_argument("--no-clips", action="store_true", help="do not re-publish events with their clip reference")
    p.add_argument("--drain-s", type=float, default=180,
                   help="at most this long after the schedule for the last events to be stored (while the count grows)")
    p.add_argument("--status-interval-s", type=float, default=STATUS_INTERVAL_S,
                   help="node status + every camera's health, per node (the edge's status_interval_s)")
    p.add_argument("--settle-s", type=float, default=120,
                   help="at most this long after connecting for every node's first status and health to be stored")
    p.add_argument("--seed", type=int, default=19)
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, configs)")
    p.add_argument("--json", action="store_true", help="the result as JSON on stdout (after the table)")
    args = p.parse_args(argv)
    r = run(args)
    print_table(r)
    if args.json:
        print(json.dumps(r))
    ok = (r["lost"] == 0 and r["stored_twice"] == 0 and r["unlinked"] == 0 and r["connack_refused"] == 0
          and r["dropped"] == 0 and r["published_events"] > 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
