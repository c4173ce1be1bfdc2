"""Client calls of the registrar's writes (docs/reference.md, write_program_enrollments,
write_program_course_enrollments): one Python function per SQL
function, one SQL call each.

The requests go to the database as one JSON array (``%(requests)s::jsonb``) and the outcomes
come back as one JSON object ``{external_user_key as requested: outcome}``. Outcomes are data,
not exceptions: ``duplicated``, ``invalid-key``, ``invalid-status``, ``invalid-curriculum``,
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

#: The outcomes that mean "applied" for each function; anything else is a failure.
PROGRAM_ENROLLMENT_STATUSES = frozenset({"enrolled", "pending", "suspended", "canceled", "ended"})
PROGRAM_COURSE_ENROLLMENT_STATUSES = frozenset({"active", "inactive"})

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


def _outcomes(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object of outcomes, got {type(value).__name__}")
    return {str(key): str(outcome) for key, outcome in value.items()}


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
    program = _program_uuid(program_uuid)
    payload = [_program_request(request) for request in requests]

    def call(cur: psycopg.Cursor[Any]) -> dict[str, str]:
        cur.execute(
            "SELECT enrolldb.write_program_enrollments("
            "%(program)s::uuid, %(requests)s::jsonb, %(create)s::boolean, %(update)s::boolean"
            ") AS outcomes",
            {
                "program": program,
                "requests": Jsonb(payload),
                "create": create,
                "update": update,
            },
        )
        row = cur.fetchone()
        assert row is not None
        return _outcomes(row[0])

    return run_call(conn, call)


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
    program = _program_uuid(program_uuid)
    payload = [_course_request(request) for request in requests]

    def call(cur: psycopg.Cursor[Any]) -> dict[str, str]:
        cur.execute(
            "SELECT enrolldb.write_program_course_enrollments("
            "%(program)s::uuid, %(course)s::text, %(requests)s::jsonb, "
            "%(create)s::boolean, %(update)s::boolean"
            ") AS outcomes",
            {
                "program": program,
                "course": course_key,
                "requests": Jsonb(payload),
                "create": create,
                "update": update,
            },
        )
        row = cur.fetchone()
        assert row is not None
        return _outcomes(row[0])

    return run_call(conn, call)
