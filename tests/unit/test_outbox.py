import sqlite3

import pytest

from edge.outbox import Outbox, OutboxMessage


def test_messages_survive_reopen_and_leave_only_when_acked(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    seqs = box.put([OutboxMessage("a/1", b"one"), OutboxMessage("a/2", b"two")])
    box.put([OutboxMessage("a/3", b"three")])
    box.close()

    box = Outbox(path)  # as after a crash and restart
    pending = box.pending()
    assert [m.topic for m in pending] == ["a/1", "a/2", "a/3"]
    assert [m.payload for m in pending] == [b"one", b"two", b"three"]
    box.ack(seqs[:1])
    assert [m.topic for m in box.pending()] == ["a/2", "a/3"]
    assert [m.topic for m in box.pending(after_seq=seqs[1])] == ["a/3"]
    assert box.backlog() == 2
    assert box.oldest_age() is not None
    box.close()


def test_put_is_atomic(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    with pytest.raises(sqlite3.IntegrityError):
        box.put([OutboxMessage("a", b"x"), OutboxMessage(None, b"y")])  # second row violates NOT NULL
    assert box.backlog() == 0
