"""Node status and camera health stored in batches (one transaction, one write per node and per
camera), through the real broker into both databases: the newest message wins by its own time,
every message is acked after the commit, one the database refuses is dead-lettered alone, and two
ingesters writing the same nodes on PostgreSQL do not deadlock. MQTT evidence in batches: every
file written and verified, the rows in one transaction, the holding area's limit kept inside a
batch."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from central.config import CentralConfig
from central.db import CameraHealthRow, DeadLetterRow, EvidenceRow, NodeStatusRow, make_engine
from central.evidence import sha256_hex
from central.ingester import Ingester
from contract.status import CameraHealth, NodeStatus
from contract.topics import camera_health_topic, evidence_topic, node_status_topic
from tests.services import Publisher, fake_jpeg, unique_name, wait_until
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CAMERAS = ("cam-1", "cam-2")


def _cfg(database_url: str, broker_url: str, tmp_path: Path) -> CentralConfig:
    return CentralConfig.model_validate(
        {
            "database_url": database_url,
            "mqtt": {"url": broker_url, "topic_prefix": unique_name("t"), "share_group": unique_name("g")},
            "evidence_dir": str(tmp_path / "evidence"),
        }
    )


def _health(node: str, camera: str, at: datetime) -> CameraHealth:
    return CameraHealth(node=node, camera=camera, state="streaming", at=at, analysis_fps_target=5.0)


def _status(node: str, at: datetime) -> NodeStatus:
    cams = {c: _health(node, c, at) for c in CAMERAS}
    return NodeStatus(node=node, state="online", at=at, uptime_s=1.0, outbox_backlog=0, published=0,
                      held_no_subscriber=0, cameras=cams)


def _messages(prefix: str, node: str, at: datetime) -> list[tuple[str, bytes]]:
    """One status set as a node sends it: its status, then each camera's health, all of time `at`."""
    return [
        (node_status_topic(prefix, node), _status(node, at).to_json().encode()),
        *[(camera_health_topic(prefix, node, c), _health(node, c, at).to_json().encode()) for c in CAMERAS],
    ]


@pytest.fixture
def queued(mqtt_broker: Any) -> Iterator[Any]:
    """`queued(cfg, client_ids, messages)`: each client id's session is made (subscribed, then
    left), `messages` are published while no ingester is connected (so that they arrive together,
    in big batches), then the ingesters are started; returns them (stopped by the fixture)."""
    started: list[Ingester] = []

    def run(cfg: CentralConfig, client_ids: list[str], messages: list[tuple[str, bytes]]) -> list[Ingester]:
        for cid in client_ids:
            first = Ingester(cfg, client_id=cid, console=io.StringIO()).start()
            assert first.wait_subscribed(10)
            first.stop()  # the session stays: what is published now is queued for it
        with Publisher(mqtt_broker.url) as pub:
            for topic, payload in messages:
                pub.publish(topic, payload)
        for cid in client_ids:
            started.append(Ingester(cfg, client_id=cid, console=io.StringIO()).start())
        return list(started)

    yield run
    for ing in started:
        ing.stop()


