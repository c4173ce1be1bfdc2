"""How every client function talks to PostgreSQL: one SQL call, joined to the caller's
transaction, retried when PostgreSQL reports a transient conflict.

Why a savepoint around each call: the client joins the caller's transaction (it never
commits for the caller), yet a deadlock or serialization failure must be retried, and a
failed call should not poison the caller's transaction. A savepoint gives both: the call
is undone alone and may be tried again. On an autocommit connection the call runs in its
own transaction instead. One savepoint per *call* (a call handles thousands of learners),
so the 64-subtransaction cliff is never approached by the library itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from enrolldb.errors import TransientConflictError, mapped_errors

T = TypeVar("T")

#: How many times a call is tried when PostgreSQL reports 40001 or 40P01.
MAX_ATTEMPTS = 4

_SAVEPOINT = "enrolldb_call"


def run_call(conn: psycopg.Connection[Any], call: Callable[[psycopg.Cursor[Any]], T]) -> T:
    """Run ``call(cursor)`` atomically inside the caller's transaction, with bounded retries
    of transient conflicts, mapping database errors to :mod:`enrolldb.errors`."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with mapped_errors():
                return _once(conn, call)
        except TransientConflictError as exc:
            if attempt == MAX_ATTEMPTS or not _retry_can_succeed(conn, exc):
                raise
            # Jittered backoff: two transactions that deadlocked should not meet again.
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_can_succeed(conn: psycopg.Connection[Any], exc: TransientConflictError) -> bool:
    """A serialization failure (40001) inside the caller's REPEATABLE READ or SERIALIZABLE
    transaction comes from the transaction's snapshot, which a savepoint does not renew:
    trying again inside it would fail the same way, so the caller gets the error at once
    and retries its whole transaction. A deadlock (40P01), or any conflict of a call that
    owns its transaction, may succeed on the next try."""
    if conn.autocommit or exc.sqlstate != "40001":
        return True
    row = conn.execute("SELECT pg_catalog.current_setting('transaction_isolation')").fetchone()
    return row is not None and row[0] == "read committed"


def _once(conn: psycopg.Connection[Any], call: Callable[[psycopg.Cursor[Any]], T]) -> T:
    if conn.autocommit:
        with conn.transaction(), conn.cursor() as cur:
            return call(cur)
    # Non-autocommit: psycopg opens the caller's transaction with the first statement if
    # none is open; the savepoint then scopes our call inside it.
    with conn.cursor() as cur:
        cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            result = call(cur)
        except psycopg.Error:
            status = conn.info.transaction_status
            if status == psycopg.pq.TransactionStatus.INERROR:
                cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            elif status == psycopg.pq.TransactionStatus.INTRANS:
                # psycopg refused an argument before sending it (a NUL character): the
                # transaction is fine, and the savepoint must not outlive the call.
                cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            raise
        cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        return result
