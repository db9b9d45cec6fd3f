"""The shared MQTT client (contract.mqtt) without a broker: URL, TLS and credential handling,
password resolution, and reading CONNACK/SUBACK/PUBACK reason codes."""

from __future__ import annotations

import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from contract.configfile import ConfigError
from contract.mqtt import (
    Ack,
    MqttClient,
    MqttSettings,
    Will,
    build_client,
    connect_properties,
    reason_ok,
    reason_text,
    refused_codes,
    resolve_password,
)


def test_url_gives_host_port_and_tls():
    s = MqttSettings("mqtt://broker.example", "c1")
    assert (s.host, s.port, s.tls) == ("broker.example", 1883, False)
    s = MqttSettings("mqtts://broker.example", "c1")
    assert (s.host, s.port, s.tls) == ("broker.example", 8883, True)
    assert MqttSettings("mqtts://10.0.0.5:18883/", "c1").port == 18883


@pytest.mark.parametrize("url", ["http://broker", "mqtt://", "mqtt://h:notaport", "mqtt://h/path", "broker:1883"])
def test_bad_urls_are_refused_before_connecting(url):
    with pytest.raises(ValueError, match="MQTT URL"):
        MqttSettings(url, "c1")


def test_reconnect_backoff_must_make_sense():
    with pytest.raises(ValueError, match="reconnect"):
        MqttSettings("mqtt://h", "c1", reconnect_min_s=10, reconnect_max_s=5)


def test_plain_client_has_no_tls_and_no_credentials():
    c = build_client(MqttSettings("mqtt://127.0.0.1:1883", "plain-1"))
    assert c._ssl_context is None
    assert c._username is None and c._password is None
    assert c._protocol == mqtt.MQTTv5 and c._client_id == b"plain-1"


def test_mqtts_uses_tls_with_the_system_cas_by_default():
    c = build_client(MqttSettings("mqtts://127.0.0.1", "tls-1"))
    assert isinstance(c._ssl_context, ssl.SSLContext)
    assert c._ssl_context.verify_mode == ssl.CERT_REQUIRED and c._ssl_context.check_hostname


def test_mqtts_loads_the_given_ca_file(tmp_path: Path):
    # A CA file that is not a certificate fails at build time: proof the file is what is used.
    bogus = tmp_path / "ca.crt"
    bogus.write_text("not a certificate\n", encoding="utf-8")
    with pytest.raises(ssl.SSLError):
        build_client(MqttSettings("mqtts://127.0.0.1", "tls-2", ca_file=bogus))
    with pytest.raises(FileNotFoundError):
        build_client(MqttSettings("mqtts://127.0.0.1", "tls-3", ca_file=tmp_path / "missing.crt"))


def test_ca_file_is_ignored_for_plain_mqtt(tmp_path: Path):
    assert build_client(MqttSettings("mqtt://127.0.0.1", "p", ca_file=tmp_path / "missing.crt"))._ssl_context is None


def test_credentials_will_inflight_and_manual_ack_reach_paho():
    s = MqttSettings(
        "mqtt://127.0.0.1", "node-a-1", username="node-a", password="s3cret",
        will=Will("ioc/node-a/status", b'{"state":"offline"}'), max_inflight=7, manual_ack=True,
        reconnect_min_s=2, reconnect_max_s=9,
    )
    assert "s3cret" not in repr(s)
    c = build_client(s)
    assert c._username == b"node-a" and c._password == b"s3cret"
    assert c._will and c._will_topic == b"ioc/node-a/status" and c._will_retain and c._will_qos == 1
    assert c._max_inflight_messages == 7 and c._manual_ack
    assert (c._reconnect_min_delay, c._reconnect_max_delay) == (2, 9)


def test_session_expiry_goes_into_the_connect_properties():
    assert connect_properties(MqttSettings("mqtt://h", "c")) is None
    props = connect_properties(MqttSettings("mqtt://h", "c", clean_start=False, session_expiry_s=3600))
    assert props is not None and props.SessionExpiryInterval == 3600


