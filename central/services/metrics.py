"""Central's Prometheus metrics, read at scrape time (nothing is kept in memory but the ingester's
own counters).

- `ioc_central_ingest_*_total`: what this process's ingester did since it started (stored,
  duplicates, amended, dead letters by reason class, batches, ...). Only where the ingester runs
  in the same process as the web console (`python -m central run`).
- `ioc_central_*` from the database, whichever process serves them: reports by status and type,
  review actions (the audit trail), alerts by delivery state, dead letters by reason class.
- `ioc_node_*` / `ioc_camera_*`: gauges from each node's latest status and each camera's latest
  health (`central.services.health`), labelled by node and camera.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from central import queries, report_counts
from central.config import CentralConfig
from central.services.dashboard import rejection_rates

# Dead-letter reasons start with what went wrong; the rest quotes the message (unbounded labels).
DEAD_LETTER_CLASSES: tuple[tuple[str, str], ...] = (
    ("not UTF-8/JSON", "not_json"),
    ("invalid event", "invalid_event"),
    ("topic/payload", "topic_mismatch"),
    ("unknown topic", "unknown_topic"),
    ("evidence ", "invalid_evidence"),
    ("event id already stored with other content", "id_conflict"),
    ("database rejected", "database_rejected"),
    ("internal error", "internal_error"),
)


def dead_letter_class(reason: str | None) -> str:
    """A dead letter's reason as one of a few label values (`DEAD_LETTER_CLASSES`, else "other")."""
    for prefix, name in DEAD_LETTER_CLASSES:
        if (reason or "").startswith(prefix):
            return name
    return "other"


_INGEST_COUNTERS = (
    ("received", "MQTT messages received"),
    ("stored", "events stored (new)"),
    ("duplicates", "event messages already stored (redelivery, a second ingester)"),
    ("amended", "stored events that gained evidence (the re-publish with the clip)"),
    ("evidence_stored", "evidence files stored from MQTT"),
    ("evidence_duplicates", "evidence files already stored"),
    ("evidence_held", "evidence files stored before any event referred to them (the holding area)"),
    ("evidence_store_failures", "evidence files the evidence store could not write (disk full, read-only)"),
    ("clock_suspect", "events stored with a time outside the clock window around their arrival"),
    ("status_updates", "node status and camera health messages"),
    ("status_invalid", "status messages that broke the typed contract (stored, logged)"),
    ("status_stale", "status/health messages older (by their own time) than the stored one: acked, not written"),
    ("db_errors", "database errors (the message was retried)"),
    ("acked", "messages acknowledged to the broker after commit"),
    ("batches", "event transactions (batches of event messages)"),
    ("status_batches", "status/health transactions (batches of status and health messages)"),
    ("evidence_batches", "MQTT evidence transactions (batches of evidence messages)"),
)


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


class CentralCollector(Collector):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: CentralConfig,
        ingester: Any | None = None,
        event_source: Any | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.ingester = ingester
        self.event_source = event_source

    def collect(self) -> Iterator[Metric]:
        if self.ingester is not None:
            yield from self._ingest()
        with self.sessions() as s:
            yield from self._database(s)
            from central.services.health import configured_health

            yield from self._health(configured_health(s, self.config))

    def _ingest(self) -> Iterator[Metric]:
        counters = self.ingester.counters  # type: ignore[union-attr]
        snap = counters.snapshot()
        for name, doc in _INGEST_COUNTERS:
            if name in snap:
                c = CounterMetricFamily(f"ioc_central_ingest_{name}", f"Ingester (this process): {doc}")
                c.add_metric([], snap[name])
                yield c
        dead = CounterMetricFamily(
            "ioc_central_ingest_dead_letters", "Ingester (this process): messages dead-lettered", labels=["reason"]
        )
        classes = counters.dead_letter_classes()
        for cls in sorted({name for _p, name in DEAD_LETTER_CLASSES} | {"other"} | set(classes)):
            dead.add_metric([cls], classes.get(cls, 0))
        yield dead
        failing = GaugeMetricFamily(
            "ioc_central_ingest_evidence_store_failing", "1 while the last write to the evidence store failed"
        )
        failing.add_metric([], snap.get("evidence_store_failing", 0))
        yield failing
        up = GaugeMetricFamily("ioc_central_ingest_mqtt_connected", "1 while the ingester is connected to the broker")
        up.add_metric([], 1.0 if self.ingester.connected.is_set() else 0.0)  # type: ignore[union-attr]
        yield up
        if self.event_source is not None:
            src = GaugeMetricFamily(
                "ioc_central_event_source_consuming",
                "1 while this process consumes events from the broker cluster's queue or stream",
                labels=["engine"],
            )
            src.add_metric([self.event_source.engine_name], 1.0 if self.event_source.consuming() else 0.0)
            yield src

    def _database(self, s: Session) -> Iterator[Metric]:
        reports = GaugeMetricFamily("ioc_central_reports", "Field reports by status and type", labels=["status", "type"])
        report_counts.fold(s.get_bind())  # type: ignore[arg-type]
        for status, vtype, n in report_counts.grouped(s, ("status", "type")):
            reports.add_metric([status, vtype], n)
        yield reports
        # The field measure of false events: of the reports operators decided, the share rejected.
        for name, label, column in (
            ("ioc_central_rejection_rate", "type", "type"),
            ("ioc_central_rejection_rate_by_camera", "camera", "camera"),
        ):
            rate = GaugeMetricFamily(name, f"Rejected / decided reports per {label} (operators' verdicts)", labels=[label])
            for r in rejection_rates(s, column):
                rate.add_metric([str(r["key"])], r["rate"])
            yield rate
        actions = CounterMetricFamily(
            "ioc_central_review_actions",
            "Review actions in the audit trail (confirm, reject, forward, resolve, reopen, publish, alert_queued)",
            labels=["action", "by"],
        )
        for action, by, n in queries.review_action_counts(s):
            actions.add_metric([action, by], n)
        yield actions
        alerts = queries.alert_counts(s, self.config.alerts.max_attempts)
        queued = CounterMetricFamily("ioc_central_alerts_queued", "Police alerts put in the outbox")
        queued.add_metric([], alerts["queued"])
        yield queued
        state = GaugeMetricFamily(
            "ioc_central_alerts", "Police alerts by delivery state (sent, pending, failed: gave up)", labels=["state"]
        )
        for key in ("sent", "pending", "failed"):
            state.add_metric([key], alerts[key])
        yield state
        dead = GaugeMetricFamily(
            "ioc_central_dead_letters", "Dead letters in the database by reason class", labels=["reason"]
        )
        by_class: dict[str, int] = {}
        for head, n in queries.dead_letter_reason_heads(s):
            cls = dead_letter_class(head)
            by_class[cls] = by_class.get(cls, 0) + n
        for cls in sorted(by_class):
            dead.add_metric([cls], by_class[cls])
        yield dead
        events = GaugeMetricFamily("ioc_central_events", "Events stored in the database")
        events.add_metric([], queries.event_count(s))
        yield events

    def _health(self, data: dict[str, Any]) -> Iterator[Metric]:
        nodes = [([n["node"]], {**n, "up": n["online"]}) for n in data["nodes"]]
        yield from _gauges(NODE_GAUGES, ["node"], nodes)
        cameras = [([c["node"], c["camera"]], {**c, "streaming": c["state"] == "streaming"}) for c in data["cameras"]]
        yield from _gauges(CAMERA_GAUGES, ["node", "camera"], cameras)


