"""Every command of docs/operators.md and docs/service-authors.md runs exactly as written.

The convention (``sh`` and ``sql`` blocks are commands, run in document order; output goes
in blocks without an info string; example names are placeholders) is described in
tests/docblocks.py. A block that cannot run is listed in ``SKIP`` with the reason; a stale
entry fails, so the list stays small and true.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from docblocks import REPO, RUNNABLE, Block, Placeholders, Runner, blocks, drop_roles

DOCS = REPO / "docs"

#: (document, first line of the block) -> why it is not run.
SKIP: dict[tuple[str, str], str] = {
    ("operators.md", "export DATABASE_URL='postgresql://support_staff@db.internal:5432/lms'"): (
        "'Connecting' comes before 'Roles and privileges' creates support_staff; the same "
        "form runs there as the owner"
    ),
    ("operators.md", "# on the Django database; DJANGO_DATABASE_URL is its connection string"): (
        "needs a Django database; tests/test_import_mysql.py runs it as written on our tables"
    ),
    (
        "operators.md",
        "# on a host that reaches the Django database; DJANGO_MYSQL holds the client's options and",
    ): (
        "needs a Django MySQL/MariaDB database; tests/test_import_mysql.py runs it as written "
        "against MariaDB"
    ),
    ("operators.md", "SET search_path = enrolldb, public;"): (
        "a template: <ce> is the course enrollment id doctor reported"
    ),
    (
        "service-authors.md",
        "SELECT id, user_id FROM enrolldb.program_enrollments_programenrollment",
    ): ("a template for a driver: $1 and $2 are bind parameters"),
}


def runnable(doc: str) -> list[Block]:
    return [b for b in blocks(DOCS / doc) if b.lang in RUNNABLE]


def to_run(doc: str) -> list[Block]:
    return [b for b in runnable(doc) if (doc, b.first_line) not in SKIP]


@pytest.fixture
def runner_for(empty_db_dsn: str) -> Iterator[Runner]:
    params = conninfo_to_dict(empty_db_dsn)
    names = Placeholders(str(params["host"]), int(str(params["port"])), str(params["dbname"]))
    runner = Runner(empty_db_dsn, names)
    try:
        yield runner
    finally:
        runner.close()
        with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{names.dbname}_adopted" WITH (FORCE)'.encode())
        drop_roles(empty_db_dsn, names.roles, [names.dbname])


def test_skip_list_is_current() -> None:
    present = {
        (doc, b.first_line) for doc in ("operators.md", "service-authors.md") for b in runnable(doc)
    }
    assert set(SKIP) <= present, f"stale SKIP entries: {sorted(set(SKIP) - present)}"


def test_operators_md_runs_as_written(runner_for: Runner) -> None:
    """From an empty database: roles, the owner's migrate, the lock commands, ..."""
    ran = to_run("operators.md")
    assert len(ran) >= 5
    for block in ran:
        runner_for.run(block)
    with runner_for.conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM enrolldb_migrations._yoyo_migration")
        row = cur.fetchone()
    assert row is not None and row[0] > 0, "the documented migrate did not migrate"


def test_service_authors_md_runs_as_written(db_dsn: str) -> None:
    """On a migrated database: the example data, then every call, in order."""
    params = conninfo_to_dict(db_dsn)
    names = Placeholders(str(params["host"]), int(str(params["port"])), str(params["dbname"]))
    runner = Runner(db_dsn, names)
    try:
        ran = to_run("service-authors.md")
        assert len(ran) >= 6
        for block in ran:
            runner.run(block)
        # The documented story ended where the document says: bob's OMSA enrollment (3)
        # was refused at matriculation, then unlinked (a no-op), bob retired.
        keys = runner.conn.execute(
            "SELECT id, user_id, external_user_key LIKE 'retired_external_key_%'"
            " FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
        ).fetchall()
        assert keys == [(1, 1, False), (2, 2, True), (3, None, False)]
    finally:
        runner.close()
