"""The run shared by ``link``, ``enroll`` and ``enroll-courses``: check the whole input, then
send it in chunks, each committed on its own (or all rolled back with ``--dry-run``).

The commands differ in how a line is parsed, which SQL function a chunk goes to and what
the outcomes are called; everything else is here, once: the two passes of
:mod:`enrolldb.cli._chunks`, the connection (opened only when the database is needed),
the per-chunk commit or the final rollback, counting, keeping results by input position
(:mod:`enrolldb.cli._spool`), and what happens when a run stops partway (Ctrl-C, a lost
connection, a whole-call error such as an unknown program).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import psycopg

from enrolldb.cli._chunks import KeyIndex, iter_chunks
from enrolldb.cli._common import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Refused,
    describe_error,
)
from enrolldb.cli._input import Problems, progress_bar
from enrolldb.cli._spool import ResultSpool
from enrolldb.dsn import connect, resolve_dsn
from enrolldb.errors import EnrollDBError

T = TypeVar("T")

#: A chunk's answer: for each item, in order, its outcome and the record the report shows.
Sender = Callable[[psycopg.Connection[Any], Sequence[T]], list[tuple[str, dict[str, Any]]]]


class InputChanged(Exception):
    """The file did not read the same twice (it was written to during the run)."""


@dataclass
class Connection:
    """The run's connection, opened on first use: a refused input never connects."""

    dsn: str | None
    command: str
    dry_run: bool
    _conn: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            # Autocommit: each chunk is its own committed transaction. Dry run: one
            # transaction for everything (each call inside it under a savepoint), rolled back.
            # dsn.connect: safe behind a transaction-pooling PgBouncer (no server-side
            # prepared statements; the same call runs once per chunk).
            self._conn = connect(
                resolve_dsn(self.dsn),
                autocommit=not self.dry_run,
                application_name=f"enrolldb {self.command}",
            )
        return self._conn

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            if self.dry_run:
                self._conn.rollback()
            self._conn.close()


@dataclass
class Outcome:
    """What a run did: counts by outcome, the results by input position, and why it
    stopped early (None when it ran to the end)."""

    total: int
    spool: ResultSpool
    counts: Counter[str] = field(default_factory=Counter)
    chunks: int = 0
    stopped: str | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def exit_code(self, failed: Callable[[str], bool]) -> int:
        if self.stopped is not None:
            return EXIT_INTERRUPTED if self.stopped == "interrupted" else EXIT_ERROR
        return EXIT_FAILED if any(failed(k) and n for k, n in self.counts.items()) else EXIT_OK


@dataclass
class BulkRun(Generic[T]):
    """One command's way of reading and sending: ``read(problems)`` yields the input's items
    (the same ones each time it is called), ``key`` gives an item's external user key,
    ``send`` makes one database call for a chunk."""

    command: str
    read: Callable[[Problems], Iterable[T]]
    key: Callable[[T], str]
    send: Sender[T]
    chunk_size: int
    dry_run: bool
    dsn: str | None
    source: str
    empty: str  # the refusal when the input holds no line to send
    progress: str  # the progress bar's label

    def run(self, stack: ExitStack) -> Outcome:
        """Both passes. :class:`Refused` (nothing written) when the input has a problem."""
        connection = Connection(self.dsn, self.command, self.dry_run)
        stack.callback(connection.close)
        problems = Problems()
        index = KeyIndex(connection.get, self.chunk_size)
        for item in self.read(problems):
            if not problems:  # once refused, only look for more problems
                index.add(self.key(item))
        if problems:
            raise Refused(problems.summary())
        if index.count == 0:
            raise Refused([self.empty])
        plan = index.plan()
        outcome = Outcome(index.count, stack.enter_context(ResultSpool()))
        conn = connection.get()
        try:
            with progress_bar(self.progress, index.count, sys.stderr.isatty()) as advance:
                for chunk in iter_chunks(plan, self._again(index.count), self.chunk_size):
                    answers = self.send(conn, [item for _, item in chunk])
                    for (position, _), (kind, record) in zip(chunk, answers, strict=True):
                        outcome.counts[kind] += 1
                        outcome.spool.add(position, record)
                    outcome.chunks += 1
                    advance(len(chunk))
        except (EnrollDBError, psycopg.Error, InputChanged) as exc:
            outcome.stopped = describe_error(exc)
        except KeyboardInterrupt:
            outcome.stopped = "interrupted"
        return outcome

    def _again(self, count: int) -> Iterator[T]:
        """Pass 2's items: the same as pass 1's, or :class:`InputChanged`."""
        problems = Problems()
        seen = 0
        for item in self.read(problems):
            seen += 1
            if seen > count or problems:
                break
            yield item
        if seen != count or problems:
            raise InputChanged(f"{self.source} changed while it was being read; run it again")


def stopped_message(
    command: str, outcome: Outcome, *, dry_run: bool, noun: str, nothing: str
) -> None:
    """The stderr line of a run that stopped partway."""
    if not outcome.done:
        print(f"enrolldb {command}: {outcome.stopped}; {nothing}", file=sys.stderr)
        return
    done = "rolled back (dry run)" if dry_run else "committed"
    print(
        f"enrolldb {command}: {outcome.stopped}; stopped after {outcome.chunks} chunk(s): "
        f"{outcome.done} of {outcome.total} {noun} done and {done}",
        file=sys.stderr,
    )


def print_json_report(
    head: dict[str, Any], name: str, records: Iterable[Any], tail: dict[str, Any]
) -> None:
    """One JSON object on stdout, its list ``name`` written record by record (not built)."""
    out = sys.stdout
    out.write(json.dumps(head, ensure_ascii=False)[:-1])
    out.write(f', "{name}": [' if head else f'"{name}": [')
    for n, record in enumerate(records):
        if n:
            out.write(", ")
        out.write(json.dumps(record, ensure_ascii=False))
    out.write("]")
    for key, value in tail.items():
        out.write(f", {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    out.write("}\n")