# (value key in the health view, metric name, help, scale)
NODE_GAUGES: tuple[tuple[str, str, str, float], ...] = (
    ("up", "ioc_node_up", "1 when the node says online and was heard within 2 minutes", 1),
    ("age_s", "ioc_node_status_age_seconds", "Seconds since the node's last status", 1),
    ("uptime_s", "ioc_node_uptime_seconds", "The node's uptime", 1),
    ("outbox_backlog", "ioc_node_outbox_backlog", "MQTT messages on the node's disk not yet acknowledged", 1),
    ("outbox_oldest_s", "ioc_node_outbox_oldest_seconds", "Age of the oldest of them", 1),
    ("disk_full", "ioc_node_disk_full", "1 when the node's evidence disk is full", 1),
)
CAMERA_GAUGES: tuple[tuple[str, str, str, float], ...] = (
    ("analysis_fps", "ioc_camera_analysis_fps", "Analysed frames per second (last 10 s)", 1),
    ("analysis_fps_target", "ioc_camera_analysis_fps_target", "The camera's configured analysis rate", 1),
    ("lag_ms_p50", "ioc_camera_lag_p50_seconds", "Median lag of analysis behind the camera", 1e-3),
    ("lag_ms_max", "ioc_camera_lag_max_seconds", "Largest lag of analysis behind the camera", 1e-3),
    ("overloaded", "ioc_camera_overloaded", "1 when analysing below 95% of the target or lagging > 1 s", 1),
    ("reconnects", "ioc_camera_reconnects", "Reconnects of the camera's source since its worker started", 1),
    ("restarts", "ioc_camera_restarts", "Restarts of the camera's worker after a crash", 1),
    ("camera_moved", "ioc_camera_moved", "1 when the view no longer matches the scene's reference", 1),
    ("last_frame_age_s", "ioc_camera_last_frame_age_seconds", "Seconds since the camera's last decoded frame", 1),
    ("streaming", "ioc_camera_streaming", "1 while the camera's state is streaming", 1),
)


def _gauges(
    specs: tuple[tuple[str, str, str, float], ...], labels: list[str], rows: list[tuple[list[str], dict[str, Any]]]
) -> Iterator[Metric]:
    """One gauge family per spec, one sample per row that has a number for it."""
    for key, name, doc, scale in specs:
        family = GaugeMetricFamily(name, doc, labels=labels)
        for label_values, values in rows:
            v = _num(values.get(key))
            if v is not None:
                family.add_metric(label_values, v * scale)
        yield family


def registry(
    sessions: sessionmaker[Session], config: CentralConfig, ingester: Any | None = None, event_source: Any | None = None
) -> CollectorRegistry:
    """A registry of its own per app (not the process-global one): two apps in one process (the
    tests) never mix their values."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(CentralCollector(sessions, config, ingester, event_source))
    return reg
