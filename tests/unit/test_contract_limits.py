"""The contract's hard limits (issue 18, defects 6, 7 and 10): every field bounded, the largest event
the fields allow still under MAX_EVENT_BYTES (so the edge never makes an event central refuses for
its size), NUL and lone surrogates refused anywhere, times within 1970-9998, the JSON Schema shows
the limits; and check-config refuses a control character in a camera's location."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.events import (
    MAX_DETAIL_KEY,
    MAX_DETAIL_TEXT,
    MAX_EVENT_BYTES,
    MAX_EVIDENCE,
    EventTooLarge,
    ViolationEvent,
    event_json_schema,
    new_event_id,
)
from edge.__main__ import main
from tests.services import make_event
from tests.unit.test_check_config import CAMERA, write


def _largest_event() -> ViolationEvent:
    """Every string at its maximum length in 3-byte UTF-8 characters, every list at its maximum."""
    wide = "ệ"  # 3 bytes in UTF-8
    t = datetime(2026, 11, 21, 7, 3, 5, 123456, tzinfo=UTC)
    schema = event_json_schema()
    obj = schema["$defs"]["ObjectRef"]["properties"]
    loc = schema["$defs"]["Location"]["properties"]

    def n(prop: dict) -> int:
        return next(a["maxLength"] for a in prop.get("anyOf", [prop]) if "maxLength" in a)

    objects = [
        {
            "class_name": wide * n(obj["class_name"]),
            "track_id": 2**62 + k,
            "box": (-1.2345678901234567e300, 1.2345678901234567e300, -1.2345678901234567e-300, 1.2345678901234567e300),
            "confidence": 0.12345678901234567,
            "plate": wide * n(obj["plate"]),
        }
        for k in range(schema["properties"]["objects"]["maxItems"])
    ]
    details = {f"{k:02d}" + wide * (MAX_DETAIL_KEY - 2): wide * MAX_DETAIL_TEXT for k in range(64)}
    evidence = [
        {"kind": "snapshot_clean", "media_type": "image/jpeg", "sha256": f"{k:064x}", "size": 512 * 1024 * 1024}
        for k in range(MAX_EVIDENCE)
    ]
    return make_event(
        id=new_event_id(),
        incident=new_event_id(),
        phase="update",
        started_at=t,
        ended_at=t + timedelta(days=3),
        detected_at=t + timedelta(days=3),
        objects=objects,
        details=details,
        evidence=evidence,
        evidence_pending=["clip"],
        zone={"id": "z" * 64, "kind": wide * 64},
        location={
            "ward": wide * n(loc["ward"]),
            "district": wide * n(loc["district"]),
            "address": wide * n(loc["address"]),
            "lat": -12.345678901234567,
            "lon": -123.45678901234567,
        },
        model={"name": wide * 128, "version": wide * 128},
        node="n" * 64,
        camera="c" * 64,
    )


def test_the_largest_event_the_fields_allow_fits_the_size_limit() -> None:
    payload = _largest_event().to_json().encode()
    assert len(payload) <= MAX_EVENT_BYTES, len(payload)
    assert ViolationEvent.from_json(payload).to_json().encode() == payload


def test_a_message_over_the_limit_is_refused_before_it_is_parsed() -> None:
    payload = b'{"details": "' + b"x" * MAX_EVENT_BYTES + b'"}'
    with pytest.raises(EventTooLarge, match=f"is {len(payload)} bytes; the limit is {MAX_EVENT_BYTES}"):
        ViolationEvent.from_json(payload)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"details": {"note": "a\x00b"}}, "details.note: NUL at character 1"),
        ({"details": {"a\x00": 1}}, "(key): NUL at character 1"),
        ({"location": {"address": "12 Lê\ud800 Lợi"}}, "location.address: lone surrogate U+D800 at character 5"),
        ({"model": {"name": "\x00", "version": "1"}}, "model.name: NUL"),
    ],
)
def test_nul_and_lone_surrogates_are_refused_anywhere(change: dict, where: str) -> None:
    with pytest.raises(ValidationError, match="NUL and lone surrogates are not allowed") as e:
        make_event(**change)
    assert where in str(e.value)


def test_a_nul_on_the_wire_is_refused_too() -> None:
    payload = make_event(details={"note": "ab"}).to_json().replace('"ab"', '"a\\u0000b"')
    with pytest.raises(ValidationError, match="details.note: NUL"):
        ViolationEvent.from_json(payload)
    # JSON cannot even carry a lone surrogate to pydantic: the parser refuses it.
    with pytest.raises(ValidationError, match="json_invalid|Invalid JSON"):
        ViolationEvent.from_json(payload.replace("\\u0000", "\\ud800"))


@pytest.mark.parametrize(
    "details", [{"n": "x" * (MAX_DETAIL_TEXT + 1)}, {"k" * (MAX_DETAIL_KEY + 1): 1}, {"": 1}, {f"k{i}": i for i in range(65)}]
)
def test_details_are_bounded(details: dict) -> None:
    with pytest.raises(ValidationError):
        make_event(details=details)


@pytest.mark.parametrize(
    "when",
    ["9999-12-31T00:00:00Z", "9999-01-01T00:00:00Z", "0001-01-01T00:00:00+07:00", "1969-12-31T23:59:59Z"],
)
def test_times_outside_1970_to_9998_are_refused_with_a_clear_reason(when: str) -> None:
    data = json.loads(make_event().to_json()) | {"started_at": when, "ended_at": when}
    with pytest.raises(ValidationError, match="outside the years 1970-9998"):
        ViolationEvent.from_json(json.dumps(data))


def test_times_at_the_edges_of_the_range_are_accepted() -> None:
    for when in ("1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "9998-12-31T23:59:59Z"):
        data = json.loads(make_event().to_json()) | {"started_at": when, "ended_at": when}
        assert ViolationEvent.from_json(json.dumps(data)).started_at.isoformat().startswith(when[:10])


def test_the_json_schema_shows_the_limits() -> None:
    schema = event_json_schema()
    assert schema["x-max-bytes"] == MAX_EVENT_BYTES
    assert schema["x-time-range"] == ["1970-01-01T00:00:00+00:00", "9999-01-01T00:00:00+00:00"]
    details = schema["properties"]["details"]
    assert details["maxProperties"] == 64
    assert details["propertyNames"] == {"maxLength": MAX_DETAIL_KEY, "minLength": 1}
    assert {"maxLength": MAX_DETAIL_TEXT, "type": "string"} in details["additionalProperties"]["anyOf"]
    assert schema["properties"]["objects"]["maxItems"] == 256
    assert schema["properties"]["evidence"]["maxItems"] == MAX_EVIDENCE

    # Every string in the schema has a maxLength (or a pattern of bounded length, or an enum).
    def strings(node: object, path: str = "") -> list[tuple[str, dict]]:
        found = []
        if isinstance(node, dict):
            if node.get("type") == "string":
                found.append((path, node))
            for k, v in node.items():
                found += strings(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                found += strings(v, f"{path}/{i}")
        return found

    for path, s in strings(schema):
        assert "maxLength" in s or "enum" in s or "const" in s or "format" in s or "pattern" in s, path


def test_check_config_refuses_a_nul_in_a_cameras_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = CAMERA.replace("camera: {id: cam-1,", 'camera: {id: cam-1, location: {address: "12 Lê Lợi"},')
    path = write(tmp_path, "cam.yaml", good)
    assert main(["--log-level", "WARNING", "check-config", "--camera", str(path)]) == 0
    capsys.readouterr()
    for bad, code in (("12 Lê\\0 Lợi", "U+0000"), ("12 Lê\\n Lợi", "U+000A"), ("12\\x1b[31m", "U+001B")):
        path = write(tmp_path, "bad.yaml", good.replace('"12 Lê Lợi"', f'"{bad}"'))
        assert main(["--log-level", "WARNING", "check-config", "--camera", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"camera.location: Value error, address: control character {code}" in err, err
