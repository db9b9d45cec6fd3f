"""The node config's runtime keys: evidence worker, restart policy, metrics (off by default)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.config import NodeConfig

BASE = {"node": {"id": "n1"}, "cameras": [{"config": "c.yaml"}]}


def test_defaults_metrics_off_one_evidence_thread_restart_with_backoff():
    cfg = NodeConfig.model_validate(BASE)
    assert cfg.metrics is None  # no endpoint unless asked for
    assert (cfg.evidence.threads, cfg.evidence.max_queued_frames) == (1, 16)
    assert (cfg.restart.initial_s, cfg.restart.max_s, cfg.restart.max_consecutive) == (1.0, 60.0, 10)


def test_metrics_listen_on_loopback_unless_told_otherwise():
    cfg = NodeConfig.model_validate({**BASE, "metrics": {}})
    assert cfg.metrics is not None and (cfg.metrics.bind, cfg.metrics.port) == ("127.0.0.1", 9108)
    assert NodeConfig.model_validate({**BASE, "metrics": {"port": 9200, "bind": "0.0.0.0"}}).metrics.port == 9200


@pytest.mark.parametrize("extra", [
    {"metrics": {"port": 70000}}, {"metrics": {"host": "x"}}, {"evidence": {"threads": 0}},
    {"evidence": {"max_queued_frames": 0}}, {"restart": {"initial_s": 0}},
])
def test_bad_runtime_keys_are_config_errors(extra):
    with pytest.raises(ValidationError):
        NodeConfig.model_validate({**BASE, **extra})
