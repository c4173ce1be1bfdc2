"""Client calls of the linking API: one Python function per SQL function (docs/reference.md, Python
client).

Every function here sends exactly one SQL call per chunk, with explicit casts and explicit
result columns (``SELECT a, b FROM fn(...)``, never ``SELECT *``: a pooled connection that
prepared ``SELECT *`` breaks for good when a result type changes). No rule of linking is
re-implemented in Python; the database decides, the client carries the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from enrolldb.calls import run_call

logger = logging.getLogger("enrolldb.linking")

#: Learners per SQL call when a caller hands over more; each chunk is one call.
DEFAULT_CHUNK_SIZE = 10_000


@dataclass(frozen=True)
class LinkResult:
    """The outcome of one (external_user_key, username) pair, as the caller spelled them."""

    external_user_key: str
    username: str
    result: str  # 'linked', 'relinked' or 'failed'
    error: str | None

    @property
    def already_linked(self) -> bool:
        """Failed only because every enrollment of the key is already linked to that user
        (rule 5: nothing to do; a re-run of an applied file gives this for every line)."""
        return (
            self.result == "failed"
            and self.error is not None
            and self.error.startswith(ALREADY_LINKED_PREFIX)
            and self.error.endswith(ALREADY_LINKED_SUFFIX + self.username)
        )


#: Rule 5's message is ``ALREADY_LINKED_PREFIX <stored key> ALREADY_LINKED_SUFFIX <username>``
#: (sql/functions/020_link_program_enrollments.sql, docs/errors.md); written here only.
ALREADY_LINKED_PREFIX = "Program enrollment with external_student_key="
ALREADY_LINKED_SUFFIX = " is already linked to target account username="


@dataclass(frozen=True)
class MatriculationResult:
    """One waiting program enrollment that an SSO sign-in tried to link."""

    program_enrollment_id: int
    program_uuid: UUID
    error: str | None


def link_program_enrollments(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    external_keys_to_usernames: Mapping[str, str],
) -> dict[str, str]:
    """Link external keys to usernames: the contract of the Django function it replaces.

    Returns ``{external_user_key: error}`` for the failures only (``{}`` when all linked) and
    logs a warning per failure, as upstream does. Raises ``ValueError`` for a None key or
    username before touching the database, so a bad call never half-runs.
    """
    pairs = list(external_keys_to_usernames.items())
    if program_uuid is None:
        raise ValueError("program_uuid must not be None")
    for key, username in pairs:
        if key is None or username is None:
            raise ValueError("external user keys and usernames must not be None")
    errors: dict[str, str] = {}
    for result in link(conn, program_uuid, pairs):
        if result.error is not None:
            logger.warning(result.error)
            errors[result.external_user_key] = result.error
    return errors


def link(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    pairs: Iterable[tuple[str, str]],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> list[LinkResult]:
    """Link ``(external_user_key, username)`` pairs; one :class:`LinkResult` per pair, in
    input order. Large inputs go to the database in chunks (see :func:`iter_link_chunks`)."""
    items = list(pairs)
    results: list[LinkResult | None] = [None] * len(items)
    for indexes, chunk_results in _iter_indexed_chunks(conn, program_uuid, items, chunk_size):
        for index, result in zip(indexes, chunk_results, strict=True):
            results[index] = result
    return [result for result in results if result is not None]


def iter_link_chunks(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    pairs: Iterable[tuple[str, str]],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[list[LinkResult]]:
    """Link in chunks of about ``chunk_size`` pairs, yielding each chunk's results.

    Each chunk is one SQL call in the caller's transaction; a caller on an autocommit
    connection gets one committed transaction per chunk (the CLI does this). Occurrences of
    one stored key are always sent in the same chunk, so "provided multiple times" is
    reported exactly as a single call would: the database itself says which keys compare
    equal (``enrolldb.comparable_external_key``), Python does not guess. Within a chunk the
    results are in input order; when one key occurs in several places, the chunks group its
    occurrences, so use :func:`link` (which restores input order) or
    :func:`iter_indexed_link_chunks` (which says where each result belongs).
    """
    items = list(pairs)
    for _, chunk_results in _iter_indexed_chunks(conn, program_uuid, items, chunk_size):
        yield chunk_results


def iter_indexed_link_chunks(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    pairs: Iterable[tuple[str, str]],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[tuple[list[int], list[LinkResult]]]:
    """As :func:`iter_link_chunks`, yielding with each chunk's results the input positions
    they belong to."""
    yield from _iter_indexed_chunks(conn, program_uuid, list(pairs), chunk_size)


def _iter_indexed_chunks(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    items: list[tuple[str, str]],
    chunk_size: int,
) -> Iterator[tuple[list[int], list[LinkResult]]]:
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if program_uuid is None:
        raise ValueError("program_uuid must not be None")
    if not items:
        return
    if len(items) <= chunk_size:
        yield list(range(len(items))), _link_call(conn, program_uuid, items)
        return
    comparable = comparable_keys(conn, [key for key, _ in items])
    for chunk in group_chunks(comparable, chunk_size):
        yield chunk, _link_call(conn, program_uuid, [items[i] for i in chunk])


def comparable_keys(conn: psycopg.Connection[Any], keys: Sequence[str]) -> list[str]:
    """The form in which the database compares stored keys, for each key, in order."""

    def call(cur: psycopg.Cursor[Any]) -> list[str]:
        cur.execute(
            "SELECT COALESCE(enrolldb.comparable_external_key(k), '') "
            "FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS t (k, n) ORDER BY n",
            {"keys": list(keys)},
        )
        return [str(row[0]) for row in cur.fetchall()]

    return run_call(conn, call)


def group_chunks(comparable: Sequence[str], chunk_size: int) -> list[list[int]]:
    """Indexes of the input, grouped so that equal comparable keys share a chunk; a chunk
    exceeds ``chunk_size`` only when one key alone occurs more often than that."""
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(comparable):
        groups.setdefault(key, []).append(index)
    chunks: list[list[int]] = []
    current: list[int] = []
    for members in groups.values():
        if current and len(current) + len(members) > chunk_size:
            chunks.append(current)
            current = []
        current.extend(members)
    if current:
        chunks.append(current)
    return chunks


def _link_call(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    items: Sequence[tuple[str, str]],
) -> list[LinkResult]:
    def call(cur: psycopg.Cursor[Any]) -> list[LinkResult]:
        cur.execute(
            "SELECT external_user_key, username, result, error "
            "FROM enrolldb.link_program_enrollments("
            "%(program)s::uuid, %(keys)s::text[], %(usernames)s::text[])",
            {
                "program": str(program_uuid),
                "keys": [key for key, _ in items],
                "usernames": [username for _, username in items],
            },
        )
        return [LinkResult(*row) for row in cur.fetchall()]

    return run_call(conn, call)


def matriculate_learner(
    conn: psycopg.Connection[Any],
    user_id: int,
    organization_key: str,
    external_user_key: str,
) -> list[MatriculationResult]:
    """The SSO sign-in: link the learner's waiting enrollments of the organization's
    programs. Per-enrollment failures are returned, never raised."""

    def call(cur: psycopg.Cursor[Any]) -> list[MatriculationResult]:
        with conn.cursor(row_factory=class_row(MatriculationResult)) as typed:
            typed.execute(
                "SELECT program_enrollment_id, program_uuid, error "
                "FROM enrolldb.matriculate_learner("
                "%(user)s::integer, %(org)s::text, %(key)s::text)",
                {"user": user_id, "org": organization_key, "key": external_user_key},
            )
            return typed.fetchall()

    results = run_call(conn, call)
    for result in results:
        if result.error is not None:
            logger.warning(
                "matriculation of program enrollment %s failed: %s",
                result.program_enrollment_id,
                result.error,
            )
    return results


def unlink_program_enrollment(conn: psycopg.Connection[Any], program_enrollment_id: int) -> None:
    """Take a program enrollment back from its user (docs/reference.md,
    unlink_program_enrollment)."""

    def call(cur: psycopg.Cursor[Any]) -> None:
        cur.execute(
            "SELECT FROM enrolldb.unlink_program_enrollment(%(id)s::integer)",
            {"id": program_enrollment_id},
        )

    run_call(conn, call)


def retire_user(conn: psycopg.Connection[Any], user_id: int) -> bool:
    """Replace the retired user's external keys by salted digests; whether it had any."""

    def call(cur: psycopg.Cursor[Any]) -> bool:
        cur.execute(
            "SELECT retired FROM enrolldb.retire_user(%(user)s::integer) AS retired",
            {"user": user_id},
        )
        row = cur.fetchone()
        assert row is not None
        return bool(row[0])

    return run_call(conn, call)
