"""benchmarks/evidence_sizes.py's summary: per event, the final record's evidence, each file once."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.evidence_sizes import summarize


def _ref(kind: str, sha: str, size: int) -> dict[str, object]:
    return {"kind": kind, "media_type": "video/mp4" if kind == "clip" else "image/jpeg", "sha256": sha, "size": size}


def test_summary_counts_final_records_and_shared_clips_once(tmp_path: Path) -> None:
    lines = [
        {"id": "e1", "evidence": [_ref("snapshot", "a", 100)]},  # sent first, without its clip
        {"id": "e2", "evidence": [_ref("snapshot", "b", 200), _ref("composite", "c", 500)]},
        {"id": "e1", "evidence": [_ref("snapshot", "a", 100), _ref("clip", "k", 5000)]},  # the same id with its clip
        {"id": "e2", "evidence": [_ref("snapshot", "b", 200), _ref("composite", "c", 500), _ref("clip", "k", 5000)]},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    s = summarize(path)
    assert s["events"] == 2
    assert s["kinds"]["clip"] == {"files": 1, "bytes": 5000, "mean_bytes": 5000}  # shared by both events
    assert s["mqtt_files_per_event"] == 1.5 and s["mqtt_bytes_per_event"] == 400
    assert s["clips_per_event"] == 0.5 and s["clip_bytes_per_event"] == 2500
    assert s["bytes_per_event"] == 2900 and s["files_per_event"] == 2.0
