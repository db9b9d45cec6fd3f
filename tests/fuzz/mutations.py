"""A seeded fuzzer for MQTT event payloads: malformed variants of valid contract-v1 events.

Each variant is malformed on purpose (so the expected outcome is known: a dead letter), and the
kinds cover what a broken or hostile node can send: wrong types, missing fields, huge strings,
invalid UTF-8, wrong schema version, bogus evidence hashes, topic/payload mismatches.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from contract.events import ViolationEvent

Mutation = Callable[[dict[str, Any], random.Random], bytes]

_REQUIRED = ["schema", "id", "node", "camera", "type", "category", "started_at", "ended_at", "confidence", "model"]
_WRONG_TYPES: list[Any] = [None, 0, -1, 1.5, True, "", "x" * 10, [], {}, [1, 2], {"a": 1}]


def _dump(d: dict[str, Any]) -> bytes:
    return json.dumps(d, ensure_ascii=False).encode("utf-8")


def missing_field(d: dict[str, Any], r: random.Random) -> bytes:
    d.pop(r.choice(_REQUIRED))
    return _dump(d)


def wrong_type(d: dict[str, Any], r: random.Random) -> bytes:
    key = r.choice(_REQUIRED)
    bad = r.choice(_WRONG_TYPES)
    # A wrong type that happens to be valid for the key would not be malformed: pick another.
    while key in ("schema", "category", "type") and isinstance(bad, str) and bad == d[key]:
        bad = None
    d[key] = bad
    return _dump(d)


def huge_string(d: dict[str, Any], r: random.Random) -> bytes:
    key = r.choice(["node", "camera", "id", "type", "started_at"])
    d[key] = r.choice(["é", "x", "\u202e", "🚗"]) * r.randint(5_000, 70_000)
    return _dump(d)


def invalid_utf8(d: dict[str, Any], r: random.Random) -> bytes:
    raw = bytearray(_dump(d))
    pos = r.randrange(len(raw))
    raw[pos : pos + 1] = r.choice([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\xbc", b"\xed\xa0\x80"])
    return bytes(raw)


def wrong_schema(d: dict[str, Any], r: random.Random) -> bytes:
    d["schema"] = r.choice(["ioc.event/2", "ioc.event/0", "ioc.event/1.0", "IOC.EVENT/1", "", "event"])
    return _dump(d)


def bogus_hash(d: dict[str, Any], r: random.Random) -> bytes:
    bad = r.choice(["0" * 63, "g" * 64, "A" * 64, "", "0" * 65, "../../etc/passwd", "0" * 64 + "\n"])
    d["evidence"] = [{"kind": "snapshot", "media_type": "image/jpeg", "sha256": bad, "size": 1234}]
    return _dump(d)


def bad_times(d: dict[str, Any], r: random.Random) -> bytes:
    choice = r.randrange(3)
    if choice == 0:
        d["started_at"] = "2026-01-01T08:00:00"  # no time zone
    elif choice == 1:
        d["ended_at"] = "1999-01-01T00:00:00Z"  # before start
    else:
        d["started_at"] = "not a time"
    return _dump(d)


def unknown_field(d: dict[str, Any], r: random.Random) -> bytes:
    d[r.choice(["extra", "__proto__", "$where", "sql"])] = "'; DROP TABLE events; --"
    return _dump(d)


def not_json(d: dict[str, Any], r: random.Random) -> bytes:
    raw = _dump(d)
    return r.choice([raw[: r.randrange(1, len(raw) - 1)], b"", b"null", b"[]", b"42", b"\x00" * 16, b"{" * 500])


def bad_confidence(d: dict[str, Any], r: random.Random) -> bytes:
    d["confidence"] = r.choice([-0.1, 1.01, 1e308, "NaN", "high"])
    return _dump(d)


def nested_garbage(d: dict[str, Any], r: random.Random) -> bytes:
    d["objects"] = [{"class_name": "car", "track_id": -r.randint(1, 9), "box": [0, 0], "confidence": 2}]
    return _dump(d)


MUTATIONS: list[Mutation] = [
    missing_field, wrong_type, huge_string, invalid_utf8, wrong_schema, bogus_hash, bad_times,
    unknown_field, not_json, bad_confidence, nested_garbage,
]


def is_valid(payload: bytes) -> bool:
    try:
        ViolationEvent.from_json(payload)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return False
    return True


def malformed_payloads(valid: Callable[[], ViolationEvent], n: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """(mutation name, payload) pairs, each payload malformed.

    A mutation can land on a still-valid value (a wrong type of 0 for a confidence); such draws are
    redrawn so the expected outcome of every payload is known: refusal."""
    r = random.Random(seed)
    for i in range(n):
        mutate = MUTATIONS[i % len(MUTATIONS)]
        while True:
            payload = mutate(json.loads(valid().to_json()), r)
            if not is_valid(payload):
                break
        yield mutate.__name__, payload
