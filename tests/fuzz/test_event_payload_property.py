"""Property: whatever bytes arrive on an event topic, decoding either yields a valid contract-v1
event or refuses it with a clear reason. Never another exception."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.ingester import InvalidMessage, decode_event
from contract.topics import parse_topic
from tests.services import make_event

TOPIC = parse_topic("ioc", "ioc/node-1/cam-1/events/illegal_stopping")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)


def _check(payload: bytes) -> None:
    try:
        event = decode_event(TOPIC, payload)
    except InvalidMessage as e:
        assert str(e).strip(), "a refusal must say why"
        return
    assert event.node == "node-1" and event.camera == "cam-1"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(payload: bytes) -> None:
    _check(payload)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json(value) -> None:
    _check(json.dumps(value).encode())


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_valid_event_with_one_field_replaced(data) -> None:
    d = json.loads(make_event(node="node-1", camera="cam-1", type="illegal_stopping").to_json())
    key = data.draw(st.sampled_from(sorted(d)))
    d[key] = data.draw(json_values)
    _check(json.dumps(d).encode())
