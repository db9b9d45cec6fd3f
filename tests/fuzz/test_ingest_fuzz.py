"""10,000 malformed event payloads, interleaved with valid events, through the real broker and the
real ingester: nothing crashes, every malformed one is dead-lettered with a reason, every valid one
is stored."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from central.config import CentralConfig
from central.db import DeadLetterRow, EventRow, make_engine, migrate
from central.ingester import Ingester
from contract.topics import event_topic
from tests.fuzz.mutations import malformed_payloads
from tests.services import make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

N_MALFORMED = 10_000
VALID_EVERY = 20  # one valid event after every 20 malformed ones


def _publish_all(url_host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("fuzz-"), protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(url_host, port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def test_ten_thousand_malformed_payloads(mqtt_broker: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(db)
    prefix = unique_name("fz")
    cfg = CentralConfig.model_validate(
        {"database_url": db, "mqtt": {"url": mqtt_broker.url, "topic_prefix": prefix, "share_group": unique_name("g")},
         "evidence_dir": str(tmp_path / "evidence")}
    )
    node, camera = "node-fz", "cam-fz"
    topic = event_topic(prefix, node, camera, "illegal_stopping")

    def valid():
        return make_event(node=node, camera=camera, evidence=[])

    messages: list[tuple[str, bytes]] = []
    kinds: Counter[str] = Counter()
    valid_ids: list[str] = []
    for i, (kind, payload) in enumerate(malformed_payloads(valid, N_MALFORMED, seed=20261122)):
        messages.append((topic, payload))
        kinds[kind] += 1
        if i % VALID_EVERY == 0:
            e = valid()
            valid_ids.append(e.id)
            messages.append((topic, e.to_json().encode()))

    with Ingester(cfg, console=io.StringIO()) as ing:
        assert ing.wait_subscribed(10)
        _publish_all(mqtt_broker.host, mqtt_broker.port, messages)
        wait_until(lambda: ing.counters.received >= len(messages), 400, what="ingester received everything")
        wait_until(lambda: ing.idle(), 120, what="ingester drained its queue")
        counters = ing.counters.snapshot()

    assert counters["stored"] == len(valid_ids)
    assert counters["dead_letters"] == N_MALFORMED
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(select(EventRow.id)).scalars())
            reasons = list(conn.execute(select(DeadLetterRow.reason)).scalars())
            assert conn.execute(select(func.count()).select_from(DeadLetterRow)).scalar_one() == N_MALFORMED
    finally:
        engine.dispose()
    assert stored == set(valid_ids), "a valid event interleaved with malformed ones was lost"
    assert all(r and r.strip() for r in reasons), "every dead letter says why"
    # Every kind of malformation was exercised.
    assert len(kinds) >= 10 and min(kinds.values()) >= 800, kinds
    # The reasons are specific (they name the field and the problem), not one catch-all.
    assert len({":".join(r.split(":")[:2]) for r in reasons}) >= 10
    print(json.dumps({"malformed": N_MALFORMED, "valid": len(valid_ids), "by_kind": kinds}, default=dict))
