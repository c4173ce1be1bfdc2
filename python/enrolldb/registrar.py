"""Client calls of the registrar's writes (docs/reference.md, write_program_enrollments,
write_program_course_enrollments): one Python function per SQL
function, one SQL call each.

The requests go to the database as one JSON array (``%(requests)s::jsonb``). The outcomes
come back as one JSON object ``{external_user_key as requested: outcome}``
(:func:`write_program_enrollments`), or as one :class:`WriteResult` per request in input order
with the database's ``applied`` flag (:func:`write_program_enrollment_rows`, the SQL
``..._rows`` functions): the object has one entry per spelling, so only the rows can say
which of two lines spelling one key the same way was applied. Outcomes are data, not
exceptions: ``duplicated``, ``invalid-key``, ``invalid-status``, ``invalid-curriculum``,
``conflict``, ``not-in-program``, ``not-found``, or the status written. Whole-call errors
(a None argument, neither flag, an unknown program or course) are raised as
:class:`enrolldb.errors.NullArgumentError` / :class:`enrolldb.errors.InvalidArgumentError`.
No rule is re-implemented here: the database decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from enrolldb.calls import run_call
from enrolldb.errors import InvalidArgumentError

#: The status values, in the database's order, for help texts: the database defines them
#: (enum types enrolldb_internal.program_enrollment_status and program_course_enrollment_status,
#: migration 0016) and decides every outcome; tests/test_registrar_writes.py checks these
#: copies against it. What was applied is the database's ``applied`` flag, not these lists.
PROGRAM_ENROLLMENT_STATUSES = ("enrolled", "pending", "suspended", "canceled", "ended")
PROGRAM_COURSE_ENROLLMENT_STATUSES = ("active", "inactive")

_PROGRAM_FIELDS = ("external_user_key", "status", "curriculum_uuid")
_COURSE_FIELDS = ("external_user_key", "status", "course_staff")


@dataclass(frozen=True)
class ProgramEnrollmentRequest:
    """One request of :func:`write_program_enrollments`; ``curriculum_uuid`` is needed only
    to create an enrollment."""

    external_user_key: str
    status: str
    curriculum_uuid: UUID | str | None = None


@dataclass(frozen=True)
class ProgramCourseEnrollmentRequest:
    """One request of :func:`write_program_course_enrollments`; ``course_staff`` None leaves
    the learner's staff role as it is."""

    external_user_key: str
    status: str
    course_staff: bool | None = None


@dataclass(frozen=True)
class WriteResult:
    """One request's answer, in input order: ``request_number`` counts from 1; ``applied``
    is true when the request was written (its ``outcome`` is then the status)."""

    request_number: int
    external_user_key: str
    outcome: str
    applied: bool


def _program_request(request: Mapping[str, Any] | ProgramEnrollmentRequest) -> dict[str, Any]:
    if isinstance(request, ProgramEnrollmentRequest):
        fields: dict[str, Any] = {
            "external_user_key": request.external_user_key,
            "status": request.status,
            "curriculum_uuid": request.curriculum_uuid,
        }
    else:
        # Only the keys present: a missing one is the database's to refuse, as it is.
        fields = {name: request[name] for name in _PROGRAM_FIELDS if name in request}
    if isinstance(fields.get("curriculum_uuid"), UUID):
        fields["curriculum_uuid"] = str(fields["curriculum_uuid"])
    return fields


def _course_request(
    request: Mapping[str, Any] | ProgramCourseEnrollmentRequest,
) -> dict[str, Any]:
    if isinstance(request, ProgramCourseEnrollmentRequest):
        return {
            "external_user_key": request.external_user_key,
            "status": request.status,
            "course_staff": request.course_staff,
        }
    return {name: request[name] for name in _COURSE_FIELDS if name in request}