def test_password_env_beats_file_beats_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    f = tmp_path / "pw"
    f.write_text("from-file\n", encoding="utf-8")
    monkeypatch.delenv("X_TEST_MQTT_PASSWORD", raising=False)
    assert resolve_password("X_TEST_MQTT_PASSWORD", None, "from-value", key="mqtt.password_file") == "from-value"
    assert resolve_password("X_TEST_MQTT_PASSWORD", f, "from-value", key="mqtt.password_file") == "from-file"
    monkeypatch.setenv("X_TEST_MQTT_PASSWORD", "from-env")
    assert resolve_password("X_TEST_MQTT_PASSWORD", f, "from-value", key="mqtt.password_file") == "from-env"
    assert resolve_password(None, None, None, key="k") is None


def test_unreadable_password_file_is_a_config_error_naming_the_key(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: cannot read .*nope"):
        resolve_password(None, tmp_path / "nope", "x", key="mqtt.password_file")


@pytest.mark.parametrize(
    ("code", "ok"),
    [(0x00, True), (0x01, True), (0x10, True), (0x7F, True), (0x80, False), (0x87, False), (0x97, False)],
)
def test_reason_codes_below_0x80_are_success(code: int, ok: bool):
    assert reason_ok(code) is ok
    assert Ack(code).ok is ok


def test_paho_reason_codes_are_read_alike():
    refused = ReasonCode(PacketTypes.PUBACK, "Not authorized")
    assert not reason_ok(refused) and reason_ok(ReasonCode(PacketTypes.PUBACK, "Success"))
    assert not reason_ok(ReasonCode(PacketTypes.CONNACK, "Bad user name or password"))
    granted = [ReasonCode(PacketTypes.SUBACK, "Granted QoS 1"), ReasonCode(PacketTypes.SUBACK, "Not authorized")]
    assert [str(c) for c in refused_codes(granted)] == ["Not authorized"]


def test_ack_says_why():
    assert Ack(0x87).reason == "Not authorized" and not Ack(0x87).ok
    assert Ack(0x10).no_subscribers and Ack(0x10).ok
    assert Ack().ok and not Ack().no_subscribers
    assert reason_text(0x05) == "reason code 0x05"
    assert reason_text(0x87, PacketTypes.SUBACK) == "Not authorized"


def _suback(client: MqttClient, mid: int, *names: str) -> None:
    """Hand the client the SUBACK a broker would send (paho's own ReasonCode objects)."""
    client._on_subscribe(client.client, None, mid, [ReasonCode(PacketTypes.SUBACK, n) for n in names], None)


def test_a_refused_suback_is_reported_per_topic_and_kept_in_status():
    seen = []
    c = MqttClient(MqttSettings("mqtt://127.0.0.1", "sub-1"), on_subscribed=seen.append)
    c._sub_topics[5] = ["ioc/a/#", "ioc/b/#"]
    _suback(c, 5, "Granted QoS 1", "Not authorized")
    assert seen[-1].refused == {"ioc/b/#": "Not authorized"} and not seen[-1].ok
    assert c.status()["subscriptions_refused"] == {"ioc/b/#": "Not authorized"}
    # Granted on a later try: no longer reported.
    c._sub_topics[6] = ["ioc/b/#"]
    _suback(c, 6, "Granted QoS 1")
    assert seen[-1].ok and c.status()["subscriptions_refused"] == {}


def test_puback_codes_are_matched_to_their_message():
    c = MqttClient(MqttSettings("mqtt://127.0.0.1", "pub-1"))
    c._on_publish(c.client, None, 41, ReasonCode(PacketTypes.PUBACK, "Not authorized"), None)
    c._on_publish(c.client, None, 42, ReasonCode(PacketTypes.PUBACK, "No matching subscribers"), None)
    assert c.status()["publishes_refused"] == 1
    assert c._acks == {41: 0x87, 42: 0x10}
    # A mid used again and acked with success clears what an earlier message left behind.
    c._on_publish(c.client, None, 41, ReasonCode(PacketTypes.PUBACK, "Success"), None)
    assert c._acks == {42: 0x10}


def test_a_publish_while_the_connection_is_down_waits_instead_of_raising():
    # Not connected (never started): paho keeps a QoS 1 message for the next connection.
    c = MqttClient(MqttSettings("mqtt://127.0.0.1", "offline-1"))
    info = c.publish("ioc/node-a/status", b"x", qos=1)
    assert c.puback(info) is None  # pending, not an exception that would end the caller's thread
    # QoS 0 while disconnected is dropped by paho: a failure, never a success.
    lost = c.puback(c.publish("ioc/node-a/status", b"x", qos=0))
    assert lost is not None and not lost.ok
