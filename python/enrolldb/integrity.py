"""Client call of ``enrolldb.check_integrity()``: the health check behind ``doctor``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from enrolldb.calls import run_call


@dataclass(frozen=True)
class Violation:
    """One row of ``check_integrity()``: a state that breaks a rule of enrolldb."""

    violation: str
    program_enrollment_id: int | None
    program_course_enrollment_id: int | None
    course_enrollment_id: int | None
    detail: str


def check_integrity(conn: psycopg.Connection[Any]) -> list[Violation]:
    """Every violation found; an empty list means healthy."""

    def call(cur: psycopg.Cursor[Any]) -> list[Violation]:
        with conn.cursor(row_factory=class_row(Violation)) as typed:
            typed.execute(
                "SELECT violation, program_enrollment_id, program_course_enrollment_id, "
                "course_enrollment_id, detail FROM enrolldb.check_integrity()"
            )
            return typed.fetchall()

    return run_call(conn, call)
