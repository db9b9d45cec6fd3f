"""Malformed configs through the real loaders: a ConfigError naming the file, never a crash."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.configfile import ConfigError
from edge.config import load_camera_config, load_node_config

REPO = Path(__file__).resolve().parents[2]
CAMERA = yaml.safe_load((REPO / "configs/cameras/vn_paved_parking_area_motorbike.yaml").read_text(encoding="utf-8"))
NODE = yaml.safe_load((REPO / "configs/node.example.yaml").read_text(encoding="utf-8"))

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(d, prefix=()):
    """Every key path in a nested mapping/list."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _set(d, path, value):
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value


def _load(tmp_path: Path, text: str, loader) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        loader(path)
    except ConfigError as e:
        assert str(path) in str(e) and str(e).strip()


_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(st.data())
def test_camera_config_with_one_value_replaced(tmp_path, data):
    import copy

    cfg = copy.deepcopy(CAMERA)
    path = data.draw(st.sampled_from(list(_paths(cfg))))
    _set(cfg, path, data.draw(values))
    _load(tmp_path, yaml.safe_dump(cfg, allow_unicode=True), load_camera_config)


@_SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text_as_camera_config(tmp_path, text):
    _load(tmp_path, text, load_camera_config)


@_SETTINGS
@given(st.data())
def test_node_config_with_one_value_replaced(tmp_path, data):
    import copy

    cfg = copy.deepcopy(NODE)
    cfg["cameras"][0]["config"] = str(REPO / "configs/cameras/vn_paved_parking_area_motorbike.yaml")
    path = data.draw(st.sampled_from(list(_paths(cfg))))
    _set(cfg, path, data.draw(values))
    _load(tmp_path, yaml.safe_dump(cfg, allow_unicode=True), load_node_config)
