"""Inputs that reach a column type's limit or a cast before validation get their documented
error, never a raw SQLSTATE (issue 9 item 9): matriculate_learner and both registrar writes.

Why: services map errors by SQLSTATE (22004 a NULL, 22023 a bad argument) and registrar
outcomes by name; a 22001 (string too long) or 22P02 (bad uuid text) from deep inside a
function is neither, and callers cannot tell a bad request from a broken database.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerrors

import enrolldb
from builders import (
    CURRICULUM_A,
    PROGRAM_A,
    add_user,
)
from builders import REGISTRAR_COURSE as COURSE
from builders import REGISTRAR_ORG as ORG
from enrolldb.errors import InvalidArgumentError, mapped_errors
from enrolldb.registrar import write_program_course_enrollments, write_program_enrollments
from pgtypes import Conn

LONG = "K" * 256


def sqlstate(conn: Conn, query: str, params: tuple[Any, ...]) -> str | None:
    try:
        conn.execute(query, params).fetchall()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


MATRICULATE = "SELECT * FROM enrolldb.matriculate_learner(%s::integer, %s::text, %s::text)"


@pytest.mark.parametrize(
    ("org", "key"),
    [
        ("O" * 256, "K-1"),  # 0.1.0: 22001 from the identity's varchar(255)
        ("O" * 100_000, "K-1"),
        ("", "K-1"),  # an empty organization key recorded an identity for no organization
        ("  ", "K-1"),
        ("\u200b", "K-1"),
        (ORG, LONG),
        (ORG, "   "),
        (ORG, "\u200b"),
        (ORG, "K" * 100_000),
    ],
)
def test_matriculate_long_or_invalid_inputs_are_22023(cat: Conn, org: str, key: str) -> None:
    alice = add_user(cat, "alice")
    assert sqlstate(cat, MATRICULATE, (alice, org, key)) == "22023"
    with pytest.raises(InvalidArgumentError):
        enrolldb.matriculate_learner(cat, alice, org, key)
    assert cat.execute("SELECT count(*) FROM enrolldb.learner_key_lock").fetchone() == (0,)


def test_matriculate_org_key_of_255_characters_is_accepted(cat: Conn) -> None:
    alice = add_user(cat, "alice")
    assert enrolldb.matriculate_learner(cat, alice, "O" * 255, "K-1") == []
    assert cat.execute(
        "SELECT organization_key FROM enrolldb.program_enrollments_learneridentity"
    ).fetchall() == [("O" * 255,)]


WRITE = "SELECT enrolldb.write_program_enrollments(%s::uuid, %s::jsonb, true, true)"
COURSE_WRITE = (
    "SELECT enrolldb.write_program_course_enrollments(%s::uuid, %s::text, %s::jsonb, true, true)"
)


@pytest.mark.parametrize(
    ("request_", "outcome"),
    [
        ({"external_user_key": LONG, "status": "enrolled"}, "invalid-key"),
        ({"external_user_key": "K" * 100_000, "status": "enrolled"}, "invalid-key"),
        ({"external_user_key": "K-1", "status": "enrolled", "curriculum_uuid": "x" * 300}, None),
        ({"external_user_key": "K-1", "status": "enrolled", "curriculum_uuid": "1234"}, None),
        (
            {
                "external_user_key": "K-1",
                "status": "enrolled",
                "curriculum_uuid": "{" + str(CURRICULUM_A) + "}x",
            },
            None,
        ),
        ({"external_user_key": "K-1", "status": "e" * 300, "curriculum_uuid": "x"}, None),
    ],
)
def test_program_write_request_limits_are_outcomes(
    cat: Conn, request_: dict[str, Any], outcome: str | None
) -> None:
    """Over-long keys and statuses, garbage curriculum uuid text: per-request outcomes."""
    got = write_program_enrollments(cat, PROGRAM_A, [request_], create=True, update=True)
    expected = outcome or (
        "invalid-status" if len(request_["status"]) > 9 else "invalid-curriculum"
    )
    assert got == {request_["external_user_key"]: expected}
    assert cat.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_programenrollment"
    ).fetchone() == (0,)


@pytest.mark.parametrize(
    "request_",
    [
        {"external_user_key": 12, "status": "enrolled"},
        {"external_user_key": ["K"], "status": "enrolled"},
        {"external_user_key": "K-1", "status": True},
        {"external_user_key": "K-1", "status": "enrolled", "curriculum_uuid": 7},
        {"external_user_key": "K-1", "status": "enrolled", "curriculum_uuid": {"a": 1}},
    ],
)
def test_program_write_non_string_fields_are_22023(cat: Conn, request_: dict[str, Any]) -> None:
    assert sqlstate(cat, WRITE, (PROGRAM_A, json.dumps([request_]))) == "22023"


@pytest.mark.parametrize(
    "request_",
    [
        {"external_user_key": 12, "status": "active"},
        {"external_user_key": "K-1", "status": 1},
        {"external_user_key": "K-1", "status": "active", "course_staff": "yes"},
        {"external_user_key": "K-1", "status": "active", "course_staff": 1},
    ],
)
def test_course_write_non_string_fields_are_22023(cat: Conn, request_: dict[str, Any]) -> None:
    assert sqlstate(cat, COURSE_WRITE, (PROGRAM_A, COURSE, json.dumps([request_]))) == "22023"


@pytest.mark.parametrize("course", ["c" * 256, "c" * 100_000, ""])
def test_course_write_unknown_or_over_long_course_is_22023(cat: Conn, course: str) -> None:
    requests = json.dumps([{"external_user_key": "K-1", "status": "active"}])
    assert sqlstate(cat, COURSE_WRITE, (PROGRAM_A, course, requests)) == "22023"


def test_course_write_over_long_key_is_an_outcome(cat: Conn) -> None:
    got = write_program_course_enrollments(
        cat,
        PROGRAM_A,
        COURSE,
        [{"external_user_key": LONG, "status": "active"}],
        create=True,
        update=True,
    )
    assert got == {LONG: "invalid-key"}


@pytest.mark.parametrize("program", ["not-a-uuid", "x" * 300])
def test_client_program_uuid_text_is_an_invalid_argument(cat: Conn, program: str) -> None:
    """The client casts the program uuid; garbage text is InvalidArgumentError, not 22P02."""
    with pytest.raises(InvalidArgumentError):
        write_program_enrollments(
            cat,
            program,
            [{"external_user_key": "K-1", "status": "enrolled"}],
            create=True,
            update=True,
        )
    with pytest.raises(InvalidArgumentError):
        write_program_course_enrollments(
            cat,
            program,
            COURSE,
            [{"external_user_key": "K-1", "status": "active"}],
            create=True,
            update=True,
        )


def test_garbage_sqlstates_never_leak_from_the_raw_functions(cat: Conn) -> None:
    """A raw call with a bad uuid literal fails in the caller's own cast (22P02 is the
    caller's), never inside the function: the functions take typed uuid arguments."""
    assert sqlstate(cat, WRITE, ("nope", "[]")) == pgerrors.InvalidTextRepresentation.sqlstate


