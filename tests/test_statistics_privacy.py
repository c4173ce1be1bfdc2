"""Planner statistics never show a reader an external key (migration 0010).

pg_stats shows a column's most common values and histogram to every role that may SELECT
the column. Readers may read the key columns, so after an ANALYZE they saw the most common
keys; after retire_user they still saw the clear key until the next ANALYZE (a retired
key is meant to be unrecoverable by them). The key columns now have statistics target 0,
and 0010 removes what an earlier ANALYZE collected.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

import enrolldb
from enrolldb.migrate import migrate, rollback
from scenario import Conn, add_course, add_program, add_realized, add_user, add_waiting

C1 = "course-v1:GTx+STAT1+2024"
THIS_MIGRATION = "0010_key_columns_without_statistics"
KEY_COLUMNS = {
    ("program_enrollments_programenrollment", "external_user_key"),
    ("program_enrollments_historicalprogramenrollment", "external_user_key"),
    ("program_enrollments_learneridentity", "external_user_key"),
    ("waiting_learner_active_course", "lower_external_user_key"),
}
READER_STATS = """
SELECT tablename, attname,
       coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '')
FROM pg_catalog.pg_stats WHERE schemaname = 'enrolldb'
"""


@pytest.fixture
def reader_dsn(db_dsn: str) -> Iterator[str]:
    """A LOGIN member of enrolldb_readonly, as a DBA grants it (cluster-wide: dropped)."""
    name = f"stats_ro_{secrets.token_hex(4)}"
    with psycopg.connect(db_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE enrolldb_readonly").format(sql.Identifier(name))
        )
    try:
        yield f"{db_dsn} user={name}"
    finally:
        with psycopg.connect(db_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def seed(db: Conn) -> tuple[int, str]:
    """Keys in every key column, most of them in two programs (common values); returns the
    user with a linked enrollment and their key."""
    add_course(db, C1)
    programs = [add_program(db), add_program(db, "MITx")]
    for i in range(40):
        for program in programs:
            add_waiting(db, program, f"GT-STAT-{i:02d}", [C1])
    user = add_user(db, "stat_alice")
    add_realized(db, programs[0], "GT-STAT-ALICE", user, [C1])
    for org in ("GTx", "MITx"):
        db.execute(
            "INSERT INTO enrolldb.program_enrollments_learneridentity"
            " (organization_key, external_user_key, user_id) VALUES (%s, 'GT-STAT-ALICE', %s)",
            (org, user),
        )
    return user, "GT-STAT-ALICE"


def analyze(db: Conn) -> None:
    for table, _ in sorted(KEY_COLUMNS):
        db.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("enrolldb", table)))


def reader_stats(reader_dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(reader_dsn, autocommit=True) as reader:
        assert reader.execute("SELECT current_user").fetchone() != ("postgres",)
        return [(str(t), str(c), str(v)) for t, c, v in reader.execute(READER_STATS)]


def assert_no_key_in(stats: list[tuple[str, str, str]]) -> None:
    assert {(t, c) for t, c, _ in stats} & KEY_COLUMNS == set()
    leaked = [(t, c) for t, c, values in stats if "stat-" in values.lower()]
    assert leaked == []


def test_reader_sees_no_key_in_pg_stats_after_analyze_and_retire(db: Conn, reader_dsn: str) -> None:
    user, key = seed(db)
    analyze(db)
    assert enrolldb.retire_user(db, user) is True
    stats = reader_stats(reader_dsn)
    assert stats, "the reader sees the statistics of the other columns"
    assert_no_key_in(stats)
    analyze(db)
    assert_no_key_in(reader_stats(reader_dsn))
    assert key not in str(reader_stats(reader_dsn))


def test_upgrade_removes_statistics_an_earlier_analyze_collected(
    db: Conn, db_dsn: str, reader_dsn: str
) -> None:
    later: list[str] = []  # migrations after this one, rolled back first (newest first)
    while (rolled := rollback(db_dsn)) != [THIS_MIGRATION]:
        assert len(rolled) == 1, "rolled back past this migration"
        later += rolled
    seed(db)
    analyze(db)
    before = reader_stats(reader_dsn)
    # Without 0010 the reader sees keys: the test can fail.
    assert {(t, c) for t, c, _ in before} >= KEY_COLUMNS
    assert any("GT-STAT-" in values for _, _, values in before)

    assert migrate(db_dsn) == [THIS_MIGRATION, *reversed(later)]
    assert_no_key_in(reader_stats(reader_dsn))
    analyze(db)
    assert_no_key_in(reader_stats(reader_dsn))
