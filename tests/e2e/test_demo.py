"""The demo path end to end, started exactly as `make demo` starts it: a sample video served as a
live RTSP camera -> edge node -> Mosquitto -> central -> a field report on the web page."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_demo_files_a_report_within_a_minute():
    env = {**os.environ, "DEMO_SECONDS": "150", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "scripts/demo.py"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    first_report: list[tuple[float, str]] = []
    got_report = threading.Event()

    def read() -> None:
        for line in iter(proc.stdout.readline, ""):
            lines.append(line)
            if line.startswith("REPORT") and not first_report:
                first_report.append((time.monotonic() - started, line.strip()))
                got_report.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert got_report.wait(90), "no REPORT line within 90 s:\n" + "".join(lines[-40:])
        elapsed, line = first_report[0]
        assert elapsed <= 60, f"first report after {elapsed:.0f} s (expected within a minute)"
        url = re.search(r"(http://\S+/reports/\S+)", line).group(1)
        report = json.loads(_get(url + ".json"))
        text = json.dumps(report, ensure_ascii=False)
        assert "illegal_stopping" in text
        assert "Dừng" in text or "đỗ" in text  # the Vietnamese description is there
        html = _get(url).decode()
        assert "<html" in html.lower()
        # The snapshot arrived intact: served bytes match the sha256 the edge put in the event.
        snapshots = [e for e in report["evidence"] if e["kind"] == "snapshot"]
        assert snapshots, "no snapshot in the report"
        sha = snapshots[0]["sha256"]
        base = url.split("/reports/")[0]
        evidence_url = snapshots[0]["url"]
        data = _get(evidence_url if evidence_url.startswith("http") else base + evidence_url)
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == snapshots[0]["size"]
        # Access control: the hash alone (it travels in events over MQTT) does not open the file.
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(f"{base}/evidence/{sha}")
        assert refused.value.code == 404
        assert data[:3] == b"\xff\xd8\xff"  # a JPEG
        listing = _get(url.split("/reports/")[0] + "/reports").decode()
        assert "/reports/" in listing
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    assert code == 0, "demo did not stop cleanly:\n" + "".join(lines[-40:])
