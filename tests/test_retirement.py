"""retire_user (docs/reference.md, retire_user, issue 9 items 3-5): digests unique per program
enrollment, an
idempotent retirement recognised by ``retired_program_enrollment``, a salt nobody but the
owner can read, and the 0.1.0 retired keys re-retired by migration 0008.

Why these tests: a retired key must never be recoverable by the roles that read the data
(institution keys have little entropy, so a readable salt is as good as no salt), and
retiring must never fail for the data (re-enrolment after a retirement, two retirements of
one key in two programs, a key that already looks retired).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import psycopg.errors
import pytest
from psycopg import sql

import enrolldb
from builders import (
    MIGRATION_0008,
    add_course,
    add_program,
    add_realized,
    add_user,
    add_waiting,
    history,
    integrity,
    migrate_before,
    pe,
    state,
)
from enrolldb.migrate import migrate
from pgtypes import Conn

C1 = "course-v1:GTx+RET1+2024"
C2 = "course-v1:GTx+RET2+2024"
RETIRED = re.compile(r"^retired_external_key_[0-9a-f]{64}$")


def salt(conn: Conn) -> str:
    row = conn.execute("SELECT salt FROM enrolldb.retirement_salt").fetchone()
    assert row is not None
    return str(row[0])


def expected_retired(conn: Conn, pe_id: int, key: str) -> str:
    """The documented scheme, computed outside the database: sha256(salt:id:key)."""
    digest = hashlib.sha256(f"{salt(conn)}:{pe_id}:{key}".encode()).hexdigest()
    return f"retired_external_key_{digest}"


def write(conn: Conn, program: uuid.UUID, key: str, curriculum: uuid.UUID, course: str) -> int:
    """A registrar writes ``key`` into ``program`` and its ``course`` (active)."""
    assert enrolldb.write_program_enrollments(
        conn,
        program,
        [{"external_user_key": key, "status": "enrolled", "curriculum_uuid": curriculum}],
        create=True,
        update=False,
    ) == {key: "enrolled"}
    assert enrolldb.write_program_course_enrollments(
        conn,
        program,
        course,
        [{"external_user_key": key, "status": "active"}],
        create=True,
        update=False,
    ) == {key: "active"}
    row = conn.execute(
        "SELECT id FROM enrolldb.program_enrollments_programenrollment "
        "WHERE program_uuid = %s AND external_user_key = %s",
        (program, key),
    ).fetchone()
    assert row is not None
    return int(row[0])


def link(conn: Conn, program: uuid.UUID, key: str, username: str) -> None:
    assert enrolldb.link_program_enrollments(conn, program, {key: username}) == {}


def test_retire_after_reenrolment_of_the_same_key(db: Conn) -> None:
    """Item 3: GT-7 retired for alice, written again, linked to bob, retired again."""
    add_course(db, C1)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    program, curriculum = add_program(db), uuid.uuid4()
    first = write(db, program, "GT-7", curriculum, C1)
    link(db, program, "GT-7", "alice")
    assert enrolldb.retire_user(db, alice) is True
    second = write(db, program, "GT-7", curriculum, C1)
    link(db, program, "GT-7", "bob")

    assert enrolldb.retire_user(db, bob) is True

    assert pe(db, first).external_user_key == expected_retired(db, first, "GT-7")
    assert pe(db, second).external_user_key == expected_retired(db, second, "GT-7")
    assert pe(db, first).external_user_key != pe(db, second).external_user_key
    assert (pe(db, first).user_id, pe(db, second).user_id) == (alice, bob)
    assert integrity(db) == []


def test_unlink_after_two_retirements_of_one_key(db: Conn) -> None:
    """Item 4: two programs of one organization, GT-7 active in one course in each, retired
    for two users; unlinking both makes two waiting learners that must not collide."""
    add_course(db, C1)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    program_a, program_b = add_program(db), add_program(db)
    pe_a = write(db, program_a, "GT-7", uuid.uuid4(), C1)
    link(db, program_a, "GT-7", "alice")
    assert enrolldb.retire_user(db, alice) is True
    pe_b = write(db, program_b, "GT-7", uuid.uuid4(), C1)
    link(db, program_b, "GT-7", "bob")
    assert enrolldb.retire_user(db, bob) is True

    enrolldb.unlink_program_enrollment(db, pe_a)
    enrolldb.unlink_program_enrollment(db, pe_b)

    assert (pe(db, pe_a).user_id, pe(db, pe_b).user_id) == (None, None)
    waiting = db.execute(
        "SELECT lower_external_user_key, course_key FROM enrolldb.waiting_learner_active_course "
        "ORDER BY lower_external_user_key"
    ).fetchall()
    assert sorted(waiting) == sorted(
        [(pe(db, pe_a).external_user_key, C1), (pe(db, pe_b).external_user_key, C1)]
    )
    assert len({w[0] for w in waiting}) == 2
    assert integrity(db) == []


def test_a_key_that_looks_retired_is_retired_too(db: Conn) -> None:
    """Item 5: a registrar's key starting with retired_external_key_ is not left in clear."""
    add_course(db, C1)
    alice = add_user(db, "alice")
    program = add_program(db)
    lookalike = "retired_external_key_" + "ab" * 32
    pe_id, _ = add_realized(db, program, lookalike, alice, [C1])

    assert enrolldb.retire_user(db, alice) is True

    retired = pe(db, pe_id).external_user_key
    assert retired == expected_retired(db, pe_id, lookalike)
    assert retired != lookalike
    assert {h.row["external_user_key"] for h in history(db, "programenrollment", pe_id)} == {
        retired
    }


