"""Build a camera's traffic rules from its config (one shared signal board and vehicle motion)."""

from __future__ import annotations

import numpy as np

from edge.config import CameraConfig
from edge.geometry import PolygonZone, scale_points
from edge.rules import Observation, Rule, Violation
from edge.rules.signals import SignalBoard
from edge.rules.traffic import (
    ForbiddenTurnRule,
    GroundPlane,
    LaneClassRule,
    RedLightRule,
    SpeedingRule,
    StopLineRule,
    VehicleMotion,
    WrongWayRule,
    _line,
    build_lanes,
)
from edge.secondary import cut


def build_traffic_rules(camera: CameraConfig, zones: list[PolygonZone], frame_wh: tuple[int, int]) -> list[Rule]:
    cfg, scene = camera.rules, camera.scene
    ref = scene.reference_size
    lines = {
        ln.id: _line(ln.id, scale_points(np.asarray(ln.points, np.float32), ref, frame_wh)) for ln in scene.lines
    }
    zone_by_id = {z.id: z for z in zones}
    board = SignalBoard.from_config(scene.signals, ref, frame_wh)
    motion = VehicleMotion(keep_crops=cfg.plates is not None)
    lanes = build_lanes(scene.lanes, ref, frame_wh)
    rules: list[Rule] = []
    red = None
    if cfg.red_light is not None:
        red = RedLightRule(cfg.red_light, lines[cfg.red_light.line], board, motion)
        rules.append(red)
    if cfg.stop_line is not None:
        sl = cfg.stop_line
        rules.append(StopLineRule(sl, lines[sl.line], zone_by_id[sl.zone], board, motion, red))
    if cfg.wrong_way is not None:
        ww_motion = VehicleMotion(keep_crops=cfg.plates is not None, riders=True) if cfg.wrong_way.riders else motion
        rules.append(WrongWayRule(cfg.wrong_way, lanes, ww_motion, frame_wh[1]))
    if cfg.lane is not None:
        rules.append(LaneClassRule(cfg.lane, lanes, motion))
    if cfg.forbidden_turn is not None:
        rules.append(ForbiddenTurnRule(cfg.forbidden_turn, lines, motion))
    if cfg.speeding is not None and scene.calibration is not None:
        zone = zone_by_id.get(cfg.speeding.zone) if cfg.speeding.zone else None
        rules.append(SpeedingRule(cfg.speeding, GroundPlane(scene.calibration, ref, frame_wh), motion, zone))
    if cfg.no_helmet is not None:
        from edge.rules.helmet import NoHelmetRule  # loads a model: only when configured

        zone = zone_by_id.get(cfg.no_helmet.zone) if cfg.no_helmet.zone else None
        rules.append(NoHelmetRule(cfg.no_helmet, motion, zone))
    if cfg.plates is not None and rules:
        from edge.plates import PlateCropper

        plates = PlateCropper(cfg.plates)
        rules = [WithPlates(rule, plates, motion) for rule in rules]
    return rules


class WithPlates:
    """Adds the offender's plate crop (best frame of its track) to a traffic rule's violations."""

    def __init__(self, rule: Rule, plates, motion: VehicleMotion) -> None:
        self.rule = rule
        self.plates = plates
        self.motion = motion
        self.board = getattr(rule, "board", None)

    def update(self, obs: Observation) -> list[Violation]:
        out = []
        for v in self.rule.update(obs):
            crops = []
            veh = self.motion.by_track(v.offenders[0].track_id) if v.offenders else None
            if veh is not None and veh.best_crop is not None:
                crops.append(veh.best_crop)
            if obs.image is not None and v.offenders:
                crops.append(cut(obs.image, v.offenders[0].box, margin=0.1))
            out.append(self.plates.attach(v, crops))
        return out


def signal_board(rules: list[Rule]) -> SignalBoard | None:
    """The camera's signal board (for a controller feeding states), if a rule uses one."""
    for rule in rules:
        board = getattr(rule, "board", None)
        if isinstance(board, SignalBoard):
            return board
    return None
