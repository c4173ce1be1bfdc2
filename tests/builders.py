"""Data builders for every test: build enrollment states with direct INSERTs, read rows back.

Why one module: the tests used to carry their set-up helpers in four shapes (a scenario
module, a registrar fixtures module, builders inside one test file and a ``Data`` class inside
another, imported by other test files), with three different ``add_user``s and two
``two_programs``. Every test file now takes its builders from here (tests/test_test_layout.py
keeps it so).

The test connection is the database owner (postgres), so it may write the tables directly,
the way a registrar's data or a DBA's script would put them there. Writers are named
``add_*``; readers return small named tuples so that tests compare whole rows.

Sections, in order: writers (one per table, plus :func:`catalog`, the registrar tests'
programs and courses, and waiting or realized enrollments); readers; a database as an older
release left it (upgrade tests); the two-program scenario; registrar requests written through
the API; the link CLI tests' bulk program; the schema tests' ``Data`` and ``refused``; sessions
racing each other (the concurrency tests' waits on ``pg_blocking_pids``). Type aliases are in
tests/pgtypes.py, fixtures (``db``, ``connect``, ``data``, ``cat``) in tests/conftest.py.

:func:`two_programs` builds the scenario of docs/reference.md, What it is: programs A and B of one
organization share a course; learner key K has A's program enrollment canceled with its course
row inactive and B's enrolled with its course row active; the LMS user exists but nothing is
linked yet.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

import enrolldb
from enrolldb.demo_export import COLUMNS, P1, P2
from enrolldb.linking import LinkResult, MatriculationResult
from enrolldb.migrate import load_migrations, prepare_bookkeeping, yoyo_backend
from enrolldb.registrar import write_program_course_enrollments, write_program_enrollments
from pgtypes import Call, Conn, Connect, Outcome, State

ORG = "GTx"
COURSE = "course-v1:GTx+CS6035+2024_T1"
#: A fixed curriculum, for requests whose text the tests write out.
CURRICULUM = UUID("00000000-0000-4000-8000-0000000000c1")

#: The registrar tests' catalog (:func:`catalog`): two programs of one organization sharing two
#: courses, and a program of another organization; enrollments are then written through the API.
REGISTRAR_ORG = "gtx"
REGISTRAR_COURSE = "course-v1:gtx+CS101+2024"
REGISTRAR_COURSE_2 = "course-v1:gtx+CS102+2024"
PROGRAM_A = UUID("aaaaaaaa-0000-4000-8000-000000000001")
PROGRAM_B = UUID("bbbbbbbb-0000-4000-8000-000000000002")
OTHER_ORG_PROGRAM = UUID("cccccccc-0000-4000-8000-000000000003")
CURRICULUM_A = UUID("aaaaaaaa-1111-4000-8000-000000000001")
CURRICULUM_A2 = UUID("aaaaaaaa-2222-4000-8000-000000000001")
CURRICULUM_B = UUID("bbbbbbbb-1111-4000-8000-000000000002")

HISTORY_TABLES = {
    "programenrollment": "enrolldb.program_enrollments_historicalprogramenrollment",
    "programcourseenrollment": "enrolldb.program_enrollments_historicalprogramcourseenrollment",
    "courseenrollment": "enrolldb.student_courseenrollment_history",
}

#: Every table a test may change, with the columns that identify a row's state (no
#: ``modified``: comparing states before and after a call must see real changes only, and
#: ``modified`` is checked separately where it matters).
STATE_QUERIES = {
    "auth_user": "SELECT id, username, is_active FROM enrolldb.auth_user ORDER BY id",
    "programenrollment": (
        "SELECT id, modified, user_id, external_user_key, program_uuid, curriculum_uuid, status "
        "FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
    ),
    "programcourseenrollment": (
        "SELECT id, modified, program_enrollment_id, course_enrollment_id, course_key, status "
        "FROM enrolldb.program_enrollments_programcourseenrollment ORDER BY id"
    ),
    "courseenrollment": (
        "SELECT id, user_id, course_id, is_active, mode "
        "FROM enrolldb.student_courseenrollment ORDER BY id"
    ),
    "courseaccessrole": (
        "SELECT id, user_id, org, course_id, role FROM enrolldb.student_courseaccessrole "
        "ORDER BY id"
    ),
    "roleassignment": (
        "SELECT id, role, enrollment_id "
        "FROM enrolldb.program_enrollments_courseaccessroleassignment ORDER BY id"
    ),
    "learneridentity": (
        "SELECT id, organization_key, external_user_key, user_id "
        "FROM enrolldb.program_enrollments_learneridentity ORDER BY id"
    ),
    "history_pe": (
        "SELECT history_id FROM enrolldb.program_enrollments_historicalprogramenrollment "
        "ORDER BY history_id"
    ),
    "history_pce": (
        "SELECT history_id FROM enrolldb.program_enrollments_historicalprogramcourseenrollment "
        "ORDER BY history_id"
    ),
    "history_ce": (
        "SELECT history_id FROM enrolldb.student_courseenrollment_history ORDER BY history_id"
    ),
}


class PE(NamedTuple):
    id: int
    user_id: int | None
    external_user_key: str | None
    program_uuid: UUID
    curriculum_uuid: UUID
    status: str


class PCE(NamedTuple):
    id: int
    program_enrollment_id: int
    course_enrollment_id: int | None
    course_key: str
    status: str


class CE(NamedTuple):
    id: int
    user_id: int
    course_id: str
    is_active: bool
    mode: str


class Role(NamedTuple):
    user_id: int
    org: str
    course_id: str
    role: str


class History(NamedTuple):
    history_type: str
    history_change_reason: str | None
    row: dict[str, Any]


# --- writers ---------------------------------------------------------------------------------


def add_user(conn: Conn, username: str, *, is_active: bool = True) -> int:
    row = conn.execute(
        "INSERT INTO enrolldb.auth_user (username, email, is_active) "
        "VALUES (%s, %s, %s) RETURNING id",
        (username, f"{username}@example.com", is_active),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_course(
    conn: Conn,
    course_id: str = COURSE,
    *,
    org: str = ORG,
    modes: Iterable[str | tuple[str, datetime | None]] = (),
) -> str:
    """A course overview, with course modes: a slug, or (slug, expiration_datetime)."""
    conn.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org, display_name) "
        "VALUES (%s, %s, %s)",
        (course_id, org, course_id),
    )
    for mode in modes:
        slug, expires = (mode, None) if isinstance(mode, str) else mode
        add_course_mode(conn, course_id, slug, expires)
    return course_id


def add_course_mode(
    conn: Conn, course_id: str, slug: str, expiration: datetime | None = None
) -> None:
    conn.execute(
        "INSERT INTO enrolldb.course_modes_coursemode "
        "(course_id, mode_slug, mode_display_name, expiration_datetime) VALUES (%s, %s, %s, %s)",
        (course_id, slug, slug.title(), expiration),
    )


def add_program(
    conn: Conn, org: str = ORG, *, title: str = "", program_uuid: UUID | None = None
) -> UUID:
    program_uuid = program_uuid or uuid.uuid4()
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_program "
        "(program_uuid, authoring_organization_key, title) VALUES (%s, %s, %s)",
        (program_uuid, org, title or f"program {program_uuid}"),
    )
    return program_uuid


def add_program_enrollment(
    conn: Conn,
    program_uuid: UUID,
    external_user_key: str | None,
    *,
    user_id: int | None = None,
    status: str = "enrolled",
    curriculum_uuid: UUID | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO enrolldb.program_enrollments_programenrollment "
        "(user_id, external_user_key, program_uuid, curriculum_uuid, status) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (user_id, external_user_key, program_uuid, curriculum_uuid or uuid.uuid4(), status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_course_enrollment(
    conn: Conn,
    user_id: int,
    course_id: str = COURSE,
    *,
    mode: str = "audit",
    is_active: bool = True,
) -> int:
    row = conn.execute(
        "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (user_id, course_id, mode, is_active),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_program_course_enrollment(
    conn: Conn,
    program_enrollment_id: int,
    course_key: str = COURSE,
    status: str = "active",
    *,
    course_enrollment_id: int | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
        "(program_enrollment_id, course_enrollment_id, course_key, status) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (program_enrollment_id, course_enrollment_id, course_key, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_role_assignment(conn: Conn, program_course_enrollment_id: int, role: str = "staff") -> int:
    row = conn.execute(
        "INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment (role, enrollment_id) "
        "VALUES (%s, %s) RETURNING id",
        (role, program_course_enrollment_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_course_access_role(
    conn: Conn, user_id: int, course_id: str, *, org: str = ORG, role: str = "staff"
) -> None:
    conn.execute(
        "INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role) "
        "VALUES (%s, %s, %s, %s)",
        (user_id, org, course_id, role),
    )


def add_identity(conn: Conn, org: str, key: str, user_id: int) -> None:
    """An SSO learner identity (what matriculation records), inserted directly."""
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_learneridentity"
        " (organization_key, external_user_key, user_id) VALUES (%s, %s, %s)",
        (org, key, user_id),
    )


def catalog(conn: Conn) -> None:
    """The registrar tests' catalog: programs A and B of REGISTRAR_ORG sharing its two courses,
    and OTHER_ORG_PROGRAM of another organization."""
    add_program(conn, REGISTRAR_ORG, program_uuid=PROGRAM_A)
    add_program(conn, REGISTRAR_ORG, program_uuid=PROGRAM_B)
    add_program(conn, "other", program_uuid=OTHER_ORG_PROGRAM)
    add_course(conn, REGISTRAR_COURSE, org=REGISTRAR_ORG)
    add_course(conn, REGISTRAR_COURSE_2, org=REGISTRAR_ORG)


def add_waiting(
    conn: Conn,
    program_uuid: UUID,
    key: str,
    courses: dict[str, str] | Sequence[str] = (),
    *,
    status: str = "enrolled",
    curriculum_uuid: UUID | None = None,
) -> tuple[int, dict[str, int]]:
    """A waiting program enrollment with program course enrollments ``{course: status}``
    (a sequence means all active). Returns (pe id, {course: pce id})."""
    pe_id = add_program_enrollment(
        conn, program_uuid, key, status=status, curriculum_uuid=curriculum_uuid
    )
    statuses = courses if isinstance(courses, dict) else dict.fromkeys(courses, "active")
    pce_ids = {
        course: add_program_course_enrollment(conn, pe_id, course, st)
        for course, st in statuses.items()
    }
    return pe_id, pce_ids


def add_realized(
    conn: Conn,
    program_uuid: UUID,
    key: str | None,
    user_id: int,
    courses: dict[str, str] | Sequence[str] = (),
    *,
    mode: str = "masters",
    status: str = "enrolled",
    curriculum_uuid: UUID | None = None,
) -> tuple[int, dict[str, int]]:
    """A realized program enrollment as linking would have left it: each course row points
    at the user's course enrollment (created when missing: active ``mode`` for an active
    row, inactive otherwise). Returns (pe id, {course: pce id})."""
    pe_id = add_program_enrollment(
        conn, program_uuid, key, user_id=user_id, status=status, curriculum_uuid=curriculum_uuid
    )
    statuses = courses if isinstance(courses, dict) else dict.fromkeys(courses, "active")
    pce_ids = {}
    for course, st in statuses.items():
        existing = course_enrollments(conn, user_id).get(course)
        ce_id = (
            existing.id
            if existing is not None
            else add_course_enrollment(conn, user_id, course, mode=mode, is_active=st == "active")
        )
        pce_ids[course] = add_program_course_enrollment(
            conn, pe_id, course, st, course_enrollment_id=ce_id
        )
    return pe_id, pce_ids


# --- readers ---------------------------------------------------------------------------------


def user_id_of(conn: Conn, username: str) -> int:
    row = conn.execute(
        "SELECT id FROM enrolldb.auth_user WHERE username = %s", (username,)
    ).fetchone()
    assert row is not None, username
    return int(row[0])


def pe(conn: Conn, pe_id: int) -> PE:
    row = conn.execute(
        "SELECT id, user_id, external_user_key, program_uuid, curriculum_uuid, status "
        "FROM enrolldb.program_enrollments_programenrollment WHERE id = %s",
        (pe_id,),
    ).fetchone()
    assert row is not None, pe_id
    return PE(*row)


def pes(conn: Conn, program_uuid: UUID | None = None) -> list[PE]:
    rows = conn.execute(
        "SELECT id, user_id, external_user_key, program_uuid, curriculum_uuid, status "
        "FROM enrolldb.program_enrollments_programenrollment "
        "WHERE %(p)s::uuid IS NULL OR program_uuid = %(p)s::uuid ORDER BY id",
        {"p": program_uuid},
    ).fetchall()
    return [PE(*r) for r in rows]


def pce(conn: Conn, pce_id: int) -> PCE:
    row = conn.execute(
        "SELECT id, program_enrollment_id, course_enrollment_id, course_key, status "
        "FROM enrolldb.program_enrollments_programcourseenrollment WHERE id = %s",
        (pce_id,),
    ).fetchone()
    assert row is not None, pce_id
    return PCE(*row)


def pces(conn: Conn, pe_id: int) -> dict[str, PCE]:
    """The program course enrollments of a program enrollment, by course key."""
    rows = conn.execute(
        "SELECT id, program_enrollment_id, course_enrollment_id, course_key, status "
        "FROM enrolldb.program_enrollments_programcourseenrollment "
        "WHERE program_enrollment_id = %s ORDER BY course_key",
        (pe_id,),
    ).fetchall()
    return {r[3]: PCE(*r) for r in rows}


def course_enrollment(conn: Conn, ce_id: int) -> CE:
    row = conn.execute(
        "SELECT id, user_id, course_id, is_active, mode FROM enrolldb.student_courseenrollment "
        "WHERE id = %s",
        (ce_id,),
    ).fetchone()
    assert row is not None, ce_id
    return CE(*row)


def course_enrollments(conn: Conn, user_id: int) -> dict[str, CE]:
    """A user's course enrollments, by course id."""
    rows = conn.execute(
        "SELECT id, user_id, course_id, is_active, mode FROM enrolldb.student_courseenrollment "
        "WHERE user_id = %s ORDER BY course_id",
        (user_id,),
    ).fetchall()
    return {r[2]: CE(*r) for r in rows}


