"""The CLI's two passes (``enrolldb.cli._chunks``, ``_bulk``, ``_spool``), in process.

What these tests guard is structural, not timed: pass 1 keeps 8 bytes per line (no row),
pass 2 sends the first chunk while most of the input is still unread, the lines of one key
(as the database compares keys) share a chunk, and the report gets the results back in
input order. A peak-RSS check would be a timing-like flake; the structure is what keeps the
memory flat (the measured numbers are in the commit that introduced it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

import pytest

from enrolldb.cli._bulk import BulkRun
from enrolldb.cli._chunks import KEY_BATCH, KeyIndex, iter_chunks
from enrolldb.cli._common import Refused
from enrolldb.cli._input import Problems
from enrolldb.cli._spool import ResultSpool
from pgtypes import Conn

Send = Callable[[Conn, Sequence[str]], list[tuple[str, dict[str, Any]]]]


def bulk(
    read: Callable[[Problems], Iterable[str]], send: Send, size: int, dsn: str, *, dry_run: bool
) -> BulkRun[str]:
    """A run whose items are keys."""
    return BulkRun(
        command="test",
        read=read,
        key=lambda key: key,
        send=send,
        chunk_size=size,
        dry_run=dry_run,
        dsn=dsn,
        source="test input",
        empty="nothing",
        progress="testing",
    )


def no_database() -> Conn:
    raise AssertionError("the database was asked although the input fits in one chunk")


def test_pass_one_keeps_one_eight_byte_hash_per_line(db: Conn) -> None:
    index = KeyIndex(lambda: db, chunk_size=100)
    n = KEY_BATCH * 2 + 5
    for i in range(n):
        index.add(f"key{i}")
        assert len(index.pending) <= KEY_BATCH
    assert index.count == n
    assert index.digests.itemsize == 8
    assert len(index.digests) + len(index.pending) == n
    plan = index.plan()
    assert plan.count == n and plan.last == {}  # no key occurs twice: nothing waits


def test_an_input_of_one_chunk_asks_nothing_of_the_database() -> None:
    index = KeyIndex(no_database, chunk_size=10)
    for i in range(10):
        index.add(f"key{i}")
    plan = index.plan()
    assert plan.digests is None
    assert list(iter_chunks(plan, iter("abcdefghij"), 10)) == [list(enumerate("abcdefghij"))]


def test_keys_the_database_compares_equal_share_a_chunk(db: Conn) -> None:
    # Case, surrounding whitespace and Unicode normalisation: the database's comparison.
    keys = ["Café", "k1", "k2", "k3", " CAFE\u0301 ", "k4", "k5", "", "café", "k6", "  "]
    index = KeyIndex(lambda: db, chunk_size=3)
    for key in keys:
        index.add(key)
    plan = index.plan()
    chunks = list(iter_chunks(plan, iter(keys), 3))
    assert sorted(position for chunk in chunks for position, _ in chunk) == list(range(len(keys)))
    together = [chunk for chunk in chunks if any(key == "Café" for _, key in chunk)]
    assert len(together) == 1
    assert {key for _, key in together[0]} >= {"Café", " CAFE\u0301 ", "café"}
    assert all(len(chunk) <= 3 for chunk in chunks)
    # Invalid keys (empty after trimming) are not grouped: the database refuses each alone.
    assert plan.digests is not None and plan.digests[7] == plan.digests[10] == 0


def test_pass_two_sends_the_first_chunk_before_reading_the_rest(db_dsn: str) -> None:
    n, size = 200, 10
    keys = [f"key{i}" for i in range(n)]
    keys[150] = "KEY3"  # the same learner as line 3: waits for line 150, then one chunk
    reads: list[int] = []  # items pulled so far, per pass

    def read(problems: Problems) -> Iterator[str]:
        reads.append(0)
        for key in keys:
            reads[-1] += 1
            yield key

    pulled_at_send: list[int] = []
    sent: list[list[str]] = []

    def send(conn: Conn, chunk: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        pulled_at_send.append(reads[-1])
        sent.append(list(chunk))
        return [("ok", {"key": key}) for key in chunk]

    with ExitStack() as stack:
        outcome = bulk(read, send, size, db_dsn, dry_run=True).run(stack)
        assert len(reads) == 2, "read twice: once to check, once to send"
        assert pulled_at_send[0] <= size + 1, "the first chunk went before the rest was read"
        assert any({"key3", "KEY3"} <= set(chunk) for chunk in sent)
        assert outcome.counts == {"ok": n}
        assert [record["key"] for record in outcome.spool] == keys, "reported in input order"


def test_a_bad_line_refuses_before_anything_is_sent(db_dsn: str) -> None:
    def read(problems: Problems) -> Iterator[str]:
        yield "key1"
        problems.add("line 2: bad")
        yield "key3"

    def send(conn: Conn, chunk: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        raise AssertionError("sent although the input was refused")

    with ExitStack() as stack, pytest.raises(Refused) as refused:
        bulk(read, send, 1, db_dsn, dry_run=False).run(stack)
    assert refused.value.messages == ["line 2: bad"]


def test_a_file_that_changes_between_the_passes_stops_the_run(db_dsn: str) -> None:
    passes: list[int] = []

    def read(problems: Problems) -> Iterator[str]:
        passes.append(1)
        yield from ["key1", "key2"] if len(passes) == 1 else ["key1", "key2", "key3"]

    def send(conn: Conn, chunk: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        return [("ok", {"key": key}) for key in chunk]

    with ExitStack() as stack:
        outcome = bulk(read, send, 5, db_dsn, dry_run=True).run(stack)
    assert outcome.stopped == "test input changed while it was being read; run it again"


def test_spool_gives_results_back_by_position() -> None:
    with ResultSpool() as spool:
        for position in (1, 2, 0, 4, 3, 5):
            spool.add(position, {"p": position})
        assert [record["p"] for record in spool] == [0, 1, 2, 3, 4, 5]
        assert [record["p"] for record in spool] == [0, 1, 2, 3, 4, 5], "readable twice"
