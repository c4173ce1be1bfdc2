"""``status`` and ``doctor`` only read: on a database never migrated they create nothing.

Why: 0.1.0's ``status`` went through yoyo, whose backend creates its four tables on
connect, so checking a database (or, without a DSN, ``postgres``) left yoyo tables in
``public``. A read-only command must leave the catalog exactly as it found it, say
"not migrated" and exit non-zero.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from cli_run import enrolldb_cli
from enrolldb.dsn import LOCAL_DEFAULT
from enrolldb.migrate import status

REPO = Path(__file__).resolve().parents[1]

_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind::text FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
UNION ALL
SELECT nspname, '', 'schema' FROM pg_namespace
ORDER BY 1, 2, 3
"""


def relations(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(_RELATIONS).fetchall()


@pytest.mark.parametrize(
    "args", [["status"], ["doctor"], ["doctor", "--format", "json"]], ids=" ".join
)
def test_unmigrated_database_is_left_untouched(empty_db_dsn: str, args: list[str]) -> None:
    before = relations(empty_db_dsn)
    proc = enrolldb_cli(*args, dsn=empty_db_dsn)
    assert relations(empty_db_dsn) == before
    assert proc.returncode == 1, proc
    assert "not migrated" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_status_api_on_unmigrated_database(empty_db_dsn: str) -> None:
    before = relations(empty_db_dsn)
    st = status(empty_db_dsn)
    assert relations(empty_db_dsn) == before
    assert not st.migrated and not st.up_to_date
    assert st.applied == [] and st.pending[0] == "0001_schema"


def test_no_dsn_reads_postgres_and_creates_nothing(server_params: dict[str, Any]) -> None:
    if (server_params["host"], int(server_params["port"])) != ("127.0.0.1", 5432):
        pytest.skip("the default DSN (127.0.0.1:5432) is not the test server")
    before = relations(LOCAL_DEFAULT)
    if any(schema == "enrolldb" for schema, _, _ in before):
        pytest.skip("the postgres database of this server has enrolldb migrated into it")
    for args in (["status"], ["doctor"]):
        proc = enrolldb_cli(*args)
        assert proc.returncode == 1, proc
        assert "not migrated" in proc.stdout
    assert relations(LOCAL_DEFAULT) == before


def test_json_says_not_migrated(empty_db_dsn: str) -> None:
    proc = enrolldb_cli("doctor", "--format", "json", dsn=empty_db_dsn)
    document = json.loads(proc.stdout)
    assert document["healthy"] is False
    assert document["migrations"]["migrated"] is False
    assert document["migrations"]["applied"] == []
    assert any("not migrated" in e for e in document["errors"])


def test_a_role_that_may_not_read_the_bookkeeping_gets_one_clear_line(
    db: psycopg.Connection[Any], db_dsn: str
) -> None:
    db.execute("REVOKE SELECT ON enrolldb_migrations._yoyo_migration FROM enrolldb_readonly")
    role = f"enrolldb_reader_{secrets.token_hex(4)}"
    db.execute(f"CREATE ROLE {role} LOGIN IN ROLE enrolldb_readonly")
    try:
        proc = enrolldb_cli("status", dsn=make_conninfo(db_dsn, user=role))
    finally:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")
    assert proc.returncode == 2, proc
    assert "may not read enrolldb_migrations._yoyo_migration" in proc.stderr
    assert "the owner's next `enrolldb migrate` grants it" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["status", "doctor"])
def test_a_role_in_neither_group_is_told_to_get_membership(
    db: psycopg.Connection[Any], db_dsn: str, command: str
) -> None:
    """A migrate would not help a role outside both groups: the fix is a membership."""
    role = f"enrolldb_stranger_{secrets.token_hex(4)}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        proc = enrolldb_cli(command, dsn=make_conninfo(db_dsn, user=role))
    finally:
        db.execute(f"DROP ROLE {role}")
    assert proc.returncode == 2, proc
    assert f"{role} is a member of neither enrolldb_app nor enrolldb_readonly" in proc.stderr
    assert f'GRANT enrolldb_readonly TO "{role}";' in proc.stderr
    assert "next `enrolldb migrate`" not in proc.stderr
    assert "Traceback" not in proc.stderr