def roles(conn: Conn, user_id: int | None = None) -> list[Role]:
    rows = conn.execute(
        "SELECT user_id, org, course_id, role FROM enrolldb.student_courseaccessrole "
        "WHERE %(u)s::integer IS NULL OR user_id = %(u)s::integer ORDER BY id",
        {"u": user_id},
    ).fetchall()
    return [Role(*r) for r in rows]


def assignments(conn: Conn, pce_id: int) -> list[str]:
    """Pending role assignments of a program course enrollment (their roles)."""
    rows = conn.execute(
        "SELECT role FROM enrolldb.program_enrollments_courseaccessroleassignment "
        "WHERE enrollment_id = %s ORDER BY id",
        (pce_id,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def learner_identities(conn: Conn) -> list[tuple[str, str, int]]:
    rows = conn.execute(
        "SELECT organization_key, external_user_key, user_id "
        "FROM enrolldb.program_enrollments_learneridentity ORDER BY id"
    ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def program_enrollments(conn: Conn, program_uuid: UUID) -> list[tuple[Any, ...]]:
    """(external_user_key, user_id, curriculum_uuid, status) of the program, by key."""
    return conn.execute(
        "SELECT external_user_key, user_id, curriculum_uuid, status"
        " FROM enrolldb.program_enrollments_programenrollment"
        " WHERE program_uuid = %s ORDER BY external_user_key, curriculum_uuid",
        (program_uuid,),
    ).fetchall()


def course_rows(conn: Conn, program_uuid: UUID, course_key: str) -> list[tuple[Any, ...]]:
    """(external_user_key, status, course_enrollment_id) of a program's rows for a course."""
    return conn.execute(
        "SELECT pe.external_user_key, pce.status, pce.course_enrollment_id"
        " FROM enrolldb.program_enrollments_programcourseenrollment AS pce"
        " JOIN enrolldb.program_enrollments_programenrollment AS pe"
        "   ON pe.id = pce.program_enrollment_id"
        " WHERE pe.program_uuid = %s AND pce.course_key = %s ORDER BY pe.external_user_key",
        (program_uuid, course_key),
    ).fetchall()


def user_course_enrollment(conn: Conn, user_id: int, course_key: str) -> tuple[Any, ...] | None:
    """(id, is_active, mode) of the user's course enrollment in ``course_key``, if any."""
    return conn.execute(
        "SELECT id, is_active, mode FROM enrolldb.student_courseenrollment"
        " WHERE user_id = %s AND course_id = %s",
        (user_id, course_key),
    ).fetchone()


def history(conn: Conn, table: str, row_id: int) -> list[History]:
    """History rows of one live row, oldest first. ``table``: a key of HISTORY_TABLES."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {HISTORY_TABLES[table]} WHERE id = %s ORDER BY history_id",
            (row_id,),
        )
        rows = cur.fetchall()
    out = []
    for r in rows:
        htype = r.pop("history_type")
        reason = r.pop("history_change_reason")
        r.pop("history_id")
        r.pop("history_date")
        out.append(History(htype, reason, r))
    return out


def history_count(conn: Conn) -> dict[str, int]:
    """Number of history rows per history table."""
    out = {}
    for name, table in HISTORY_TABLES.items():
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        out[name] = int(row[0])
    return out


def history_reasons(conn: Conn, since: dict[str, int] | None = None) -> set[str | None]:
    """The distinct change reasons of all history rows (after the first ``since`` rows)."""
    reasons: set[str | None] = set()
    for name, table in HISTORY_TABLES.items():
        offset = (since or {}).get(name, 0)
        rows = conn.execute(
            f"SELECT history_change_reason FROM {table} ORDER BY history_id OFFSET %s", (offset,)
        ).fetchall()
        reasons.update(r[0] for r in rows)
    return reasons


def history_changes(conn: Conn, table: str) -> list[tuple[Any, ...]]:
    """(history_type, history_change_reason) of every row of a history table (its name in
    schema enrolldb), in order."""
    assert table in {t.removeprefix("enrolldb.") for t in HISTORY_TABLES.values()}
    return conn.execute(
        f"SELECT history_type, history_change_reason FROM enrolldb.{table} ORDER BY history_id"
    ).fetchall()


def state(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table a call may change (history by id): equal before and after
    means the call wrote nothing at all."""
    return {name: conn.execute(query).fetchall() for name, query in STATE_QUERIES.items()}


def integrity(conn: Conn) -> list[tuple[Any, ...]]:
    """Rows of ``enrolldb.check_integrity()`` (empty when healthy)."""
    return conn.execute(
        "SELECT violation, program_enrollment_id, program_course_enrollment_id, "
        "course_enrollment_id, detail FROM enrolldb.check_integrity()"
    ).fetchall()


# --- a database as an older release left it --------------------------------------------------

#: Migration 0008 re-retires the keys 0.1.0 retired and canonicalises keys (upgrade tests).
MIGRATION_0008 = "0008_invisible_key_characters_and_private_retirement"


def migrate_before(dsn: str, migration_id: str) -> None:
    """Apply every migration older than ``migration_id`` to the (empty) database at ``dsn``,
    as a release before it left it, so that a test can load old-style data and upgrade."""
    migrations = load_migrations()
    prepare_bookkeeping(dsn, migrations)
    with yoyo_backend(dsn) as backend, backend.lock():
        pending = backend.to_apply(migrations)
        earlier = [m for m in pending if m.id < migration_id]
        backend.apply_migrations_only(pending.__class__(earlier))


# --- the two-program scenario of docs/reference.md, What it is ----------------------------


@dataclass(frozen=True)
class TwoPrograms:
    org: str
    course: str
    key: str
    username: str
    user_id: int
    program_a: UUID
    program_b: UUID
    pe_a: int
    pe_b: int
    pce_a: int
    pce_b: int


def two_programs(
    conn: Conn,
    *,
    a_first: bool = True,
    key: str = "GT-000123",
    username: str = "learner",
    org: str = ORG,
    course: str = COURSE,
    modes: Iterable[str | tuple[str, datetime | None]] = (),
    with_course: bool = True,
    with_user: bool = True,
) -> TwoPrograms:
    """Programs A and B of ``org`` sharing ``course``; key K enrolled in both, waiting: A's
    program enrollment ``canceled`` with its course row ``inactive``, B's ``enrolled`` with
    its course row ``active``. ``a_first`` decides whose rows get the lower ids (were created
    first). The LMS user ``username`` exists (unless ``with_user`` is false) with no course
    enrollment."""
    if with_course:
        add_course(conn, course, org=org, modes=modes)
    program_a = add_program(conn, org, title="Program A")
    program_b = add_program(conn, org, title="Program B")

    def make_a() -> tuple[int, int]:
        pe_id, rows = add_waiting(conn, program_a, key, {course: "inactive"}, status="canceled")
        return pe_id, rows[course]

    def make_b() -> tuple[int, int]:
        pe_id, rows = add_waiting(conn, program_b, key, {course: "active"}, status="enrolled")
        return pe_id, rows[course]

    if a_first:
        pe_a, pce_a = make_a()
        pe_b, pce_b = make_b()
    else:
        pe_b, pce_b = make_b()
        pe_a, pce_a = make_a()
    uid = add_user(conn, username) if with_user else 0
    return TwoPrograms(
        org=org,
        course=course,
        key=key,
        username=username,
        user_id=uid,
        program_a=program_a,
        program_b=program_b,
        pe_a=pe_a,
        pe_b=pe_b,
        pce_a=pce_a,
        pce_b=pce_b,
    )


# --- registrar requests (written through the API) ---------------------------------------------


def program_enrollment_requests(
    *requests: tuple[str, str], curriculum: UUID | str | None = None
) -> list[dict[str, str]]:
    """write_program_enrollments requests: one per (external_user_key, status), all in
    ``curriculum`` (default CURRICULUM_A)."""
    return [
        {"external_user_key": k, "status": s, "curriculum_uuid": str(curriculum or CURRICULUM_A)}
        for k, s in requests
    ]


def enroll_in_program(
    conn: Conn, program: Any, *requests: tuple[str, str], curriculum: Any = None
) -> dict[str, str]:
    """write_program_enrollments (create and update) of ``requests``: key -> outcome."""
    return write_program_enrollments(
        conn,
        program,
        program_enrollment_requests(*requests, curriculum=curriculum),
        create=True,
        update=True,
    )


def enroll_in_course(
    conn: Conn, program: Any, course: str, *requests: tuple[str, str], **flags: bool
) -> dict[str, str]:
    """write_program_course_enrollments of (external_user_key, status) ``requests`` (create and
    update unless ``create=False`` / ``update=False``): key -> outcome."""
    return write_program_course_enrollments(
        conn,
        program,
        course,
        [{"external_user_key": k, "status": s} for k, s in requests],
        create=flags.get("create", True),
        update=flags.get("update", True),
    )


# --- the link CLI tests' program (bulk, set-based) -------------------------------------------

LINK_PROGRAM = "11111111-1111-4111-8111-111111111111"
LINK_CURRICULUM = "22222222-2222-4222-8222-222222222222"
LINK_COURSE = "course-v1:GTx+CS6250+2024_T1"

#: Every table a link may change, and the history tables (compared whole by dry-run tests).
LINK_TABLES = (
    "program_enrollments_programenrollment",
    "program_enrollments_programcourseenrollment",
    "student_courseenrollment",
    "student_courseaccessrole",
    "program_enrollments_historicalprogramenrollment",
    "program_enrollments_historicalprogramcourseenrollment",
    "student_courseenrollment_history",
)


def seed_link_learners(conn: Conn, learners: int, *, program: str = LINK_PROGRAM) -> None:
    """A program with one course, users user1..userN and waiting enrollments key1..keyN
    (each with an active program course enrollment for the course). Set-based, so that the
    CLI tests can seed thousands of learners."""
    conn.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org) VALUES (%s, 'GTx')"
        " ON CONFLICT DO NOTHING",
        (LINK_COURSE,),
    )
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_program"
        " (program_uuid, authoring_organization_key) VALUES (%s, 'gtx')",
        (program,),
    )
    conn.execute(
        "INSERT INTO enrolldb.auth_user (username)"
        " SELECT 'user' || i FROM generate_series(1, %s) AS i",
        (learners,),
    )
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_programenrollment"
        " (external_user_key, program_uuid, curriculum_uuid, status)"
        " SELECT 'key' || i, %s, %s, 'enrolled' FROM generate_series(1, %s) AS i",
        (program, LINK_CURRICULUM, learners),
    )
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_programcourseenrollment"
        " (program_enrollment_id, course_key, status)"
        " SELECT id, %s, 'active' FROM enrolldb.program_enrollments_programenrollment"
        " WHERE program_uuid = %s",
        (LINK_COURSE, program),
    )