def test_retire_twice_and_after_a_relink_changes_nothing(db: Conn) -> None:
    add_course(db, C1)
    add_course(db, C2)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    program = add_program(db)
    pe_id, _ = add_realized(db, program, "GT-8", alice, {C1: "active", C2: "inactive"})
    assert enrolldb.retire_user(db, alice) is True
    retired = pe(db, pe_id).external_user_key
    assert retired is not None and RETIRED.match(retired)
    before = state(db)

    assert enrolldb.retire_user(db, alice) is True
    assert state(db) == before

    # The retired enrollment moves to bob; retiring bob must not re-hash it either.
    assert enrolldb.link(db, program, [(retired, "bob")])[0].result == "relinked"
    hist = history(db, "programenrollment", pe_id)
    assert enrolldb.retire_user(db, bob) is True
    assert pe(db, pe_id).external_user_key == retired
    assert history(db, "programenrollment", pe_id) == hist
    assert db.execute(
        "SELECT program_enrollment_id FROM enrolldb.retired_program_enrollment"
    ).fetchall() == [(pe_id,)]
    assert integrity(db) == []


# --- the salt is the owner's alone (item 5) ---------------------------------------------------


@pytest.fixture
def login_members(db_dsn: str) -> Iterator[dict[str, str]]:
    """A LOGIN role in each of enrolldb_app and enrolldb_readonly, as a DBA grants them, and
    a DSN per role. Roles are cluster-wide: dropped afterwards."""
    suffix = secrets.token_hex(4)
    names = {
        "enrolldb_app": f"harden_app_{suffix}",
        "enrolldb_readonly": f"harden_ro_{suffix}",
    }
    with psycopg.connect(db_dsn, autocommit=True) as admin:
        for group, name in names.items():
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                    sql.Identifier(name), sql.Identifier(group)
                )
            )
    try:
        yield {group: f"{db_dsn} user={name}" for group, name in names.items()}
    finally:
        with psycopg.connect(db_dsn, autocommit=True) as admin:
            for name in names.values():
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def readable_text(conn: Conn) -> str:
    """Everything ``conn``'s role can SELECT in schema enrolldb, as one text."""
    tables = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_catalog.pg_class AS c "
        "WHERE c.relnamespace = 'enrolldb'::regnamespace AND c.relkind IN ('r', 'v', 'm') "
        "AND pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY 1"
    ).fetchall()
    parts: list[str] = []
    for (table,) in tables:
        rows = conn.execute(
            sql.SQL("SELECT t::text FROM {} AS t").format(sql.SQL(table))
        ).fetchall()
        parts.extend(str(r[0]) for r in rows)
    return "\n".join(parts)


