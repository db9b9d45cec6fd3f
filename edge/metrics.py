"""The edge node's Prometheus endpoint: `/metrics`, read at scrape time from the node's typed status.

Off unless the node config has `metrics:` (`port`, default 9108; `bind`, default 127.0.0.1: only
this box, put a proxy or a firewall rule in front to expose it). Everything comes from
`EdgeNode.status()` (the same values as the status topic, `contract.status`) and the inference
pool's stats, so the two never disagree and nothing is counted twice.

- per camera (label `camera`): `ioc_edge_camera_analysis_fps` and `_analysis_fps_target`,
  `_lag_seconds{quantile="0.5"}` and `_lag_max_seconds`, `_frames_decoded_total`,
  `_frames_analysed_total`, `_frames_dropped_total` (analysis slots missed), `_frames_gated_total`,
  `_reconnects_total`, `_restarts_total`, `_events_total`, `_overloaded`, `_state{state}`,
  `_last_frame_age_seconds`;
- inference: `ioc_edge_inference_requests_total`, `_runs_total`, `_busy_seconds_total`,
  `_ms_per_frame` (mean ORT time per frame), `_wait_ms` (mean queue wait per frame);
- delivery: `ioc_edge_outbox_backlog`, `_outbox_oldest_seconds`, `ioc_edge_published_total`
  (acknowledged by the broker), `ioc_edge_held_no_subscriber_total`, `ioc_edge_mqtt_connected`,
  `ioc_edge_puback_timeouts_total` (connections dropped for a PUBACK that did not come in time),
  `ioc_edge_upload_backlog_files`/`_bytes`, `ioc_edge_uploads_total`, `_upload_failures_total`;
- evidence worker: `ioc_edge_evidence_queue_depth`, `_queue_frames`, `_snapshots_dropped_total`,
  `_submitted_total`, `_retries_total`, `_clips_waiting`, `_lost_total`;
- `ioc_edge_disk_full`, `ioc_edge_uptime_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contract.status import CameraHealth, NodeStatus

if TYPE_CHECKING:
    from edge.node import EdgeNode

_STATES = ("starting", "streaming", "stalled", "reconnecting", "ended", "failed", "restarting")

# (metric, help, CameraHealth field, counter?)
_CAMERA = (
    ("analysis_fps", "Analysed frames per second over the last 10 s", "analysis_fps", False),
    ("analysis_fps_target", "The camera's configured analysis rate", "analysis_fps_target", False),
    ("frames_decoded", "Frames out of the decoder", "frames_decoded", True),
    ("frames_analysed", "Frames analysed", "analysed_frames", True),
    ("frames_dropped", "Analysis slots no frame filled (overload or a gap in the stream)", "slots_missed", True),
    ("frames_gated", "Analysed frames whose detections were carried over (no motion)", "frames_gated", True),
    ("reconnects", "Reconnect attempts of the camera's source", "reconnects", True),
    ("restarts", "Restarts of the camera worker after a crash", "restarts", True),
    ("events", "Events the camera produced", "events", True),
    ("overloaded", "1 while analysing below 95% of the target or lagging > 1 s", "overloaded", False),
)


class EdgeCollector(Collector):
    def __init__(self, node: EdgeNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        status = self.node.status()
        yield from self._cameras(list(status.cameras.values()))
        yield from self._node(status)
        yield from self._inference()

    @staticmethod
    def _family(
        name: str, doc: str, counter: bool, labels: list[str] | None = None
    ) -> CounterMetricFamily | GaugeMetricFamily:
        cls = CounterMetricFamily if counter else GaugeMetricFamily
        return cls(f"ioc_edge_{name}", doc, labels=labels or [])

    def _cameras(self, cameras: list[CameraHealth]) -> Iterator[Metric]:
        for name, doc, field, counter in _CAMERA:
            fam = self._family(f"camera_{name}", doc, counter, ["camera"])
            for h in cameras:
                value = getattr(h, field)
                if value is not None:
                    fam.add_metric([h.camera], float(value))
            yield fam
        lag = GaugeMetricFamily("ioc_edge_camera_lag_seconds", "Lag of analysis behind the camera (median, last 10 s)",
                                labels=["camera", "quantile"])
        lag_max = GaugeMetricFamily("ioc_edge_camera_lag_max_seconds", "Largest lag of analysis, last 10 s",
                                    labels=["camera"])
        state = GaugeMetricFamily("ioc_edge_camera_state", "1 for the camera's current state", labels=["camera", "state"])
        age = GaugeMetricFamily("ioc_edge_camera_last_frame_age_seconds", "Seconds since the last decoded frame",
                                labels=["camera"])
        now = time.time()
        for h in cameras:
            if h.lag_ms_p50 is not None:
                lag.add_metric([h.camera, "0.5"], h.lag_ms_p50 / 1000)
            if h.lag_ms_max is not None:
                lag_max.add_metric([h.camera], h.lag_ms_max / 1000)
            for s in _STATES:
                state.add_metric([h.camera, s], 1.0 if h.state == s else 0.0)
            if h.last_frame_at is not None:
                age.add_metric([h.camera], max(0.0, now - h.last_frame_at.timestamp()))
        yield from (lag, lag_max, state, age)

    def _node(self, status: NodeStatus) -> Iterator[Metric]:
        values: list[tuple[str, str, bool, object]] = [
            ("uptime_seconds", "Seconds since the node started", False, status.uptime_s),
            ("outbox_backlog", "MQTT messages on disk not yet acknowledged by the broker", False, status.outbox_backlog),
            ("outbox_oldest_seconds", "Age of the oldest of them (0: none)", False, status.outbox_oldest_s or 0.0),
            ("published", "Outbox messages the broker acknowledged", True, status.published),
            ("held_no_subscriber", "PUBACKs with 'no matching subscribers' (kept, sent again)", True,
             status.held_no_subscriber),
            ("mqtt_connected", "1 while connected to the broker", False, self.node.publisher.connected.is_set()),
            ("puback_timeouts", "Broker connections dropped for a PUBACK that did not come in time (next URL tried)",
             True, status.puback_timeouts),
            ("disk_full", "1 when undelivered evidence fills the quota or the disk", False, status.disk_full),
        ]
        ev = status.evidence or {}
        values += [
            ("evidence_queue_depth", "Evidence jobs waiting (events, clip flushes)", False, ev.get("queued")),
            ("evidence_queue_frames", "Frames held by waiting evidence jobs", False, ev.get("queued_frames")),
            ("evidence_snapshots_dropped", "Events sent without snapshots: the evidence queue was full", True,
             ev.get("snapshots_dropped")),
            ("evidence_submitted", "Records written to the outbox (events and their clip copies)", True,
             ev.get("submitted")),
            ("evidence_retries", "Evidence/outbox writes that failed and were retried", True, ev.get("retries")),
            ("evidence_clips_waiting", "Events waiting for their clip's post-event footage", False,
             ev.get("clips_waiting")),
            ("evidence_lost", "Evidence jobs abandoned at shutdown", True, ev.get("lost")),
        ]
        up = status.uploads
        if up is not None:
            values += [
                ("upload_backlog_files", "Clips waiting for upload", False, up.get("backlog_files")),
                ("upload_backlog_bytes", "Bytes waiting for upload", False, up.get("backlog_bytes")),
                ("uploads", "Clips central acknowledged", True, up.get("uploaded")),
                ("upload_failures", "Upload attempts that failed (retried)", True, up.get("failures")),
            ]
        for name, doc, counter, value in values:
            if isinstance(value, int | float):
                fam = self._family(name, doc, counter)
                fam.add_metric([], float(value))
                yield fam

    def _inference(self) -> Iterator[Metric]:
        s = self.node.inference.stats.snapshot()
        requests = s.get("requests", 0) or 0
        for name, doc, key in (("requests", "Frames the inference pool ran", "requests"),
                               ("runs", "Model runs (a batch is one run)", "runs"),
                               ("busy_seconds", "Worker time inside the model", "busy_s")):
            fam = CounterMetricFamily(f"ioc_edge_inference_{name}", doc)
            fam.add_metric([], float(s.get(key, 0) or 0))
            yield fam
        per_frame = GaugeMetricFamily("ioc_edge_inference_ms_per_frame", "Mean model time per frame since start (ms)")
        per_frame.add_metric([], 1000.0 * float(s.get("busy_s", 0) or 0) / requests if requests else 0.0)
        yield per_frame
        wait = GaugeMetricFamily("ioc_edge_inference_wait_ms", "Mean wait of a frame for a model session (ms)")
        wait.add_metric([], float(s.get("mean_wait_ms", 0) or 0))
        yield wait


class MetricsServer:
    """The HTTP server of /metrics (a daemon thread); `port` is the one it listens on."""

    def __init__(self, server: WSGIServer) -> None:
        self._server = server
        self.port: int = server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(node: EdgeNode, bind: str = "127.0.0.1", port: int = 9108) -> MetricsServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EdgeCollector(node))
    server, _thread = start_http_server(port, addr=bind, registry=registry)
    return MetricsServer(server)