def links(conn: Conn) -> dict[str, str | None]:
    """external_user_key -> username of the linked user (None while waiting)."""
    rows = conn.execute(
        "SELECT pe.external_user_key, u.username"
        " FROM enrolldb.program_enrollments_programenrollment AS pe"
        " LEFT JOIN enrolldb.auth_user AS u ON u.id = pe.user_id"
    ).fetchall()
    return {str(key): (None if user is None else str(user)) for key, user in rows}


def link_tables_snapshot(conn: Conn) -> dict[str, list[str]]:
    """Every row of LINK_TABLES as text, sorted: equal before and after means nothing written."""
    return {
        table: [
            str(row[0])
            for row in conn.execute(f"SELECT t::text FROM enrolldb.{table} AS t ORDER BY t::text")
        ]
        for table in LINK_TABLES
    }


def write_csv(tmp_path: Path, text: str | bytes, name: str = "pairs.csv") -> str:
    """A file ``name`` in ``tmp_path`` holding exactly ``text`` (no newline translation)."""
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return str(path)


# --- the schema tests' rows and refusals ------------------------------------------------------

#: The courses of the schema tests (of organization edX, unlike ORG's).
EDX_COURSE_1 = "course-v1:edX+Cats+Dogs"
EDX_COURSE_2 = "course-v1:edX+Birds+Fish"

