"""Linking right after a bulk load, before any ANALYZE, keeps plans linear (docs/reference.md,
Qualities).

Why: 0.1.0 linked 1,000 learners in 0.4 s but 8,000 in 57 s when the tables had never been
analyzed: one statement of a trigger was planned as a nested loop that rescanned the whole
input for every row of a table ("Rows Removed by Join Filter: 512000000"). The registrar's
normal workflow (load, then link) meets exactly that state.

How, deterministically (no clock): a few thousand learners are loaded into three programs of
one organization with autovacuum off and no ANALYZE (into fresh tables, and into tables
whose statistics describe earlier content), then linked program by program with
``auto_explain`` logging the executed plan of every statement, nested ones (functions,
triggers) included, with actual row counts. A plan is linear when no node handles more than
a bounded number of rows per learner of the call: a nested loop over the input multiplies
the rows of its inner side by the size of the input, and breaks that bound by orders of
magnitude (N = 3,000: about 3,000 rows per learner instead of a few dozen).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import enrolldb
import world
from pgtypes import Conn

N = 3_000
#: Rows a plan node may handle per learner of a call (each call links CHUNK learners). Linear
#: plans stay well below (a statement may scan one whole table: 6 rows per learner of the data
#: set, 18 per learner of a call); the quadratic ones of 0.1.0 were above 1,000.
ROWS_PER_LEARNER = 40
CHUNK = 1_000


def node_work(node: dict[str, Any]) -> int:
    """Rows a node produced and threw away, over all its loops.

    EXPLAIN reports both counts as averages per loop: a sequential scan inside a nested loop
    that reads a whole table for each of 2,000 probes shows "Rows Removed by Filter: 4000"
    with 2,000 loops, i.e. 8,000,000 rows."""
    loops = int(node.get("Actual Loops", 1))
    rows = float(node.get("Actual Rows", 0))
    removed = sum(
        float(node.get(key, 0)) for key in ("Rows Removed by Filter", "Rows Removed by Join Filter")
    )
    return int(loops * (rows + removed))


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def link_with_plans(conn: Conn, program: int) -> list[dict[str, Any]]:
    """Link every learner to program ``program``; return the plans auto_explain logged."""
    logged: list[str] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if "plan:" in message:
            logged.append(message.split("plan:", 1)[1])

    conn.add_notice_handler(collect)
    try:
        # In chunks, so that later calls meet rows the earlier ones linked, which statistics
        # taken before linking describe as waiting.
        results = enrolldb.link(
            conn, world.program_uuid(program), world.link_pairs(N), chunk_size=CHUNK
        )
    finally:
        conn.remove_notice_handler(collect)
    assert [r.result for r in results] == ["linked"] * N
    return [json.loads(text) for text in logged]


@pytest.fixture(
    params=[
        "never analyzed",
        "stale statistics",
        "analyzed before linking",
        "first planned for one learner",
    ]
)
def loaded(db: Conn, request: pytest.FixtureRequest) -> Conn:
    """N learners in three programs, loaded just now with autovacuum off: into tables never
    analyzed; into tables whose statistics describe an earlier, different content (the
    bulk-link data set, analyzed, then truncated: no row of these programs in them); or
    analyzed right after the load, while every learner waits and no course enrollment
    exists (what autovacuum sees after a load: linking then changes what the statistics
    describe).

    "first planned for one learner": analyzed as above, then the session links one learner
    and unlinks her before the bulk link. A statement of a trigger function has no parameter,
    so PostgreSQL plans it once per session and keeps that plan until a table it reads is
    analyzed or altered, whatever plan_cache_mode says: here its first plan is made for
    transition tables of one row and a course enrollment table analyzed while empty (the
    intermittent cliff of the bench's CLI section: one 10,000-learner call took over 80 s,
    the sequential scan of the course enrollments inside check_match_on_pe_update's probe
    read the whole table for every changed row)."""
    db.autocommit = True
    world.set_autovacuum(db, False)
    if request.param == "stale statistics":
        world.load_bulk_case(db, N // 3)  # ends with ANALYZE
        world.reset(db)
    world.load_programs(db, N)
    if request.param in ("analyzed before linking", "first planned for one learner"):
        db.execute("ANALYZE")
    if request.param == "first planned for one learner":
        (result,) = enrolldb.link(db, world.program_uuid(1), world.link_pairs(1))
        assert result.result == "linked"
        row = db.execute(
            "SELECT id FROM enrolldb.program_enrollments_programenrollment "
            "WHERE external_user_key = 'KEY-1' AND program_uuid = %s",
            (world.program_uuid(1),),
        ).fetchone()
        assert row is not None
        enrolldb.unlink_program_enrollment(db, row[0])
        row = db.execute(
            "SELECT count(*) FROM enrolldb.program_enrollments_programenrollment "
            "WHERE user_id IS NOT NULL"
        ).fetchone()
        assert row == (0,)
    row = db.execute(
        "SELECT count(*) FROM pg_catalog.pg_stat_user_tables "
        "WHERE schemaname = 'enrolldb' AND (last_analyze IS NOT NULL "
        "OR last_autoanalyze IS NOT NULL)"
    ).fetchone()
    assert row is not None
    if request.param == "never analyzed":
        assert row == (0,), "a table was analyzed: the test would not see missing statistics"
    db.execute("LOAD 'auto_explain'")
    for setting, value in (
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_analyze", "on"),
        ("auto_explain.log_timing", "off"),
        ("auto_explain.log_nested_statements", "on"),
        ("auto_explain.log_format", "json"),
        ("client_min_messages", "log"),
    ):
        db.execute("SELECT pg_catalog.set_config(%s, %s, false)", (setting, value))
    return db


def test_link_after_bulk_load_without_analyze_has_linear_plans(loaded: Conn) -> None:
    worst: list[tuple[int, str, str]] = []
    for program in (1, 2, 3):
        plans = link_with_plans(loaded, program)
        assert len(plans) > 10, "auto_explain logged no nested statements"
        texts = " ".join(p["Query Text"] for p in plans)
        # The statement that went quadratic in 0.1.0 is among those checked.
        assert "INSERT INTO enrolldb.waiting_learner_active_course" in texts
        for plan in plans:
            for node in walk(plan["Plan"]):
                work = node_work(node)
                if work > ROWS_PER_LEARNER * CHUNK:
                    worst.append((work, node["Node Type"], plan["Query Text"][:300]))
    assert worst == [], "plan nodes doing more than linear work:\n" + "\n".join(
        f"{work:,} rows in {kind}: {query}" for work, kind, query in sorted(worst, reverse=True)
    )
    assert enrolldb.check_integrity(loaded) == []
