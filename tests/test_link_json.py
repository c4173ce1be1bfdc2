"""``link_program_enrollments(uuid, json)`` (docs/reference.md, link_program_enrollments, issue 9
item 8).

Why: ``jsonb`` keeps only the last of two equal keys before any function sees them, so
``{"K1": "alice", "K1": "bob"}`` silently links K1 to bob through the jsonb form. The
``json`` form sees the text as sent and reports rule 2 for every occurrence, like the array
form it calls. Whole-call errors are the jsonb form's.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import psycopg.errors
import pytest

import enrolldb
from builders import (
    add_course,
    add_program,
    add_user,
    add_waiting,
    history_count,
    history_reasons,
    integrity,
    pe,
    state,
)
from pgtypes import Conn

C1 = "course-v1:GTx+JSON1+2024"


def link_json(conn: Conn, program: Any, text: str, cast: str = "json") -> Any:
    row = conn.execute(
        f"SELECT enrolldb.link_program_enrollments(%s::uuid, %s::{cast})", (program, text)
    ).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def world(db: Conn) -> dict[str, Any]:
    add_course(db, C1)
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    program = add_program(db)
    k1, _ = add_waiting(db, program, "K1", [C1])
    k2, _ = add_waiting(db, program, "K2", [C1])
    return {"program": program, "alice": alice, "bob": bob, "k1": k1, "k2": k2}


def test_a_repeated_key_fails_for_every_occurrence(db: Conn, world: dict[str, Any]) -> None:
    before = state(db)
    got = link_json(db, world["program"], '{"K1": "alice", "K1": "bob", "k1 ": "bob"}')
    assert got == {
        "K1": "external user key K1 provided multiple times",
        "k1 ": "external user key k1  provided multiple times",
    }
    assert state(db) == before  # none of them linked


def test_jsonb_form_collapses_the_same_text(db: Conn, world: dict[str, Any]) -> None:
    """The defect the json form exists for, kept visible: jsonb links K1 to bob."""
    assert link_json(db, world["program"], '{"K1": "alice", "K1": "bob"}', "jsonb") == {}
    assert pe(db, world["k1"]).user_id == world["bob"]


def test_success_returns_an_empty_object_and_links(db: Conn, world: dict[str, Any]) -> None:
    before = history_count(db)
    got = link_json(db, world["program"], '{"K1": "alice", "K2": "bob", "K3": "bob"}')
    assert got == {
        "K3": f"No program enrollment found for program uuid={world['program']} and external "
        "student key=K3"
    }
    assert (pe(db, world["k1"]).user_id, pe(db, world["k2"]).user_id) == (
        world["alice"],
        world["bob"],
    )
    assert history_reasons(db, before) == {"link_program_enrollments"}
    assert link_json(db, world["program"], "{}") == {}
    assert integrity(db) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[]", psycopg.errors.InvalidParameterValue),
        ('"K1"', psycopg.errors.InvalidParameterValue),
        ('{"K1": 5}', psycopg.errors.InvalidParameterValue),
        ('{"K1": ["alice"]}', psycopg.errors.InvalidParameterValue),
        ('{"K1": null}', psycopg.errors.NullValueNotAllowed),
        ('{"K1": "alice", "K1": null}', psycopg.errors.NullValueNotAllowed),
    ],
)
def test_whole_call_errors_match_the_jsonb_form(
    db: Conn, world: dict[str, Any], text: str, error: type[Exception]
) -> None:
    before = state(db)
    with pytest.raises(error):
        link_json(db, world["program"], text)
    with pytest.raises(error):
        link_json(db, world["program"], text, "jsonb")
    assert state(db) == before


def test_null_arguments_and_unknown_program(db: Conn, world: dict[str, Any]) -> None:
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        db.execute(
            "SELECT enrolldb.link_program_enrollments(%s::uuid, NULL::json)", (uuid.uuid4(),)
        )
    with pytest.raises(psycopg.errors.NullValueNotAllowed):
        db.execute("SELECT enrolldb.link_program_enrollments(NULL::uuid, '{}'::json)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown program"):
        link_json(db, uuid.uuid4(), '{"K1": "alice"}')
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):  # 22P02
        db.execute("SELECT enrolldb.link_program_enrollments('not-a-uuid'::uuid, '{}'::json)")


def test_untyped_literal_is_ambiguous_so_callers_say_which_form(
    db: Conn, world: dict[str, Any]
) -> None:
    """Documented in docs/service-authors.md: cast the object to json (or jsonb)."""
    with pytest.raises(psycopg.errors.AmbiguousFunction):
        db.execute(
            'SELECT enrolldb.link_program_enrollments(%s::uuid, \'{"K1": "alice"}\')',
            (world["program"],),
        )


def test_app_may_call_it_readonly_may_not(db: Conn, connect: Any, world: dict[str, Any]) -> None:
    app: Conn = connect(role="enrolldb_app")
    assert link_json(app, world["program"], '{"K1": "alice"}') == {}
    readonly: Conn = connect(role="enrolldb_readonly")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        link_json(readonly, world["program"], '{"K2": "bob"}')
    assert pe(db, world["k2"]).user_id is None


def test_long_keys_and_usernames_get_their_per_learner_errors(
    db: Conn, world: dict[str, Any]
) -> None:
    """Item 9: no input reaches a column's length limit before validation."""
    long_key, long_name = "K" * 256, "u" * 151
    got = link_json(db, world["program"], f'{{"{long_key}": "alice", "K1": "{long_name}"}}')
    assert got == {
        long_key: f"Invalid external user key {long_key}",
        "K1": f"No user found with username {long_name}",
    }
    with pytest.raises(enrolldb.InvalidArgumentError) as exc:
        enrolldb.link_program_enrollments(db, "not-a-uuid", {"K1": "alice"})
    assert exc.value.sqlstate == "22P02"