#: The constraint the match rule of a program course enrollment's course enrollment raises.
MATCH_CK = "programcourseenrollment_course_enrollment_match_ck"


class Data:
    """The schema tests' row builders on one connection (the ``data`` fixture of conftest.py),
    with their defaults: courses of edX, programs of gtx, masters course enrollments. Every
    method returns the new row's key; the INSERTs are the ``add_*`` functions above."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def user(self, username: str) -> int:
        return add_user(self.conn, username)

    def course(self, course_id: str, org: str = "edX") -> str:
        return add_course(self.conn, course_id, org=org)

    def program(self, org: str = "gtx") -> UUID:
        return add_program(self.conn, org, title=f"program of {org}")

    def ce(
        self, user_id: int, course_id: str, is_active: bool = True, mode: str = "masters"
    ) -> int:
        return add_course_enrollment(self.conn, user_id, course_id, mode=mode, is_active=is_active)

    def pe(
        self,
        program_uuid: UUID,
        user_id: int | None = None,
        key: str | None = None,
        curriculum_uuid: UUID | None = None,
        status: str = "enrolled",
    ) -> int:
        return add_program_enrollment(
            self.conn,
            program_uuid,
            key,
            user_id=user_id,
            status=status,
            curriculum_uuid=curriculum_uuid,
        )

    def pce(
        self,
        pe_id: int,
        course_key: str,
        ce_id: int | None = None,
        status: str = "active",
    ) -> int:
        return add_program_course_enrollment(
            self.conn, pe_id, course_key, status, course_enrollment_id=ce_id
        )


def refused(
    conn: Conn,
    exc_class: type[psycopg.Error],
    constraint: str | None,
    query: str,
    params: tuple[Any, ...] | dict[str, Any] = (),
) -> psycopg.Error:
    """Run ``query`` and assert it fails with exactly ``exc_class`` and ``constraint``."""
    with pytest.raises(exc_class) as info:
        conn.execute(query, params)
    exc = info.value
    assert type(exc) is exc_class, f"{type(exc).__name__}: {exc}"
    assert exc.sqlstate == exc_class.sqlstate
    assert exc.diag.constraint_name == constraint, str(exc)
    return exc


# --- sessions racing each other (the concurrency tests) ------------------------------------
#
# How these order sessions without sleeping: the first call runs in an explicit transaction
# that stays open; the second runs in a thread on another connection; the test polls
# ``pg_blocking_pids`` until the second session waits on the first, and only then commits the
# first. A second call that never waits fails the test: waiting is the evidence that the lock
# order serialises the two calls.

#: How long a test waits for a session to block, or for a blocked call to finish.
WAIT_SECONDS = 30.0

#: Rows compared between a race and the serial order of the same calls: no generated course
#: enrollment ids (a rolled back sequence value is not reused), a program course enrollment's
#: course enrollment is named by its (user, course) instead.
RACE_STATE_QUERIES = {
    "programenrollment": (
        "SELECT id, user_id, external_user_key, program_uuid, status "
        "FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
    ),
    "programcourseenrollment": (
        "SELECT pce.id, pce.program_enrollment_id, pce.course_key, pce.status, "
        "ce.user_id, ce.course_id "
        "FROM enrolldb.program_enrollments_programcourseenrollment AS pce "
        "LEFT JOIN enrolldb.student_courseenrollment AS ce ON ce.id = pce.course_enrollment_id "
        "ORDER BY pce.id"
    ),
    "courseenrollment": (
        "SELECT user_id, course_id, is_active, mode FROM enrolldb.student_courseenrollment "
        "ORDER BY user_id, course_id"
    ),
    "learneridentity": (
        "SELECT organization_key, external_user_key, user_id "
        "FROM enrolldb.program_enrollments_learneridentity ORDER BY 1, 2"
    ),
    "courseaccessrole": (
        "SELECT user_id, org, course_id, role FROM enrolldb.student_courseaccessrole "
        "ORDER BY 1, 2, 3, 4"
    ),
}


def race_state(conn: Conn) -> State:
    """The rows of RACE_STATE_QUERIES, by name."""
    return {name: conn.execute(query).fetchall() for name, query in RACE_STATE_QUERIES.items()}


def assert_healthy(conn: Conn) -> None:
    """``enrolldb.check_integrity()`` finds nothing."""
    assert integrity(conn) == []


def link_call(program: UUID, pairs: Sequence[tuple[str, str]]) -> Call:
    """``enrolldb.link(conn, program, pairs)`` on the connection it is handed."""

    def call(conn: Conn) -> list[LinkResult]:
        return enrolldb.link(conn, program, pairs)

    return call


def matriculate_call(user_id: int, key: str, org: str = ORG) -> Call:
    """``enrolldb.matriculate_learner(conn, user_id, org, key)`` on the connection it is handed."""

    def call(conn: Conn) -> list[MatriculationResult]:
        return enrolldb.matriculate_learner(conn, user_id, org, key)

    return call


def serial_outcome(conn: Conn, order: Sequence[Call]) -> Outcome:
    """Run ``order`` one call after the other in one transaction on ``conn`` (not in
    autocommit), record the outcome (results and race_state), roll back."""
    assert not conn.autocommit
    try:
        results = tuple(call(conn) for call in order)
        return results, race_state(conn)
    finally:
        conn.rollback()


def wait_until_blocked(
    observer: Conn, waiter_pid: int, holder_pid: int, pending: Future[Any] | None = None
) -> None:
    """Poll until ``waiter_pid`` waits for a lock that ``holder_pid`` holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if pending is not None and pending.done():
            pending.result()  # re-raises the call's own error, if any
            raise AssertionError(
                "the second call finished without waiting for the first one's locks"
            )
        row = observer.execute("SELECT pg_blocking_pids(%s)", (waiter_pid,)).fetchone()
        assert row is not None
        if holder_pid in row[0]:
            return
        time.sleep(0.005)
    raise AssertionError(f"session {waiter_pid} never waited for session {holder_pid}")


