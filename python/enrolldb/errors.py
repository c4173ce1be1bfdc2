"""Exceptions raised by the enrolldb client, chosen by SQLSTATE and constraint name.

Why a mapping at all: callers should be able to catch "this external key is already
enrolled in that curriculum" without parsing PostgreSQL's message text, and the mapping
must not depend on message wording (which is localised and may change). The original
psycopg exception is always kept as ``__cause__``.

Per-learner business failures (unknown user, conflict, ...) are *not* exceptions: the SQL
functions return them as data. Exceptions are for whole-call errors (bad arguments), for
writes the schema refuses, and for transient conflicts that outlived the retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


class EnrollDBError(Exception):
    """Base class of every error raised by the enrolldb client.

    ``sqlstate`` and ``constraint`` repeat what PostgreSQL reported, when it did.
    """

    def __init__(
        self, message: str, *, sqlstate: str | None = None, constraint: str | None = None
    ) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.constraint = constraint


class NullArgumentError(EnrollDBError, ValueError):
    """A required argument, or an element inside one, was NULL/None (SQLSTATE 22004)."""


class InvalidArgumentError(EnrollDBError, ValueError):
    """A whole-call argument was malformed: arrays of different lengths, a JSON value of the
    wrong type, an unknown program or course (SQLSTATE 22023); or an argument the call's
    casts refused: a uuid that is not one (22P02), an id outside ``integer`` (22003), a
    JSON ``\\u0000`` (22P05); or a string with a NUL character, which psycopg refuses to send
    (``sqlstate`` None)."""


class UnknownUserError(EnrollDBError, LookupError):
    """The user named by id does not exist (SQLSTATE 23503 from ``matriculate_learner``)."""


class SchemaRuleViolation(EnrollDBError):
    """A write was refused by a constraint, index or integrity trigger of the schema
    (SQLSTATE class 23). Subclasses name the rules callers most often want to catch."""


class ActiveCourseEnrollmentTakenError(SchemaRuleViolation):
    """A second active program course enrollment would point at one course enrollment
    (index ``programcourseenrollment_active_course_enrollment_uq``)."""


class CourseEnrollmentMismatchError(SchemaRuleViolation):
    """A program course enrollment would point at a course enrollment of another user or
    course (trigger rule ``programcourseenrollment_course_enrollment_match_ck``)."""


class DuplicateExternalKeyError(SchemaRuleViolation):
    """The external key is already enrolled in that program and curriculum, compared
    case-insensitively (index ``programenrollment_key_program_curriculum_uq``)."""


class WaitingLearnerActiveCourseError(SchemaRuleViolation):
    """A waiting learner (organization, external key) would hold two active program course
    enrollments for one course (constraint
    ``waitinglearneractivecourse_learner_course_uq``)."""


class TransientConflictError(EnrollDBError):
    """A serialization failure or deadlock (40001/40P01) persisted after the bounded
    retries; the call changed nothing and may be tried again later."""


class CallInterruptedError(EnrollDBError):
    """The server stopped the call before it finished; nothing of it was applied (the call's
    transaction, or savepoint on a non-autocommit connection, was rolled back). Not retried
    by the client: the caller chose the limit, or the session is gone."""


class StatementTimeoutError(CallInterruptedError, TimeoutError):
    """``statement_timeout`` fired, or the statement was cancelled (SQLSTATE 57014). The
    connection stays usable; the call may be tried again."""


class LockTimeoutError(CallInterruptedError, TimeoutError):
    """``lock_timeout`` fired while the call waited for a row or table lock (SQLSTATE
    55P03). The connection stays usable; the call may be tried again."""


class ConnectionTerminatedError(CallInterruptedError, ConnectionError):
    """The server ended the session during the call: ``pg_terminate_backend``, a server
    shutdown or an idle-session timeout (SQLSTATE 57P01, 57P02, 57P03, 57P05). The
    connection is closed; open a new one and try again."""


#: Constraint name -> exception class, checked before the SQLSTATE fallbacks.
CONSTRAINT_ERRORS: dict[str, type[EnrollDBError]] = {
    "programcourseenrollment_active_course_enrollment_uq": ActiveCourseEnrollmentTakenError,
    "programcourseenrollment_course_enrollment_match_ck": CourseEnrollmentMismatchError,
    "programenrollment_key_program_curriculum_uq": DuplicateExternalKeyError,
    "learneridentity_user_fk": UnknownUserError,
    "waitinglearneractivecourse_learner_course_uq": WaitingLearnerActiveCourseError,
}

#: SQLSTATE -> exception class.
SQLSTATE_ERRORS: dict[str, type[EnrollDBError]] = {
    "22004": NullArgumentError,
    "22023": InvalidArgumentError,
    # Casts of the client's arguments, before the function runs: a program uuid that is not
    # a UUID, an id outside the integer range.
    "22P02": InvalidArgumentError,
    "22003": InvalidArgumentError,
    # A JSON argument whose text PostgreSQL cannot hold: "\u0000" (a NUL) in a key or name.
    "22P05": InvalidArgumentError,
    "40001": TransientConflictError,
    "40P01": TransientConflictError,
    "57014": StatementTimeoutError,
    "55P03": LockTimeoutError,
    "57P01": ConnectionTerminatedError,
    "57P02": ConnectionTerminatedError,
    "57P03": ConnectionTerminatedError,
    "57P05": ConnectionTerminatedError,
}

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def translate(exc: psycopg.Error) -> EnrollDBError | None:
    """The enrolldb exception for a database error, or None when it is not ours to map
    (connection failures and the like stay psycopg errors)."""
    sqlstate = exc.sqlstate
    if sqlstate is None:
        if isinstance(exc, psycopg.DataError):
            # psycopg refused to send an argument before the server saw it: a string with a
            # NUL character ("\x00"), which no PostgreSQL text value can hold.
            return InvalidArgumentError(str(exc))
        return None
    constraint = exc.diag.constraint_name
    message = exc.diag.message_primary or str(exc)
    cls = CONSTRAINT_ERRORS.get(constraint or "") or SQLSTATE_ERRORS.get(sqlstate)
    if cls is None and sqlstate.startswith("23"):
        cls = SchemaRuleViolation
    if cls is None:
        return None
    return cls(message, sqlstate=sqlstate, constraint=constraint)


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Re-raise database errors as enrolldb exceptions, keeping the original as cause."""
    try:
        yield
    except psycopg.Error as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc
