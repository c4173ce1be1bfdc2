"""enrolldb: program enrollments enforced by PostgreSQL (schema, SQL functions, client).

The public Python surface is re-exported here so callers write ``enrolldb.migrate(dsn)``.
"""

from __future__ import annotations

import logging

from enrolldb.errors import (
    ActiveCourseEnrollmentTakenError,
    CallInterruptedError,
    ConnectionTerminatedError,
    CourseEnrollmentMismatchError,
    DuplicateExternalKeyError,
    EnrollDBError,
    InvalidArgumentError,
    LockTimeoutError,
    NullArgumentError,
    SchemaRuleViolation,
    StatementTimeoutError,
    TransientConflictError,
    UnknownUserError,
    WaitingLearnerActiveCourseError,
)
from enrolldb.integrity import Violation, check_integrity
from enrolldb.linking import (
    LinkResult,
    MatriculationResult,
    iter_indexed_link_chunks,
    iter_link_chunks,
    link,
    link_program_enrollments,
    matriculate_learner,
    retire_user,
    unlink_program_enrollment,
)
from enrolldb.migrate import MigrationStatus, migrate, rollback, status
from enrolldb.registrar import (
    ProgramCourseEnrollmentRequest,
    ProgramEnrollmentRequest,
    WriteResult,
    write_program_course_enrollment_rows,
    write_program_course_enrollments,
    write_program_enrollment_rows,
    write_program_enrollments,
)

__version__ = "0.1.0"

# A library logs; the application decides where that goes (no output unless it configures
# logging).
logging.getLogger("enrolldb").addHandler(logging.NullHandler())

__all__ = [
    "ActiveCourseEnrollmentTakenError",
    "CallInterruptedError",
    "ConnectionTerminatedError",
    "CourseEnrollmentMismatchError",
    "DuplicateExternalKeyError",
    "EnrollDBError",
    "InvalidArgumentError",
    "LinkResult",
    "LockTimeoutError",
    "MatriculationResult",
    "MigrationStatus",
    "NullArgumentError",
    "ProgramCourseEnrollmentRequest",
    "ProgramEnrollmentRequest",
    "SchemaRuleViolation",
    "StatementTimeoutError",
    "TransientConflictError",
    "UnknownUserError",
    "Violation",
    "WaitingLearnerActiveCourseError",
    "WriteResult",
    "__version__",
    "check_integrity",
    "iter_indexed_link_chunks",
    "iter_link_chunks",
    "link",
    "link_program_enrollments",
    "matriculate_learner",
    "migrate",
    "retire_user",
    "rollback",
    "status",
    "unlink_program_enrollment",
    "write_program_course_enrollment_rows",
    "write_program_course_enrollments",
    "write_program_enrollment_rows",
    "write_program_enrollments",
]
