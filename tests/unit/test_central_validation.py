"""How the ingester judges a message before any I/O: reasons a person can act on."""

from __future__ import annotations

import json

import pytest

from central.ingester import InvalidMessage, decode_event
from contract.topics import parse_topic
from tests.services import make_event


def _topic(node="node-hue-01", camera="cam-le-loi-01", vtype="illegal_stopping"):
    parsed = parse_topic("ioc", f"ioc/{node}/{camera}/events/{vtype}")
    assert parsed is not None
    return parsed


def test_valid_event_passes():
    event = make_event()
    assert decode_event(_topic(), event.to_json().encode()) == event


def _payload(**changes):
    data = json.loads(make_event().to_json())
    for k, v in changes.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("payload", "topic_kwargs", "reason"),
    [
        (b"not json", {}, "not UTF-8/JSON"),
        (b"\xff\xfe{}", {}, "not UTF-8/JSON: payload is not valid UTF-8"),
        (_payload(schema="ioc.event/2"), {}, "invalid event: schema: Input should be 'ioc.event/1'"),
        (_payload(started_at=None), {}, "invalid event: started_at: Field required"),
        (_payload(), {"node": "node-other"}, "topic/payload node mismatch"),
        (_payload(), {"camera": "cam-other"}, "topic/payload camera mismatch"),
        (_payload(), {"vtype": "red_light"}, "topic/payload type mismatch"),
        (b"[1, 2]", {}, "invalid event"),
    ],
)
def test_invalid_messages_have_clear_reasons(payload, topic_kwargs, reason):
    with pytest.raises(InvalidMessage) as e:
        decode_event(_topic(**topic_kwargs), payload)
    assert reason in str(e.value)
