"""Rules as plug-ins: discovery, generic scene-reference checks, the contract's type registry, and
rule modules that import no runtime."""

import json
import subprocess
import sys
import textwrap

import pytest

from contract.events import ViolationEvent, known_violation_types, register_violation_type
from edge.config import RulesConfig
from edge.rules.base import scene_refs
from edge.rules.registry import rule_specs, violation_kinds
from tests.services import make_event

BUILT_IN = {
    "illegal_stopping", "red_light", "stop_line", "wrong_way", "lane", "forbidden_turn", "speeding", "no_helmet",
    "sidewalk_encroachment", "littering", "pedestrian_on_carriageway",
}


def test_every_rule_module_is_found_and_its_key_is_a_config_key():
    specs = rule_specs()
    assert set(specs) == BUILT_IN
    assert set(RulesConfig.model_fields) == BUILT_IN | {"plates"}
    for key, spec in specs.items():
        assert spec.module.startswith("edge.rules."), key
        for kind in spec.kinds:
            assert known_violation_types()[kind.type] == kind.category
            assert kind.title.vi and kind.title.en and "{camera}" in kind.lead.vi and "{camera}" in kind.lead.en
    assert set(violation_kinds()) == BUILT_IN  # each rule raises one type of its own name today


def test_scene_references_are_found_by_type_in_nested_fields():
    rules = RulesConfig.model_validate(
        {
            "forbidden_turn": {"turns": [{"entry": "a", "exit": "b"}, {"entry": "b", "exit": "c"}]},
            "stop_line": {"line": "stop", "signal": "main", "zone": "box"},
            "illegal_stopping": {"zones": ["z1", "z2"], "max_stop_seconds": 5, "zone_rules": {"z2": {}}},
            "speeding": {"limit_kmh": 50},
        }
    )
    refs = {path: (kind, ref) for key in ("forbidden_turn", "stop_line", "illegal_stopping", "speeding")
            for path, kind, ref in scene_refs(getattr(rules, key), f"{key}.")}
    assert refs == {
        "forbidden_turn.turns[0].entry": ("lines", "a"),
        "forbidden_turn.turns[0].exit": ("lines", "b"),
        "forbidden_turn.turns[1].entry": ("lines", "b"),
        "forbidden_turn.turns[1].exit": ("lines", "c"),
        "stop_line.line": ("lines", "stop"),
        "stop_line.signal": ("signals", "main"),
        "stop_line.zone": ("zones", "box"),
        "illegal_stopping.zones[0]": ("zones", "z1"),
        "illegal_stopping.zones[1]": ("zones", "z2"),
        "illegal_stopping.zone_rules.z2": ("zones", "z2"),
    }


def test_a_third_party_rule_registers_through_its_own_module_only(tmp_path):
    """A rule shipped outside this package (an `ioc_edge.rules` entry point names its module): a
    camera config may use its key, its type validates on the wire and central writes its report with
    the rule's own texts — in a fresh interpreter, with nothing else edited."""
    pkg = tmp_path / "seatbelt_rule"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from pydantic import Field
        from contract.events import Category
        from edge.rules.base import RuleSpec, Texts, ViolationKind, register
        from edge.scene import ZoneId, _Model

        SEAT_BELT = ViolationKind("no_seat_belt", Category.TRAFFIC, title=Texts("Không thắt dây an toàn", "No seat belt"),
            subject=Texts("người lái xe", "a driver"), lead=Texts("Camera {camera}: {subject} tại {place}.",
            "Camera {camera}: {subject} at {place}."), names_vehicle=False)

        class SeatBeltConfig(_Model):
            zone: ZoneId
            min_votes: int = Field(3, ge=1)

        class SeatBeltRule:
            def __init__(self, cfg): self.cfg = cfg
            def update(self, obs): return []

        register(RuleSpec(key="no_seat_belt", config=SeatBeltConfig, kinds=(SEAT_BELT,),
                          build=lambda ctx, cfg: SeatBeltRule(cfg), module=__name__))
    '''), encoding="utf-8")
    dist = tmp_path / "seatbelt_rule-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: seatbelt-rule\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[ioc_edge.rules]\nseat_belt = seatbelt_rule\n", encoding="utf-8")
    script = textwrap.dedent('''
        import json, sys
        from edge.config import CameraConfig
        from edge.rules.registry import build_rules
        from central.reports import build_report_texts, load_templates
        from tests.services import make_event
        base = {"camera": {"id": "c"}, "scene": {"reference_size": [100, 100],
                "zones": [{"id": "z", "kind": "other", "polygon": [[0, 0], [10, 0], [10, 10]]}]}}
        cam = CameraConfig.model_validate({**base, "rules": {"no_seat_belt": {"zone": "z"}}})
        rules = build_rules(cam, [], (100, 100))
        try:
            CameraConfig.model_validate({**base, "rules": {"no_seat_belt": {"zone": "nope"}}})
            bad_ref = None
        except ValueError as e:
            bad_ref = str(e)
        event = make_event(type="no_seat_belt", details={})
        texts = build_report_texts(event, templates=load_templates(None))
        print(json.dumps({"rules": [type(r).__name__ for r in rules], "bad_ref": bad_ref,
                          "category": event.category, "title": texts.title_en}))
    ''')
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{__import__('os').getcwd()}"},
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rules"] == ["SeatBeltRule"]
    assert "no_seat_belt.zone: no zone 'nope' in scene.zones (have: ['z'])" in got["bad_ref"]
    assert got["category"] == "traffic" and got["title"] == "No seat belt"


def test_contract_checks_registered_types_and_accepts_newer_ones():
    with pytest.raises(ValueError, match="category 'sanitation' does not match type 'red_light'"):
        make_event(type="red_light", category="sanitation")
    # A type this reader does not know (a newer edge's rule) is stored, not refused.
    newer = make_event(type="phone_while_driving", category="traffic")
    assert ViolationEvent.from_json(newer.to_json()).type == "phone_while_driving"
    with pytest.raises(ValueError):
        make_event(type="Bad Type!")
    with pytest.raises(ValueError, match="registered as traffic"):
        register_violation_type("red_light", "sanitation")


def test_importing_a_rule_module_loads_no_runtime():
    """Rules are pure: no model runtime, video, MQTT, tracker or database library at import."""
    heavy = ["onnxruntime", "openvino", "tensorrt", "cv2", "av", "gi", "paho", "sqlalchemy", "psycopg",
             "supervision", "trackers", "torch", "fastapi"]
    script = textwrap.dedent(f'''
        import sys
        from edge.rules.registry import rule_specs
        specs = rule_specs()
        print(sorted(m for m in {heavy!r} if m in sys.modules))
    ''')
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
