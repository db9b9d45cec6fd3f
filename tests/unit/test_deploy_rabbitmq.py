"""deploy/ for the RabbitMQ cluster: what `python -m central.rabbitmq_cluster --tls-dir` writes is
what the systemd drop-in expects, the ingester unit runs a real subcommand, the ingester config
loads (the broker itself: tests/integration/test_rabbitmq_tls.py)."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import central.__main__ as central_main
from central.config import load_central_config
from central.rabbitmq_cluster import INTER_NODE_TLS_CONFIG, TLS_DIR, inter_node_tls_config, main
from tests.support import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
HOSTS = ["rabbit-1", "rabbit-2", "rabbit-3"]


def _ini(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(path, encoding="utf-8")
    return cp


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rabbit-out")
    main([str(out), "--hosts", ",".join(HOSTS), "--tls-dir", TLS_DIR, "--make-pki", "--node", "node-hue-01"])
    return out


def test_tls_everywhere_files(generated: Path) -> None:
    for host in HOSTS:
        conf = (generated / f"{host}.rabbitmq.conf").read_text()
        assert "listeners.tcp = none" in conf and "mqtt.listeners.tcp = none" in conf
        assert "listeners.ssl.default = 0.0.0.0:5671" in conf and "mqtt.listeners.ssl.default = 0.0.0.0:8883" in conf
        env = (generated / f"{host}.rabbitmq-env.conf").read_text()
        assert f"NODENAME=rabbit@{host}\n" in env and "DIST_PORT=25672\n" in env
        args = f"-proto_dist inet_tls -ssl_dist_optfile /etc/rabbitmq/{INTER_NODE_TLS_CONFIG}"
        # the node and its CLI tools (ExecStop=rabbitmqctl stop, rabbitmq-upgrade) both over TLS
        assert f'SERVER_ADDITIONAL_ERL_ARGS="{args}"' in env and f'CTL_ERL_ARGS="{args}"' in env
    optfile = (generated / INTER_NODE_TLS_CONFIG).read_text()
    assert optfile == inter_node_tls_config(TLS_DIR)
    assert optfile.count("{verify, verify_peer}") == 2 and optfile.count("{fail_if_no_peer_cert, true}") == 1
    assert (generated / "secrets" / "erlang.cookie").stat().st_mode & 0o277 == 0  # mode 400


def test_without_tls_no_tls_distribution(tmp_path: Path) -> None:
    main([str(tmp_path), "--hosts", "rabbit-1"])
    env = (tmp_path / "rabbit-1.rabbitmq-env.conf").read_text()
    assert "NODENAME=rabbit@rabbit-1\n" in env and "inet_tls" not in env
    assert not (tmp_path / INTER_NODE_TLS_CONFIG).exists()


def test_the_drop_in_checks_the_files_the_optfile_names(generated: Path) -> None:
    drop_in = _ini(DEPLOY / "rabbitmq" / "rabbitmq-server.service.d" / "ioc.conf")
    checked = set(re.findall(r"-r (\S+)", drop_in["Service"]["ExecStartPre"]))
    named = set(re.findall(r'"([^"]+)"', (generated / INTER_NODE_TLS_CONFIG).read_text()))
    assert named <= checked and f"/etc/rabbitmq/{INTER_NODE_TLS_CONFIG}" in checked
    assert int(drop_in["Service"]["LimitNOFILE"]) >= 65536 and int(drop_in["Service"]["TimeoutStopSec"]) >= 120


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl")
def test_trial_pki_certificates_name_their_host_and_chain_to_the_ca(generated: Path) -> None:
    for host in HOSTS:
        d = generated / "tls" / host
        ok = subprocess.run(["openssl", "verify", "-CAfile", str(d / "ca.crt"), str(d / "server.crt")],
                            capture_output=True, text=True)  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        text = subprocess.run(["openssl", "x509", "-in", str(d / "server.crt"), "-noout", "-text"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert f"DNS:{host}" in text and "Extended Key Usage" not in text  # server and client
        assert (d / "server.key").stat().st_mode & 0o077 == 0
    assert not (generated / "tls" / "rabbit-1" / "ca.key").exists()  # the CA key stays out of the host folders


@pytest.mark.skipif(shutil.which("erl") is None, reason="erl (erlang-base)")
def test_the_optfile_is_erlang_terms_ssl_accepts(generated: Path) -> None:
    path = generated / INTER_NODE_TLS_CONFIG
    probe = (
        f'{{ok, [Opts]}} = file:consult("{path}"), '
        "[{server, S}, {client, C}] = Opts, "
        "io:format(\"~p~n\", [{proplists:get_value(verify, S), proplists:get_value(fail_if_no_peer_cert, S), "
        "proplists:get_value(verify, C)}]), halt()."
    )
    out = subprocess.run(["erl", "-noshell", "-eval", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "{verify_peer,true,verify_peer}", out.stdout + out.stderr


def test_ingester_unit_and_config(tmp_path: Path) -> None:
    unit = _ini(DEPLOY / "systemd" / "ioc-central-ingest@.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert Path(argv[0]).name == "ioc-central"
    assert central_main._parser().parse_args(argv[1:]).command == "ingest"
    assert "%i" in unit["Service"]["ExecStart"] and unit["Service"]["KillSignal"] == "SIGTERM"
    # as installed: /etc/ioc/central-ingest-1.yaml with the CA beside it
    shutil.copyfile(DEPLOY / "rabbitmq" / "central-ingest.yaml", tmp_path / "central-ingest-1.yaml")
    (tmp_path / "rabbitmq-ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = load_central_config(tmp_path / "central-ingest-1.yaml")
    assert cfg.events_engine == "rabbitmq" and cfg.rabbitmq is not None
    assert all(s.startswith("amqps://") and s.endswith(":5671") for s in cfg.rabbitmq.servers)
    assert cfg.mqtt.url.startswith("mqtts://") and all(u.startswith("mqtts://") for u in cfg.mqtt.failover_urls)
    assert cfg.mqtt.ca_file == cfg.rabbitmq.ca_file == tmp_path / "rabbitmq-ca.crt"
    assert cfg.mqtt.client_id == "central-ingest-1"
    assert cfg.mqtt.share_group is None and cfg.mqtt.protocol == "3.1.1"


def test_web_instance_unit_runs_one_console_process_per_port() -> None:
    unit = _ini(DEPLOY / "systemd" / "ioc-central-web@.service")
    argv = shlex.split(unit["Service"]["ExecStart"].replace("%i", "8081"))
    args = central_main._parser().parse_args(argv[1:])
    assert Path(argv[0]).name == "ioc-central" and args.command == "web" and args.port == 8081
