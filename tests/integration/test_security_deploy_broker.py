"""Issue 18: deploy/mosquitto.conf (what compose.yaml runs) with the files
`python -m central.broker_security` writes, on a real Mosquitto: no anonymous client, a node
credential's `$share` subscription to central's group and its takeover of central's client id are
refused, central's account share-subscribes. Only the container paths, the port and the log
destination are changed to run it here."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from central.broker_security import find_dynsec_plugin, main
from edge.local_broker import find_mosquitto, free_port, port_open
from tests.integration.test_broker_isolation import Conn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_deploy_mosquitto_conf_enforces_the_generated_accounts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "broker"
    assert main(["--out", str(out), "--no-tls", "--node", "node-hue-01"]) == 0
    capsys.readouterr()
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    assert re.search(r"^plugin_opt_config_file /mosquitto/security/dynamic-security.json$", conf, re.M)
    assert not re.search(r"^(password_file|acl_file) ", conf, re.M)
    port = free_port("127.0.0.1")
    (tmp_path / "data").mkdir()
    local = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", conf, flags=re.M)
    local = re.sub(
        r"^plugin /usr/lib/mosquitto_dynamic_security.so$", f"plugin {find_dynsec_plugin()}", local, flags=re.M
    )
    local = local.replace("/mosquitto/security/", f"{out}/").replace("/mosquitto/data/", f"{tmp_path / 'data'}/")
    local = local.replace("log_dest stdout", f"log_dest file {tmp_path / 'mosquitto.log'}")
    if os.geteuid() == 0:  # as root Mosquitto drops to user `mosquitto`, which cannot read tmp_path
        local += "\nuser root\n"  # (in the container it runs as 1883, owner of the mounted folder)
    (tmp_path / "mosquitto.conf").write_text(local, encoding="utf-8")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
        secrets = out / "secrets"
        node_pw = (secrets / "node-hue-01.password").read_text(encoding="utf-8").strip()
        central_pw = (secrets / "central.password").read_text(encoding="utf-8").strip()
        anon = Conn(port, "guest", "guest", password="guess")
        assert anon.reason.is_failure
        anon.close()
        thief = Conn(port, "node-hue-01", "central-1", password=node_pw)  # deploy's central client id
        assert thief.reason.is_failure, thief.reason
        thief.close()
        node = Conn(port, "node-hue-01", "node-hue-01", password=node_pw)
        assert not node.reason.is_failure, node.reason
        node.c.subscribe([("$share/central/ioc/+/+/events/+", 1), ("ioc/node-other/#", 1)])
        assert node.subscribed.wait(10)
        assert len(node.suback) == 2 and all(c.is_failure for c in node.suback), node.suback
        node.close()
        central = Conn(port, "central", "central-1", password=central_pw)
        assert not central.reason.is_failure, central.reason
        central.c.subscribe([("$share/central/ioc/+/+/events/+", 1)])
        assert central.subscribed.wait(10) and not any(c.is_failure for c in central.suback), central.suback
        central.close()
    finally:
        proc.terminate()
        proc.wait(10)