def _rows(database_url: str) -> tuple[dict[str, Any], dict[tuple[str, str], Any], list[str]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            status = {r.node: r.payload for r in conn.execute(select(NodeStatusRow))}
            health = {(r.node, r.camera): r.payload for r in conn.execute(select(CameraHealthRow))}
            letters = [r for (r,) in conn.execute(select(DeadLetterRow.reason))]
    finally:
        engine.dispose()
    return status, health, letters


def _at(payload: Any) -> datetime:
    return datetime.fromisoformat(payload["at"])


def _expected_stale(stored: int | None, order: tuple[int, ...]) -> int:
    """How many of one topic's messages, in this order over what is stored, are older than what
    is there when they arrive (storing them one at a time: the rule the batch must keep)."""
    current, stale = stored, 0
    for t in order:
        if current is None or t >= current:
            current = t
        else:
            stale += 1
    return stale


def test_a_burst_is_stored_newest_winning_in_few_transactions_and_every_message_acked(
    central_database_url: str, mqtt_broker: Any, tmp_path: Path, queued: Any
) -> None:
    """150 nodes, three status sets each (status + 2 health: 1,350 messages), published while the
    ingester is away, the nodes interleaved: each node's sets in an order that is never oldest
    first to newest last (a redelivery, another ingester's share), so older messages arrive after
    newer ones and must not overwrite them. Ten nodes have a newer status stored already: nothing
    of theirs may overwrite it. A last will (no time) and an empty retained health (forget the
    camera) still win by arrival, as before."""
    cfg = _cfg(central_database_url, mqtt_broker.url, tmp_path)
    p = cfg.mqtt.topic_prefix
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    nodes = [f"node-{k:03d}" for k in range(150)]
    stored: dict[str, int | None] = dict.fromkeys(nodes)
    engine = make_engine(cfg.database_url)
    try:
        proc = ingest_processor(cfg, engine)
        proc.prefix = p
        for n in nodes[:10]:  # stored before the burst, newer than anything in it
            for topic, payload in _messages(p, n, t0 + timedelta(seconds=300)):
                assert proc.process(topic, payload).kind == "status"
            stored[n] = 300
    finally:
        engine.dispose()
    rng = random.Random(7)
    orders = [(20, 0, 10), (0, 20, 10), (10, 20, 0), (20, 10, 0)]
    order = {n: orders[rng.randrange(len(orders))] for n in nodes}
    turns = [n for n in nodes for _ in range(3)]
    rng.shuffle(turns)  # the nodes interleaved, each node's sets in its order
    nth = dict.fromkeys(nodes, 0)
    messages: list[tuple[str, bytes]] = []
    for n in turns:
        messages += _messages(p, n, t0 + timedelta(seconds=order[n][nth[n]]))
        nth[n] += 1
    will, gone = nodes[-1], (nodes[-2], "cam-2")
    messages.append((node_status_topic(p, will), b"offline"))  # a last will: no time, arrives last, wins
    messages.append((camera_health_topic(p, *gone), b""))  # an empty retained message: the row goes
    total = len(messages)

    (ing,) = queued(cfg, [unique_name("central-status-")], messages)
    wait_until(lambda: ing.counters.acked >= total and ing.idle(), timeout=180, what=f"{total} acked")

    c = ing.counters
    assert c.status_updates == total and c.acked == total, c.snapshot()
    assert c.dead_letters == 0 and c.db_errors == 0, c.snapshot()
    status, health, letters = _rows(cfg.database_url)
    assert letters == []
    newest = {n: t0 + timedelta(seconds=stored[n] or max(order[n])) for n in nodes}
    assert set(status) == set(nodes)
    assert status[will] == "offline"
    for n in nodes:
        if n != will:
            assert _at(status[n]) == newest[n], (n, order[n], status[n]["at"])
        for cam in CAMERAS:
            if (n, cam) == gone:
                assert (n, cam) not in health
            else:
                assert _at(health[(n, cam)]) == newest[n], (n, cam, order[n], health[(n, cam)]["at"])
    # The older ones were acked and counted, not written: exactly as many as one at a time would skip.
    assert c.status_stale == sum(3 * _expected_stale(stored[n], order[n]) for n in nodes), c.snapshot()
    # One transaction per batch, not per message.
    assert 1 <= c.status_batches <= total // 20, c.status_batches


@pytest.fixture
def refusing_database(central_database_url: str) -> Iterator[str]:
    """The database refuses (a trigger: its own refusal, not the ingester's check) any status row
    of a node whose id starts with "poison"."""
    engine = make_engine(central_database_url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION refuse_poison_status() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.node LIKE 'poison%' THEN RAISE EXCEPTION 'poison status refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_poison_status ON node_status"))
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_poison_status BEFORE INSERT OR UPDATE ON node_status "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_poison_status()"
                )
            )
        else:
            for op in ("INSERT", "UPDATE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER refuse_poison_status_{op.lower()} BEFORE {op} ON node_status "
                        "WHEN NEW.node LIKE 'poison%' BEGIN SELECT RAISE(ABORT, 'poison status refused'); END"
                    )
                )
    try:
        yield central_database_url
    finally:
        with engine.begin() as conn:
            if postgres:
                conn.execute(text("DROP TRIGGER IF EXISTS refuse_poison_status ON node_status"))
            else:
                for op in ("insert", "update"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS refuse_poison_status_{op}"))
        engine.dispose()


def test_a_status_the_database_refuses_is_dead_lettered_alone(
    refusing_database: str, mqtt_broker: Any, tmp_path: Path, queued: Any
) -> None:
    """Two statuses the database refuses among 300 good status and health messages, in one burst:
    the two are dead-lettered with the database's reason, every other one is stored, all are
    acked, and finding the two costs a few transactions (bisection), not one per message."""
    cfg = _cfg(refusing_database, mqtt_broker.url, tmp_path)
    p = cfg.mqtt.topic_prefix
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    nodes = [f"node-{k:03d}" for k in range(100)]
    messages = [m for n in nodes for m in _messages(p, n, at)]
    bad = [(node_status_topic(p, n), _status(n, at).to_json().encode()) for n in ("poison-1", "poison-2")]
    messages.insert(37, bad[0])
    messages.insert(211, bad[1])
    total = len(messages)

    (ing,) = queued(cfg, [unique_name("central-poison-")], messages)
    wait_until(lambda: ing.counters.acked >= total and ing.idle(), timeout=120, what=f"{total} acked")

    c = ing.counters
    assert c.acked == total and c.dead_letters == 2 and c.status_updates == total - 2, c.snapshot()
    status, health, letters = _rows(cfg.database_url)
    assert set(status) == set(nodes)
    assert set(health) == {(n, cam) for n in nodes for cam in CAMERAS}
    assert len(letters) == 2 and all(
        r.startswith("database rejected the message:") and "poison status refused" in r for r in letters
    ), letters
    # k bad among n: about 2·k·log2(n) transactions to find them (and each bad one tried
    # _PERMANENT_DB_ERROR_RETRIES times alone), far below one per message.
    assert c.status_batches <= 2 * 2 * 9 + 10 < total, c.status_batches


def test_two_ingesters_writing_the_same_nodes_do_not_deadlock(
    central_database_url: str, mqtt_broker: Any, tmp_path: Path, queued: Any
) -> None:
    """Two ingesters in one share group; 200 nodes' status and health, five sets each (3,000
    messages) published while both are away, so each gets interleaved batches of the same nodes'
    rows. Without one lock order, PostgreSQL finds `deadlock detected` (a db_error, retried);
    here: no database error at all, every message acked once, and the newest set stored."""
    cfg = _cfg(central_database_url, mqtt_broker.url, tmp_path)
    p = cfg.mqtt.topic_prefix
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    nodes = [f"node-{k:03d}" for k in range(200)]
    rng = random.Random(11)
    messages: list[tuple[str, bytes]] = []
    for k in range(5):
        batch = [m for n in nodes for m in _messages(p, n, t0 + timedelta(seconds=10 * k))]
        rng.shuffle(batch)  # each round in another order: the two ingesters' batches cross
        messages += batch
    total = len(messages)

    ings = queued(cfg, [unique_name("central-a-"), unique_name("central-b-")], messages)
    wait_until(
        lambda: sum(i.counters.acked for i in ings) >= total and all(i.idle() for i in ings),
        timeout=180,
        what=f"{total} acked by the two",
    )

    counters = [i.counters.snapshot() for i in ings]
    assert all(c["acked"] > 0 for c in counters), counters  # both took a share
    assert sum(c["acked"] for c in counters) == total, counters
    assert [c["db_errors"] for c in counters] == [0, 0], counters
    assert [c["dead_letters"] for c in counters] == [0, 0], counters
    status, health, _letters = _rows(cfg.database_url)
    last = t0 + timedelta(seconds=40)
    assert {n: _at(v) for n, v in status.items()} == dict.fromkeys(nodes, last)
    assert {k: _at(v) for k, v in health.items()} == {(n, c): last for n in nodes for c in CAMERAS}


@pytest.mark.parametrize("rounds", [30])
def test_two_writers_with_crossing_batches_do_not_deadlock(central_database_url: str, tmp_path: Path, rounds: int) -> None:
    """The same without the broker, made to collide: two threads (two ingesters' processors),
    each storing batches of the same 300 nodes, and of 100 nodes new in that round (rows to
    insert), in opposite orders at the same moment, `rounds` times. A write order that follows
    the batch makes PostgreSQL abort one of every few pairs (`deadlock detected`); here none may
    fail, and the newest round is stored."""
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engines = [make_engine(central_database_url) for _ in range(2)]
    procs = [ingest_processor(cfg, e) for e in engines]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    nodes = [f"node-{k:03d}" for k in range(300)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(w: int) -> None:
        rng = random.Random(w)
        try:
            for r in range(rounds):
                at = t0 + timedelta(seconds=r)
                fresh = [f"new-{r:02d}-{k:03d}" for k in range(100)]
                batch = [(t, b, datetime.now(UTC)) for n in nodes + fresh for t, b in _messages("ioc", n, at)]
                if w:
                    batch.reverse()
                else:
                    rng.shuffle(batch)
                start.wait(30)
                procs[w].process_status(batch)
        except BaseException as e:  # noqa: BLE001 (the verdict is in the main thread)
            errors.append(e)
            start.abort()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert not errors, f"{type(errors[0]).__name__}: {str(errors[0]).splitlines()[0]}"
        status, health, _letters = _rows(central_database_url)
        last = t0 + timedelta(seconds=rounds - 1)
        assert {_at(status[n]) for n in nodes} == {last} and len(status) == len(nodes) + 100 * rounds
        assert {_at(health[(n, c)]) for n in nodes for c in CAMERAS} == {last}
        assert len(health) == 2 * len(status)
    finally:
        for e in engines:
            e.dispose()


def test_a_burst_of_evidence_is_stored_in_few_transactions_within_the_holding_limit(
    central_database_url: str, mqtt_broker: Any, tmp_path: Path, queued: Any
) -> None:
    """80 snapshots no stored event refers to yet (held), a redelivery of one, one whose bytes do
    not match its sha256, a second copy of the last, published while the ingester is away: the holding area (0.2 MB here)
    takes the first 51 files of 4 kB and refuses the rest, also when they come in one batch; each
    stored file is complete and verified on disk, the rows were written a batch at a time, and
    every message is acked."""
    cfg = _cfg(central_database_url, mqtt_broker.url, tmp_path)
    cfg = cfg.model_copy(update={"limits": cfg.limits.model_copy(update={"evidence_hold_max_mb": 0.2})})
    p = cfg.mqtt.topic_prefix
    files = [fake_jpeg(f"snap-{k}", 4096) for k in range(80)]
    messages = [(evidence_topic(p, "node-1", "cam-1", sha256_hex(b)), b) for b in files]
    messages.insert(10, messages[3])  # the same file again
    messages.insert(20, (evidence_topic(p, "node-1", "cam-1", sha256_hex(b"other")), files[5]))
    messages.append(messages[-1])  # a file refused (the area is full by then), again: refused again
    total = len(messages)
    admitted = int(0.2 * 1024 * 1024) // 4096  # 51

    (ing,) = queued(cfg, [unique_name("central-evidence-")], messages)
    wait_until(lambda: ing.counters.acked >= total and ing.idle(), timeout=120, what=f"{total} acked")

    c = ing.counters
    assert c.acked == total, c.snapshot()
    assert c.evidence_stored == c.evidence_held == admitted and c.evidence_duplicates == 1, c.snapshot()
    assert c.dead_letters == 1 + (80 - admitted) + 1 and c.db_errors == 0, c.snapshot()
    assert 1 <= c.evidence_batches <= total // 10, c.evidence_batches
    engine = make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            rows = {r.sha256: r for r in conn.execute(select(EvidenceRow))}
            letters = [r for (r,) in conn.execute(select(DeadLetterRow.reason))]
    finally:
        engine.dispose()
    assert set(rows) == {sha256_hex(b) for b in files[:admitted]}
    assert all(r.held_until is not None and r.size == 4096 for r in rows.values())
    for sha, row in rows.items():
        assert sha256_hex((cfg.evidence_dir / row.path).read_bytes()) == sha
    assert sum(r.startswith("evidence holding area full") for r in letters) == 80 - admitted + 1, letters[:3]
    assert sum(r.startswith("evidence sha256 mismatch") for r in letters) == 1, letters[:3]


def test_in_one_batch_a_file_s_copies_fare_as_its_first(central_database_url: str, tmp_path: Path) -> None:
    """One batch: a file the holding area refuses, twice, and a stored one, twice: the refused
    one's copy is refused too (as one at a time would), the stored one's copy is a duplicate."""
    cfg = CentralConfig.model_validate(
        {"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev"), "limits": {"evidence_hold_max_mb": 0.005}}
    )
    engine = make_engine(cfg.database_url)
    try:
        proc = ingest_processor(cfg, engine)
        ok, big = fake_jpeg("ok", 4096), fake_jpeg("big", 4096)
        now = datetime.now(UTC)
        msgs = [(evidence_topic("ioc", "node-1", "cam-1", sha256_hex(b)), b, now) for b in (ok, big, ok, big)]
        kinds = [o.kind for o in proc.process_evidence(msgs)]
        assert kinds == ["evidence_stored", "dead_letter", "evidence_duplicate", "dead_letter"], kinds
        with engine.connect() as conn:
            assert [r for (r,) in conn.execute(select(EvidenceRow.sha256))] == [sha256_hex(ok)]
            assert len(conn.execute(select(DeadLetterRow.id)).all()) == 2
    finally:
        engine.dispose()


def test_a_stored_time_ahead_of_central_s_clock_holds_no_place(central_database_url: str, tmp_path: Path) -> None:
    """A node whose clock ran an hour ahead, then was set right: its next status is "older" than
    the stored one by the times, but the stored time has not come yet (beyond 30 s of central's
    clock), so the new one is written. An older one within the slack is still refused."""
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engine = make_engine(cfg.database_url)
    try:
        proc = ingest_processor(cfg, engine)
        now = datetime.now(UTC).replace(microsecond=0)
        ahead, right = _messages("ioc", "node-clock", now + timedelta(hours=1)), _messages("ioc", "node-clock", now)
        assert [o.stale for o in proc.process_status([(t, b, now) for t, b in ahead])] == [False] * 3
        assert [o.stale for o in proc.process_status([(t, b, now) for t, b in right])] == [False] * 3
        older = _messages("ioc", "node-clock", now - timedelta(seconds=5))
        assert [o.stale for o in proc.process_status([(t, b, now) for t, b in older])] == [True] * 3
        status, health, _ = _rows(cfg.database_url)
        assert _at(status["node-clock"]) == now
        assert {_at(v) for v in health.values()} == {now}
    finally:
        engine.dispose()
