"""Deployed cameras must not break on upgrade: configs written for v0.1.0 (before rules were
plug-ins) load unchanged, with the same values, and build the same rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.configfile import ConfigError
from edge.config import load_camera_config
from edge.pipeline import build_zones
from edge.rules.registry import build_rules

FIXTURE = Path(__file__).parent / "fixtures" / "camera_v0_1_every_rule.yaml"


def test_a_v0_1_config_with_every_rule_loads_and_builds():
    cam = load_camera_config(FIXTURE)
    r = cam.rules
    assert r.illegal_stopping.timezone == "Asia/Ho_Chi_Minh" and r.illegal_stopping.zone_rules["kerb"].max_stop_seconds == 60
    assert r.red_light.grace_seconds == 0.5 and r.stop_line.still_seconds == 1.5 and r.wrong_way.riders
    assert r.forbidden_turn.turns[0].exit == "exit" and r.speeding.zone == "box" and r.plates.input_size == 320
    assert r.sidewalk_encroachment.active_hours == ["06:00-22:00"] and r.littering.left_seconds == 5
    assert cam.camera.timezone == "Asia/Ho_Chi_Minh"  # the new key's default
    rules = build_rules(cam, build_zones(cam, (640, 480)), (640, 480))
    names = [type(getattr(x, "rule", x)).__name__ for x in rules]
    assert names == [
        "IllegalStoppingRule", "RedLightRule", "StopLineRule", "WrongWayRule", "LaneClassRule", "ForbiddenTurnRule",
        "SpeedingRule", "NoHelmetRule", "SidewalkEncroachmentRule", "LitteringRule",
    ]
    # Traffic rules carry the plate stage, as in v0.1.
    assert [type(x).__name__ for x in rules][:8] == ["WithPlates"] * 8


def test_a_typo_in_a_rule_key_still_names_the_file_and_key(tmp_path):
    bad = tmp_path / "cam.yaml"
    bad.write_text(FIXTURE.read_text(encoding="utf-8").replace("red_light:", "red_lihgt:"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cam\.yaml: rules\.red_lihgt"):
        load_camera_config(bad)
