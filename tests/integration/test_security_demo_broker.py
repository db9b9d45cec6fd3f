"""Issue 18: the broker `make demo` starts (scripts/demo_broker.py) is the one
`central.broker_security` generates (dynamic-security plugin), and holds against a node credential:
no `$share` subscription to central's group, no takeover of central's client id, no foreign
topics; central's own account may share-subscribe. Real Mosquitto, the attack tests' client."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.demo_broker import demo_broker
from tests.integration.test_broker_isolation import Conn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _pw(path: Path) -> str:
    assert path.stat().st_mode & 0o077 == 0, f"{path} readable by others"
    return path.read_text(encoding="utf-8").strip()


def test_the_demo_broker_refuses_a_node_credential_share_and_takeover(tmp_path: Path) -> None:
    secured = demo_broker(tmp_path, "demo-node")
    assert "plugin" in "\n".join(secured.broker.security.mosquitto_lines(None, "127.0.0.1"))
    node_pw, central_pw = _pw(secured.node_password_file), _pw(secured.central_password_file)
    with secured.broker as broker:
        # Anonymous: refused.
        anon = Conn(broker.port, "nobody", "nobody", password="x")
        assert anon.reason.is_failure
        anon.close()
        # The node under central's client id: refused (client ids are bound to accounts).
        thief = Conn(broker.port, "demo-node", "demo-central", password=node_pw)
        assert thief.reason.is_failure, thief.reason
        thief.close()
        node = Conn(broker.port, "demo-node", "demo-node", password=node_pw)
        assert not node.reason.is_failure, node.reason
        node.c.subscribe([("$share/central/ioc/+/+/events/+", 1), ("$share/central/ioc/#", 1), ("ioc/other/#", 1)])
        assert node.subscribed.wait(10)
        assert len(node.suback) == 3 and all(c.is_failure for c in node.suback), node.suback
        info = node.c.publish("ioc/demo-node/cam/events/littering", b"{}", qos=1)
        info.wait_for_publish(10)
        assert info.is_published()
        node.close()
        central = Conn(broker.port, "central", "demo-central", password=central_pw)
        assert not central.reason.is_failure, central.reason
        central.c.subscribe([("$share/central/ioc/+/+/events/+", 1)])
        assert central.subscribed.wait(10)
        assert not any(c.is_failure for c in central.suback), central.suback
        central.close()


def test_demo_configs_use_the_generated_accounts() -> None:
    demo = (Path(__file__).resolve().parents[2] / "scripts" / "demo.py").read_text(encoding="utf-8")
    # The demo starts the secured broker and points both configs at its password files.
    assert "demo_broker(STATE, NODE_ID)" in demo and 'port_open("127.0.0.1", 1883)' not in demo
    assert demo.count("password_file:") == 2
