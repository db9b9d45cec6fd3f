"""The shipped nginx config is what `ioc-central nginx-conf` generates (central/web/nginx.py), and
the generated config carries what the app needs of its proxy (the running nginx: tests/integration/
test_central_nginx.py)."""

from __future__ import annotations

from pathlib import Path

from central.web.nginx import scene_report_mb, server_block

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "ioc-central.conf"


def test_shipped_config_is_the_generated_one() -> None:
    upstreams = [f"127.0.0.1:{p}" for p in range(8081, 8085)]
    assert SHIPPED.read_text() == server_block(upstreams, server_name="ioc.example.gov.vn", upload_max_mb=512)


def test_what_the_proxy_must_do() -> None:
    conf = server_block(["127.0.0.1:9001", "127.0.0.1:9002"], upload_max_mb=100)
    # Set, never appended ($proxy_add_x_forwarded_for would keep what the client wrote).
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "proxy_add_x_forwarded_for" not in conf
    # Round-robin: no ip_hash / hash / sticky in the upstream.
    directives = [line.split()[0] for line in conf.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert not {"ip_hash", "hash", "sticky", "least_conn"} & set(directives)
    assert conf.count("    server 127.0.0.1:900") == 2
    # The app's own limits decide: uploads up to uploads.max_size_mb (+1 so the app says 413).
    assert "client_max_body_size 101m;" in conf and "client_max_body_size 1m;" in conf
    assert f"client_max_body_size {scene_report_mb()}m;" in conf and 6 <= scene_report_mb() <= 8
    assert "proxy_buffering off;" in conf  # the SSE stream
    assert "Range" not in conf.replace("Range requests", "")  # nothing strips or rewrites Range
