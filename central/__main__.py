"""`python -m central [--config configs/central.yaml] [run|ingest|web|migrate|user-add]`.

run (default): migrate, then the ingester (thread), the police-alert dispatcher (thread) and the
web console (uvicorn) in one process until SIGINT/SIGTERM. `web --workers N`: N console processes
on ports web.port.. (behind nginx: `nginx-conf --workers N` prints its config; docs/deploy.md). `user-add NAME --role R [--ward W] [--area A]`
adds a console user (password from env CENTRAL_USER_PASSWORD, else asked on the terminal).
Exit codes: 0 clean stop, 1 a dependency is unreachable, 2 a bad config or bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from central.config import DEFAULT_CONFIG_PATH, CentralConfig, load_central_config
from central.logs import kv, setup_logging
from contract.configfile import ConfigError
from contract.version import __version__, program

log = logging.getLogger("central")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=program("central", "ioc-central"), description="IOC central: ingester, reports, web console"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"YAML config (default: {DEFAULT_CONFIG_PATH}); env CENTRAL_DATABASE_URL and CENTRAL_MQTT_URL override it",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "ingest", "web", "migrate", "user-add", "purge-evidence", "purge-events", "nginx-conf"],
        help="run = migrate + ingest + web (default)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="web / nginx-conf: console processes, on ports web.port .. web.port+N-1 (behind nginx; default 1)",
    )
    p.add_argument("--port", type=int, help="web: listen on this port instead of web.port (one worker)")
    p.add_argument("--listen", default="80", help="nginx-conf: nginx's listen parameter (default 80)")
    p.add_argument("--server-name", default="_", help="nginx-conf: nginx's server_name (default _)")
    p.add_argument("username", nargs="?", help="user-add: the user name")
    p.add_argument("--role", choices=["operator", "police", "admin"], help="user-add: the role")
    p.add_argument("--ward", action="append", default=[], help="user-add: a ward/commune a police user sees (repeatable)")
    p.add_argument(
        "--area", action="append", default=[], help="user-add: a routing area (code) a police user sees (repeatable)"
    )
    p.add_argument(
        "--district", action="append", default=[], help="user-add: legacy: a district label a police user sees"
    )
    return p


def _user_add(cfg: CentralConfig, args: argparse.Namespace) -> int:
    import getpass
    import os

    from sqlalchemy.exc import IntegrityError

    from central.auth import create_user
    from central.db import make_engine, make_session_factory, session_scope

    if not args.username or not args.role:
        print("central: user-add needs a user name and --role", file=sys.stderr)
        return 2
    password = os.environ.get("CENTRAL_USER_PASSWORD") or getpass.getpass(f"password for {args.username}: ")
    engine = make_engine(cfg.database_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            create_user(s, args.username, password, args.role, args.district, wards=args.ward, areas=args.area)
    except ValueError as e:
        print(f"central: {e}", file=sys.stderr)
        return 2
    except IntegrityError:
        print(f"central: user {args.username!r} exists already", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"central: user {args.username} ({args.role}) added")
    return 0


def _db_label(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _check_database(cfg: CentralConfig, *, need_schema: bool) -> int:
    """0 if usable; else prints why on stderr and returns the exit code."""
    from central.db import check_connection, current_revision, make_engine

    engine = make_engine(cfg.database_url)
    try:
        check_connection(engine)
    except SQLAlchemyError as e:
        print(f"central: cannot reach the database {_db_label(cfg.database_url)}: {_first_line(e)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if need_schema:
        from alembic.script import ScriptDirectory

        from central.db import alembic_config

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        have = current_revision(cfg.database_url)
        if have != head:
            print(
                f"central: database schema is at {have or 'nothing'}, need {head}: run "
                f"`python -m central migrate` first",
                file=sys.stderr,
            )
            return 1
    return 0


def _migrate(cfg: CentralConfig) -> int:
    from central.db import migrate

    code = _check_database(cfg, need_schema=False)
    if code:
        return code
    try:
        migrate(cfg.database_url)
    except SQLAlchemyError as e:
        print(f"central: migration failed on {_db_label(cfg.database_url)}: {_first_line(e)}", file=sys.stderr)
        return 1
    return 0


def _stop_event_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info(kv("signal", name=signal.Signals(signum).name))
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _serve(cfg: CentralConfig, ingester: object | None, stop: threading.Event, event_source: object | None = None) -> int:
    """Serve the console until `stop` is set; 1 if the server could not start (port taken...)."""
    import uvicorn

    from central.web import create_app

    engine = getattr(ingester, "engine", None)
    app = create_app(cfg, engine=engine, ingester=ingester, event_source=event_source)
    # log_config=None: keep our one-line log format. uvicorn runs on a thread so that it installs no
    # signal handlers: its own re-raise SIGTERM after shutdown, killing us before a clean stop.
    from central.web.slow_clients import DEFAULT_READ_TIMEOUT_S, protocol

    # Read timeouts (issue 18, defect 10): a request's headers and body within 10 s, idle
    # keep-alive 5 s, at most 1,000 connections (beyond: 503), so half-open clients cannot pile up.
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=cfg.web.host,
            port=cfg.web.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=protocol(DEFAULT_READ_TIMEOUT_S),
            timeout_keep_alive=5,
            limit_concurrency=1000,
            # uvicorn would rewrite the client address from X-Forwarded-For for any peer on
            # 127.0.0.1 (its default); central decides itself, from web.trusted_proxies only.
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, name="central-web", daemon=True)
    thread.start()
    announced = False
    while not stop.wait(0.2):
        if not thread.is_alive():
            break
        if server.started and not announced:
            announced = True
            print(f"central: web console on {cfg.web.base_url}/reports", flush=True)
    failed = not server.started and not stop.is_set()
    server.should_exit = True
    thread.join(timeout=10)
    if failed:
        print(
            f"central: the web console could not listen on {cfg.web.host}:{cfg.web.port} (see the log above)",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = load_central_config(args.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2

    if args.port is not None:
        if not 1 <= args.port <= 65535:
            print(f"central: --port {args.port}: not a TCP port", file=sys.stderr)
            return 2
        cfg = cfg.model_copy(update={"web": cfg.web.model_copy(update={"port": args.port})})
    if not 1 <= args.workers <= 64 or cfg.web.port + args.workers - 1 > 65535:
        print(f"central: --workers {args.workers}: 1 to 64 ports from web.port {cfg.web.port}", file=sys.stderr)
        return 2
    if args.command == "nginx-conf":  # the upstream + server blocks for these workers, on stdout
        from central.web.nginx import server_block
        from central.web.workers import worker_ports

        host = "127.0.0.1" if cfg.web.host in ("0.0.0.0", "::", "") else cfg.web.host
        upstreams = [f"{host}:{p}" for p in worker_ports(cfg.web.port, args.workers)]
        print(server_block(upstreams, listen=args.listen, server_name=args.server_name,
                           upload_max_mb=cfg.uploads.max_size_mb), end="")
        return 0

    if args.command == "migrate":
        code = _migrate(cfg)
        if code == 0:
            print(f"central: database {_db_label(cfg.database_url)} is up to date")
        return code

    code = _migrate(cfg) if args.command == "run" else _check_database(cfg, need_schema=True)
    if code:
        return code
    if args.command == "purge-evidence":  # evidence retention by category; run it daily (cron, timer)
        from central.db import make_engine, make_session_factory
        from central.evidence_retention import purge_expired_evidence
        from central.storage import open_evidence_storage

        engine = make_engine(cfg.database_url)
        purge_expired_evidence(
            make_session_factory(engine), open_evidence_storage(cfg), dict(cfg.evidence_retention_days)
        )
        engine.dispose()
        return 0
    if args.command == "purge-events":  # event retention (event_retention_days); run it daily
        from central.db import make_engine, make_session_factory
        from central.event_retention import purge_expired_events

        if cfg.event_retention_days is None:
            print("central: event_retention_days is not set; events are kept")
            return 0
        engine = make_engine(cfg.database_url)
        purge_expired_events(make_session_factory(engine), cfg.event_retention_days)
        engine.dispose()
        return 0
    if args.command == "user-add":
        return _user_add(cfg, args)

    from central.ingester import Ingester

    stop = _stop_event_on_signals()
    if args.command == "web":
        if args.workers > 1:
            from central.web.workers import supervise, worker_ports

            return supervise(args.config, args.log_level, worker_ports(cfg.web.port, args.workers), stop)
        return _serve(cfg, None, stop)

    from central.alerts import AlertDispatcher

    ingester = Ingester(cfg)
    ingester.start()
    events_stream = _events_from_cluster(cfg, ingester)
    # Alerts go out from the process that talks MQTT; the web process only queues them.
    dispatcher = AlertDispatcher(cfg, ingester.engine).start() if cfg.alerts.enabled else None
    try:
        if args.command == "ingest":
            stop.wait()
            return 0
        return _serve(cfg, ingester, stop, event_source=events_stream)
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        if events_stream is not None:
            events_stream.stop()
        ingester.stop()


def _events_from_cluster(cfg, ingester):  # type: ignore[no-untyped-def]
    """Events from a broker cluster's queue or stream, when one is configured (else over MQTT)."""
    if cfg.events_engine == "rabbitmq":
        # The Ingester's own worker stores them: one code path for MQTT and the queue.
        from central.ingest_rabbitmq import start_event_source

        return start_event_source(cfg, ingester)
    if cfg.events_engine == "jetstream":
        return _jetstream_ingester(cfg, ingester)
    return None


def _jetstream_ingester(cfg, ingester):  # type: ignore[no-untyped-def]
    """Events from the JetStream cluster: a processor of its own on the MQTT ingester's engine."""
    from central.db import make_session_factory
    from central.ingest_jetstream import JetStreamIngester, JetStreamSettings
    from central.ingester import MessageProcessor

    js = cfg.jetstream
    processor = MessageProcessor(
        make_session_factory(ingester.engine), dialect_name=ingester.engine.dialect.name,
        evidence_dir=cfg.evidence_dir, topic_prefix=cfg.mqtt.topic_prefix, tz=cfg.time_zone, config=cfg,
    )
    settings = JetStreamSettings(
        servers=list(js.servers), user=js.user, password=js.secret(), stream=js.stream, durable=js.durable,
        replicas=js.replicas, batch_max=js.batch_max,
    )
    return JetStreamIngester(processor, settings).start()


if __name__ == "__main__":
    sys.exit(main())