def test_json_nul_escape_is_an_invalid_argument(cat: Conn) -> None:
    """``\\u0000`` in the json form's text: PostgreSQL says 22P05 (no text value holds a NUL),
    which the client maps to InvalidArgumentError; nothing is written."""
    query = "SELECT enrolldb.link_program_enrollments(%s, %s::json)"
    params = (PROGRAM_A, '{"\\u0000": "u1"}')
    assert sqlstate(cat, query, params) == "22P05"
    with pytest.raises(InvalidArgumentError) as caught, mapped_errors():
        cat.execute(query, params)
    assert caught.value.sqlstate == "22P05"


@pytest.mark.parametrize("autocommit", [True, False])
def test_client_nul_character_is_an_invalid_argument(
    cat: Conn, connect: Any, autocommit: bool
) -> None:
    """psycopg refuses to send a string with a NUL (a DataError without SQLSTATE): the client
    raises InvalidArgumentError, and inside the caller's transaction leaves no savepoint."""
    alice = add_user(cat, "alice")
    conn: Conn = connect(autocommit=autocommit)
    with pytest.raises(InvalidArgumentError) as caught:
        enrolldb.link(conn, PROGRAM_A, [("K\x00", "alice")])
    assert caught.value.sqlstate is None
    with pytest.raises(InvalidArgumentError):
        enrolldb.link(conn, PROGRAM_A, [("K-1", "al\x00ice")])
    with pytest.raises(InvalidArgumentError):
        enrolldb.matriculate_learner(conn, alice, ORG, "K\x00")
    if not autocommit:
        with pytest.raises(pgerrors.InvalidSavepointSpecification):
            conn.execute("RELEASE SAVEPOINT enrolldb_call")
        conn.rollback()
    assert enrolldb.matriculate_learner(conn, alice, ORG, "K-1") == []
    conn.commit()
    assert cat.execute(
        "SELECT organization_key, external_user_key"
        " FROM enrolldb.program_enrollments_learneridentity"
    ).fetchall() == [(ORG, "K-1")]
