import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.events import EvidenceRef, ModelRef, ViolationEvent, event_json_schema, merge_republished, new_event_id
from contract.topics import event_topic, ingest_subscriptions, parse_topic

REPO = Path(__file__).resolve().parents[2]


def sample(**over):
    now = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    base = dict(
        id=new_event_id(),
        node="node-1",
        camera="cam-1",
        type="illegal_stopping",
        category="traffic",
        started_at=now,
        ended_at=now + timedelta(seconds=12),
        confidence=0.8,
        model=ModelRef(name="yolo11n", version="abc123"),
    )
    base.update(over)
    return ViolationEvent(**base)


def test_round_trip_and_schema_field():
    e = sample()
    data = json.loads(e.to_json())
    assert data["schema"] == "ioc.event/1"
    assert ViolationEvent.from_json(e.to_json()) == e


@pytest.mark.parametrize(
    "patch",
    [
        {"schema": "ioc.event/2"},
        {"id": "not-a-uuid"},
        {"category": "sanitation"},
        {"started_at": "2026-01-01T08:00:00"},  # no time zone
        {"ended_at": "2025-01-01T00:00:00Z"},  # before start
        {"confidence": 1.5},
        {"node": "Node With Spaces"},
        {"unexpected": 1},
    ],
)
def test_invalid_events_are_rejected(patch):
    data = json.loads(sample().to_json())
    data.update(patch)
    with pytest.raises(ValidationError):
        ViolationEvent.model_validate(data)


def test_deterministic_ids_are_uuid7_and_stable():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    a, b = new_event_id(at, b"seed"), new_event_id(at, b"seed")
    assert a == b and a != new_event_id(at, b"other")
    assert a[14] == "7"
    assert new_event_id() != new_event_id()


def test_topics_round_trip():
    t = event_topic("ioc", "node-1", "cam-1", "illegal_stopping")
    p = parse_topic("ioc", t)
    assert (p.kind, p.node, p.camera, p.leaf) == ("event", "node-1", "cam-1", "illegal_stopping")
    assert parse_topic("ioc", "other/x/status") is None
    assert ingest_subscriptions("ioc", "central")[0] == "$share/central/ioc/+/+/events/+"


def test_cli_prints_json_schema():
    r = subprocess.run([sys.executable, "-m", "edge", "schema"], cwd=REPO, capture_output=True, text=True, check=True)
    schema = json.loads(r.stdout)
    assert schema == json.loads(json.dumps(event_json_schema()))
    assert "schema" in schema["properties"] and "evidence" in schema["properties"]


def _ref(kind: str, char: str) -> EvidenceRef:
    media = "video/mp4" if kind == "clip" else "image/jpeg"
    return EvidenceRef(kind=kind, media_type=media, sha256=char * 64, size=10)


def test_a_republished_event_merges_its_evidence_in_either_order():
    first = sample(evidence=[_ref("snapshot", "a")], evidence_pending=["clip"])
    later = first.model_copy(update={"evidence": [_ref("snapshot", "a"), _ref("clip", "b")], "evidence_pending": []})
    one, other = merge_republished(first, later), merge_republished(later, first)
    assert one == other == later
    assert merge_republished(first, first) == first  # a redelivery changes nothing
    # A clip that could not be written: the re-publish clears the pending mark with no clip.
    failed = first.model_copy(update={"evidence_pending": []})
    assert merge_republished(first, failed).evidence_pending == []
    assert merge_republished(first, failed).evidence == first.evidence
    # A union over the contract's evidence limit is not a re-publish the edge could have sent.
    crops = [EvidenceRef(kind="crop", media_type="image/jpeg", sha256=f"{i:064x}", size=10) for i in range(31)]
    full = first.model_copy(update={"evidence": [_ref("snapshot", "a"), *crops]})
    more = first.model_copy(update={"evidence": [_ref("clip", "b")]})
    assert merge_republished(full, more) is None


@pytest.mark.parametrize(
    "change", [{"confidence": 0.1}, {"camera": "cam-2"}, {"details": {"x": 1}}, {"ended_at": datetime(2027, 1, 1, tzinfo=UTC)}]
)
def test_a_republish_may_add_evidence_and_nothing_else(change):
    first = sample(evidence=[_ref("snapshot", "a")], evidence_pending=["clip"])
    assert merge_republished(first, first.model_copy(update=change)) is None


def test_evidence_pending_names_only_known_kinds():
    with pytest.raises(ValidationError):
        sample(evidence_pending=["audio"])
