"""Police alerts: an outbox table written in the same transaction as the status change, and a
dispatcher that sends each alert to MQTT (`<prefix>/alerts/<area, legacy district or ward>/<type>`,
QoS 1; central.workflow.alert_scope) and to the
configured webhooks (HMAC-SHA256 signed). The console's police view reads the same table live.

Why an outbox: the confirmation (web process) and the MQTT connection (ingester process) may live
in different processes, and an alert must not be lost when the broker or a webhook is down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from central.auth import share_secret
from central.config import CentralConfig, Webhook
from central.db import AlertRow, EventRow, ReportRow, make_session_factory, session_scope, utcnow
from central.logs import kv
from central.reports import DEFAULT_TZ, evidence_url, format_local
from central.workflow import alert_scope, record
from contract.events import ViolationEvent
from contract.mqtt import MqttClient
from contract.topics import police_alert_topic

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-IOC-Signature"
REFUSED_RETRY_MIN_S, REFUSED_RETRY_MAX_S = 1.0, 60.0
TIMESTAMP_HEADER = "X-IOC-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>"): the receiver recomputes it and
    rejects old timestamps, so a captured request cannot be replayed later."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300) -> bool:
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        return False
    return age <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def _local_text(ts: datetime | None, tz: str) -> dict[str, str] | None:
    if ts is None:
        return None
    zone = ZoneInfo(tz)
    return {"vi": format_local(ts, zone, "vi"), "en": format_local(ts, zone, "en")}


def alert_payload(
    report: ReportRow, best: ViolationEvent | None, base_url: str, secret: bytes | None = None, tz: str = DEFAULT_TZ
) -> dict[str, Any]:
    evidence = best.evidence if best else []
    snap = next((e for e in evidence if e.kind == "snapshot"), None)
    # The crossing composite (three moments, plate zoomed) shows the act; it leads where there is one.
    composite = next((e for e in evidence if e.kind == "composite"), None)
    plate = next((e for e in evidence if e.kind == "plate"), None)
    return {
        "report_id": report.id,
        "type": report.type,
        "title": {"vi": report.title_vi, "en": report.title_en},
        "status": report.status,
        "priority": report.priority,
        "plate": report.plate,
        "plate_confidence": report.plate_confidence if report.plate else None,
        "plate_unreadable": report.plate is None and bool(report.plate_tried),
        "place": {
            "camera": report.camera,
            "province": report.province,
            "ward": report.ward,
            "area": report.area,
            "district": report.district,
            "address": report.address,
            "lat": report.lat,
            "lon": report.lon,
        },
        "first_seen": report.first_seen.isoformat() if report.first_seen else None,
        "last_seen": report.last_seen.isoformat() if report.last_seen else None,
        # What a person reads (police view, a webhook that posts to a chat): local time, in words.
        "first_seen_text": _local_text(report.first_seen, tz),
        "composite_url": evidence_url(base_url, composite.sha256, secret) if composite else None,
        "snapshot_url": evidence_url(base_url, snap.sha256, secret) if snap else None,
        "plate_url": evidence_url(base_url, plate.sha256, secret) if plate else None,
        "agency": report.agency_code,
        "report_url": f"{base_url.rstrip('/')}/reports/{report.id}",
        "at": utcnow().isoformat(),
    }


def queue_alert(session: Session, report: ReportRow, config: CentralConfig, *, actor: str = "system") -> bool:
    """Put a police alert for a traffic report in the outbox (once per report)."""
    if not config.alerts.enabled or report.category != "traffic" or report.alerted_at is not None:
        return False
    payload_json = session.scalar(select(EventRow.payload).where(EventRow.id == report.best_event_id))
    best = ViolationEvent.model_validate(payload_json) if payload_json else None
    now = utcnow()
    session.add(
        AlertRow(
            report_id=report.id,
            district=report.district,
            ward=report.ward,
            area=report.area,
            topic_district=alert_scope(report.area, report.ward, report.district),
            type=report.type,
            payload=alert_payload(
                report, best, config.web.base_url, share_secret(session, config.auth.share_link_secret),
                tz=config.time_zone,
            ),
            created_at=now,
        )
    )
    report.alerted_at = now
    record(session, report, actor=actor, action="alert_queued", note=report.area or report.ward or report.district, at=now)
    return True


def _webhooks_for(config: CentralConfig, alert: AlertRow) -> list[Webhook]:
    """The webhooks that take this alert: an unscoped one takes all; a scoped one (wards, areas, or
    legacy districts) those of its places."""

    def takes(w: Webhook) -> bool:
        if w.districts is None and w.wards is None and w.areas is None:
            return True
        return (
            (alert.district in (w.districts or ()))
            or (alert.ward in (w.wards or ()))
            or (alert.area in (w.areas or ()))
        )

    return [w for w in config.alerts.webhooks if takes(w)]


def post_webhook(hook: Webhook, body: bytes, now: float | None = None) -> None:
    """POST one signed alert; raises OSError/HTTPError on failure."""
    ts = str(int(now if now is not None else time.time()))
    req = urllib.request.Request(
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(hook.secret, ts, body),
        },
    )
    with urllib.request.urlopen(req, timeout=hook.timeout_s) as r:
        r.read()


class AlertDispatcher:
    """Sends queued alerts (MQTT + webhooks) from a thread; `start()`/`stop()`."""

    def __init__(self, config: CentralConfig, engine: Engine) -> None:
        self.config = config
        self.sessions = make_session_factory(engine)
        self.prefix = config.mqtt.topic_prefix
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.mqtt_refused = 0  # PUBACKs with a failure code (e.g. not authorized): the alert stays pending
        # alert id -> (when to publish it again, backoff) after the broker refused it: an ACL is
        # fixed by a person, so the attempts (`alerts.max_attempts`) are spread over minutes.
        self._refused_retry: dict[int, tuple[float, float]] = {}
        self._mqtt = MqttClient(
            config.mqtt.client_settings(f"{config.mqtt.effective_client_id}-alerts"),
            on_connect=self._on_connect,
        )
        self._client = self._mqtt.client
        self._connected = self._mqtt.connected

    def _on_connect(self, _c: Any, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error(kv("alert_mqtt_connect_refused", reason=str(reason), url=self.config.mqtt.url))

    def start(self) -> AlertDispatcher:
        self._mqtt.start()
        self._thread = threading.Thread(target=self._run, name="central-alerts", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._mqtt.stop()

    def _run(self) -> None:
        from central.services.review import release_due  # the review service queues alerts: imported late

        while not self._stop.wait(self.config.alerts.poll_interval_s):
            try:
                # Confirmations whose undo window is over are forwarded and alerted first, from
                # the database (`reports.forward_after`), so a restart of either process loses none.
                release_due(self.sessions, self.config)
                self.dispatch_once()
            except Exception:  # a broken row or a database hiccup must not end the thread
                log.exception(kv("alert_dispatch_failed"))

    def _pending(self) -> list[AlertRow]:
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(AlertRow)
                    .where(
                        or_(AlertRow.mqtt_sent_at.is_(None), AlertRow.webhooks_done_at.is_(None)),
                        AlertRow.attempts < self.config.alerts.max_attempts,
                    )
                    .order_by(AlertRow.id)
                    .limit(50)
                )
            )

    def dispatch_once(self) -> int:
        done = 0
        now = time.monotonic()
        for alert in self._pending():
            body = json.dumps(alert.payload, ensure_ascii=False).encode()
            mqtt_at: datetime | None = alert.mqtt_sent_at
            hooks_at: datetime | None = alert.webhooks_done_at
            error = None
            refused_wait = mqtt_at is None and self._refused_retry.get(alert.id, (0.0, 0.0))[0] > now
            if refused_wait and hooks_at is not None:
                continue  # refused by the broker a moment ago: its backoff has not run out
            if refused_wait:
                error = alert.last_error  # still refused; only the webhooks are tried this time
            elif mqtt_at is None and self._connected.is_set():
                topic = police_alert_topic(self.prefix, alert.topic_district, alert.type)
                ack = self._mqtt.publish_wait(topic, body, qos=1, timeout=5)
                if ack is None:
                    error = "mqtt publish not acknowledged"
                elif not ack.ok:
                    # The broker refused it (e.g. its ACL does not let central write alerts): not
                    # sent, so it stays pending and is tried again on a later poll.
                    self.mqtt_refused += 1
                    last = self._refused_retry.get(alert.id)
                    delay = min(REFUSED_RETRY_MAX_S, last[1] * 2) if last else REFUSED_RETRY_MIN_S
                    self._refused_retry[alert.id] = (time.monotonic() + delay, delay)
                    error = f"mqtt publish refused by the broker: {ack.reason} (retry in {delay:.0f} s)"
                else:
                    self._refused_retry.pop(alert.id, None)
                    mqtt_at = utcnow()
            elif mqtt_at is None:
                error = "mqtt not connected"
            if hooks_at is None:
                try:
                    for hook in _webhooks_for(self.config, alert):
                        post_webhook(hook, body)
                    hooks_at = utcnow()
                except (OSError, urllib.error.HTTPError) as e:
                    error = f"webhook: {e}"
            with session_scope(self.sessions) as s:
                s.execute(
                    update(AlertRow)
                    .where(AlertRow.id == alert.id)
                    .values(
                        mqtt_sent_at=mqtt_at,
                        webhooks_done_at=hooks_at,
                        attempts=AlertRow.attempts + (1 if error else 0),
                        last_error=error,
                    )
                )
            if error:
                log.warning(kv("alert_not_sent", alert_id=alert.id, report=alert.report_id, error=error))
            else:
                done += 1
                self.sent += 1
                log.info(kv("alert_sent", alert_id=alert.id, report=alert.report_id, district=alert.topic_district))
        return done
