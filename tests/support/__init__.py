"""Test harnesses and helpers that are not part of the runtime packages."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout the tests run from (configs/, scripts/, benchmarks/)."""


def log_events(lines: list[str] | str) -> list[str]:
    """The `event` names of the structured (JSON) log lines among `lines` (other lines are skipped)."""
    import json

    if isinstance(lines, str):
        lines = lines.splitlines()
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event"):
            out.append(rec["event"])
    return out