def _program_uuid(value: UUID | str) -> UUID:
    """The program uuid as a UUID: text that is not one is the caller's bad argument
    (InvalidArgumentError, as the database says 22023), not a cast error of our SQL."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidArgumentError(f"program uuid {value!r:.80} is not a UUID") from None


_PROGRAM_ARGS = "%(program)s::uuid, %(requests)s::jsonb, %(create)s::boolean, %(update)s::boolean"
_COURSE_ARGS = (
    "%(program)s::uuid, %(course)s::text, %(requests)s::jsonb, "
    "%(create)s::boolean, %(update)s::boolean"
)


def _object_call(
    conn: psycopg.Connection[Any], function: str, args: str, params: dict[str, Any]
) -> dict[str, str]:
    """One call of a jsonb-returning write: ``{key as requested: outcome}``."""

    def call(cur: psycopg.Cursor[Any]) -> dict[str, str]:
        cur.execute(f"SELECT enrolldb.{function}({args}) AS outcomes", params)
        row = cur.fetchone()
        assert row is not None
        value = row[0]
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object of outcomes, got {type(value).__name__}")
        return {str(key): str(outcome) for key, outcome in value.items()}

    return run_call(conn, call)


def _rows_call(
    conn: psycopg.Connection[Any], function: str, args: str, params: dict[str, Any]
) -> list[WriteResult]:
    """One call of a ``..._rows`` write: one result per request, in input order."""

    def call(cur: psycopg.Cursor[Any]) -> list[WriteResult]:
        cur.execute(
            "SELECT request_number, external_user_key, outcome, applied"
            f" FROM enrolldb.{function}({args}) ORDER BY request_number",
            params,
        )
        return [
            WriteResult(int(number), str(key), str(outcome), bool(applied))
            for number, key, outcome, applied in cur.fetchall()
        ]

    return run_call(conn, call)


def _program_params(
    program_uuid: UUID | str,
    requests: Sequence[Mapping[str, Any]] | Sequence[ProgramEnrollmentRequest],
    create: bool,
    update: bool,
) -> dict[str, Any]:
    payload = [_program_request(request) for request in requests]
    return {
        "program": _program_uuid(program_uuid),
        "requests": Jsonb(payload),
        "create": create,
        "update": update,
    }


def _course_params(
    program_uuid: UUID | str,
    course_key: str,
    requests: Sequence[Mapping[str, Any]] | Sequence[ProgramCourseEnrollmentRequest],
    create: bool,
    update: bool,
) -> dict[str, Any]:
    payload = [_course_request(request) for request in requests]
    return {
        "program": _program_uuid(program_uuid),
        "course": course_key,
        "requests": Jsonb(payload),
        "create": create,
        "update": update,
    }


def write_program_enrollments(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    requests: Sequence[Mapping[str, Any]] | Sequence[ProgramEnrollmentRequest],
    *,
    create: bool,
    update: bool,
) -> dict[str, str]:
    """Create and/or update the program's enrollments (docs/reference.md,
    write_program_enrollments).

    Returns ``{external_user_key as requested: outcome}``. A mapping request may carry the
    keys ``external_user_key``, ``status`` and ``curriculum_uuid`` (a UUID or a string); other
    keys are ignored, and a missing key or status is refused by the database as a whole-call
    error (:class:`enrolldb.errors.InvalidArgumentError`, or ``NullArgumentError`` for None).
    """
    params = _program_params(program_uuid, requests, create, update)
    return _object_call(conn, "write_program_enrollments", _PROGRAM_ARGS, params)


def write_program_enrollment_rows(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    requests: Sequence[Mapping[str, Any]] | Sequence[ProgramEnrollmentRequest],
    *,
    create: bool,
    update: bool,
) -> list[WriteResult]:
    """:func:`write_program_enrollments` answered per request, in input order
    (docs/reference.md, write_program_enrollment_rows): for callers that must tell two
    requests of one key apart, such as ``enrolldb enroll`` reporting each CSV line."""
    params = _program_params(program_uuid, requests, create, update)
    return _rows_call(conn, "write_program_enrollment_rows", _PROGRAM_ARGS, params)


def write_program_course_enrollments(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    course_key: str,
    requests: Sequence[Mapping[str, Any]] | Sequence[ProgramCourseEnrollmentRequest],
    *,
    create: bool,
    update: bool,
) -> dict[str, str]:
    """Create and/or update the program's enrollments in one course (docs/reference.md,
    write_program_course_enrollments).

    Returns ``{external_user_key as requested: outcome}``. A mapping request may carry the
    keys ``external_user_key``, ``status`` and ``course_staff`` (absent means None).
    """
    params = _course_params(program_uuid, course_key, requests, create, update)
    return _object_call(conn, "write_program_course_enrollments", _COURSE_ARGS, params)


def write_program_course_enrollment_rows(
    conn: psycopg.Connection[Any],
    program_uuid: UUID | str,
    course_key: str,
    requests: Sequence[Mapping[str, Any]] | Sequence[ProgramCourseEnrollmentRequest],
    *,
    create: bool,
    update: bool,
) -> list[WriteResult]:
    """:func:`write_program_course_enrollments` answered per request, in input order
    (docs/reference.md, write_program_course_enrollment_rows)."""
    params = _course_params(program_uuid, course_key, requests, create, update)
    return _rows_call(conn, "write_program_course_enrollment_rows", _COURSE_ARGS, params)