def race(connect: Connect, observer: Conn, first: Call, second: Call) -> tuple[object, object]:
    """``first`` runs and keeps its transaction open; ``second`` starts in a thread, must
    block on ``first``'s locks, and finishes after ``first`` commits."""
    holder = connect(autocommit=False)
    waiter = connect(autocommit=True)
    waiter.execute(f"SET lock_timeout = '{int(WAIT_SECONDS)}s'")  # never hang the suite
    first_result = first(holder)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(second, waiter)
        try:
            wait_until_blocked(observer, waiter.info.backend_pid, holder.info.backend_pid, pending)
        except BaseException:
            holder.rollback()  # let the thread finish before the pool is shut down
            raise
        holder.commit()
        second_result = pending.result(timeout=WAIT_SECONDS)
    return first_result, second_result


# --- Django export files (enrolldb import) ----------------------------------------------------

T0 = "2024-01-08 09:00:00+00"
ORG_COURSE = "course-v1:uni+C2+2024"


def write_table(
    directory: Path, table: str, header: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    with (directory / f"{table}.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["\\N" if v is None else v for v in row] for row in rows])


def minimal_export(directory: Path, **tables: list[Sequence[Any]]) -> Path:
    """An export with the catalog of demo_export (programs P1, P2, course C2) and the given
    rows (by table name, in the demo_export column order)."""
    directory.mkdir(exist_ok=True)
    rows: dict[str, list[Sequence[Any]]] = {t: [] for t in COLUMNS}
    rows["course_overviews_courseoverview"] = [[ORG_COURSE, "uni", "C2"]]
    rows["course_modes_coursemode"] = [[1, ORG_COURSE, "masters", "Master's"]]
    rows["program_enrollments_program"] = [[P1, "uni", "P1"], [P2, "uni", "P2"]]
    rows.update(tables)
    for table, columns in COLUMNS.items():
        write_table(directory, table, columns, rows[table])
    return directory


def read_report(path: Path) -> dict[tuple[str, int], dict[str, str]]:
    """The report (CSV, or JSON for a .json file) by (table, line); values as CSV has them."""
    if path.suffix == ".json":
        rows = [
            {k: "" if v is None else str(v) for k, v in r.items()}
            for r in json.loads(path.read_text())
        ]
        return {(r["table_name"], int(r["line"])): r for r in rows}
    with path.open(newline="") as f:
        return {(r["table_name"], int(r["line"])): r for r in csv.DictReader(f)}
