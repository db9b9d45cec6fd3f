"""Scene rules: an observation (tracked objects, time, the frame) in, violations out.

Pure: no video I/O, network or disk. A rule keeps its own per-track state and reports each act
once. Times are seconds on the camera's clock (the frame's pts); the observation carries the wall
clock and time zone for rules with local hours. Each rule is a plug-in module registering a
`RuleSpec` (see `edge.rules.base`); `edge.rules.registry` finds and builds them.
"""

from edge.rules.base import Observation, Offender, Rule, Violation, box_tuple

__all__ = ["Observation", "Offender", "Rule", "Violation", "box_tuple"]