@pytest.mark.parametrize("group", ["enrolldb_app", "enrolldb_readonly"])
def test_readers_cannot_read_the_salt_nor_recompute_a_retired_key(
    db: Conn, login_members: dict[str, str], group: str
) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    program = add_program(db)
    pe_id, _ = add_waiting(db, program, "GT-SECRET-77", [C1])
    link(db, program, "GT-SECRET-77", "alice")
    enrolldb.unlink_program_enrollment(db, pe_id)
    link(db, program, "GT-SECRET-77", "alice")  # a history with several rows
    assert enrolldb.retire_user(db, alice) is True
    retired = pe(db, pe_id).external_user_key

    with psycopg.connect(login_members[group], autocommit=True) as reader:
        assert reader.execute("SELECT current_user").fetchone() != ("postgres",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT salt FROM enrolldb.retirement_salt")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT enrolldb_internal.retired_external_key(1, 'GT-SECRET-77')")
        seen = readable_text(reader)
        assert "gt-secret-77" not in seen.lower()
        hist = reader.execute(
            "SELECT external_user_key FROM "
            "enrolldb.program_enrollments_historicalprogramenrollment WHERE id = %s",
            (pe_id,),
        ).fetchall()
        assert len(hist) >= 4 and set(hist) == {(retired,)}  # it reads the history
    # Nobody but the owner holds any privilege on the salt.
    grants = db.execute(
        "SELECT a.grantee, a.privilege_type FROM pg_catalog.pg_class AS c, "
        "LATERAL pg_catalog.aclexplode(c.relacl) AS a "
        "WHERE c.oid = 'enrolldb.retirement_salt'::regclass AND a.grantee <> c.relowner"
    ).fetchall()
    assert grants == []
    assert db.execute(
        "SELECT pg_catalog.has_function_privilege('public', "
        "'enrolldb_internal.retired_external_key(integer, text)', 'EXECUTE')"
    ).fetchone() == (False,)


# --- upgrade from 0.1.0 -----------------------------------------------------------------------


def test_migration_re_retires_keys_retired_by_0_1_0(empty_db_dsn: str) -> None:
    migrate_before(empty_db_dsn, MIGRATION_0008)
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        add_course(conn, C1)
        alice = add_user(conn, "alice")
        program = add_program(conn)
        pe_id, _ = add_realized(conn, program, "GT-OLD-1", alice, [C1])
        old_salt = salt(conn)
        old_digest = hashlib.sha256(f"{old_salt}GT-OLD-1".encode()).hexdigest()
        old_key = f"retired_external_key_{old_digest}"
        # What 0.1.0's retire_user did: live row and history rows.
        conn.execute(
            "UPDATE enrolldb.program_enrollments_programenrollment "
            "SET external_user_key = %s WHERE id = %s",
            (old_key, pe_id),
        )
        conn.execute(
            "UPDATE enrolldb.program_enrollments_historicalprogramenrollment "
            "SET external_user_key = %s WHERE id = %s",
            (old_key, pe_id),
        )

    migrate(empty_db_dsn)

    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        assert salt(conn) != old_salt  # every reader could read the old one
        new_key = pe(conn, pe_id).external_user_key
        assert new_key == expected_retired(conn, pe_id, old_key)
        assert {h.row["external_user_key"] for h in history(conn, "programenrollment", pe_id)} == {
            new_key
        }
        assert conn.execute(
            "SELECT program_enrollment_id FROM enrolldb.retired_program_enrollment"
        ).fetchall() == [(pe_id,)]
        assert enrolldb.retire_user(conn, alice) is True
        assert pe(conn, pe_id).external_user_key == new_key  # already retired
        assert integrity(conn) == []


def test_retire_without_a_salt_refuses_and_changes_nothing(db: Conn) -> None:
    add_course(db, C1)
    alice = add_user(db, "alice")
    pe_id, _ = add_realized(db, add_program(db), "GT-NOSALT", alice, [C1])
    db.execute("DELETE FROM enrolldb.retirement_salt")
    before = state(db)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="retirement_salt"):
        enrolldb.retire_user(db, alice)
    assert state(db) == before
    assert pe(db, pe_id).external_user_key == "GT-NOSALT"


@pytest.mark.parametrize("bad", [2**31, -(2**31) - 1])
def test_ids_outside_integer_get_the_documented_error(db: Conn, bad: int) -> None:
    """Item 9 for unlink and retire: the cast to integer refuses before the function runs;
    the client maps it to InvalidArgumentError (docs/errors.md, 22003)."""
    before = state(db)
    with pytest.raises(enrolldb.InvalidArgumentError) as exc:
        enrolldb.unlink_program_enrollment(db, bad)
    assert exc.value.sqlstate == "22003"
    with pytest.raises(enrolldb.InvalidArgumentError) as exc:
        enrolldb.retire_user(db, bad)
    assert exc.value.sqlstate == "22003"
    with pytest.raises(enrolldb.InvalidArgumentError) as exc:
        enrolldb.unlink_program_enrollment(db, 2**31 - 1)  # in range, no such row
    assert exc.value.sqlstate == "22023"
    assert enrolldb.retire_user(db, 2**31 - 1) is False
    assert state(db) == before
