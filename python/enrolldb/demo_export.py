"""A realistic Django export with every defect kind that ``enrolldb import`` handles.

``python -m enrolldb.demo_export DIR --learners N`` writes one CSV file per table (RFC 4180,
header, ``\\N`` for NULL: what ``COPY ... CSV HEADER NULL '\\N'`` writes), deterministic for
a given N. Rows are written as they are generated, never held in memory, so a million
program course enrollments cost no more memory than ten.

The population (learner number i = 1..N):

- three programs: P1 and P2 of organization ``uni`` share the courses C2 and C3; P3 of ``tech``;
- most learners are linked to user i and enrolled in P1's three courses (masters, active);
  every fifth is still waiting (no user yet, known by key);
- every tenth (i % 10 == 9) is the two-program learner: canceled in P1 (C2 inactive) and
  enrolled in P2 (C2 active), both rows on the same course enrollment. Clean: imported as is.

The defects, one learner in fifty each (the first ones at i = 1..8, so any N >= 8 has them):

====  ==========================================================  =========================
i%50  defect                                                      fate
====  ==========================================================  =========================
1     key with a trailing space (and a learner identity too)      changed (canonicalised)
2     a second program enrollment in P1 whose key differs only    refused
      in case, with its course rows                               (key_program_curriculum_uq)
3     a program course enrollment pointing at the course          refused (course_enrollment
      enrollment of another user (learner i-1)                    _match_ck)
4     two active program course enrollments (P1, P2) on one       the higher id refused
      course enrollment                                           (active_course_enrollment_uq)
5     a waiting key active for C2 in P1 and in P2 (same org)      the higher id refused
                                                                  (waitinglearneractivecourse_*)
6     program enrollment status 'withdrawn'                       refused (status_ck), and
                                                                  its course rows (fk)
7     program course enrollment status 'unenrolled'               refused (status_ck)
====  ==========================================================  =========================
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import UUID

NULL = "\\N"
CREATED = "2023-09-01 08:00:00+00"

P1 = UUID("11111111-1111-4111-8111-111111111111")
P2 = UUID("22222222-2222-4222-8222-222222222222")
P3 = UUID("33333333-3333-4333-8333-333333333333")
CURRICULUM = {
    P1: UUID("aaaaaaaa-1111-4111-8111-111111111111"),
    P2: UUID("aaaaaaaa-2222-4222-8222-222222222222"),
    P3: UUID("aaaaaaaa-3333-4333-8333-333333333333"),
}


def course(name: str) -> str:
    org = "tech" if name.startswith("T") else "uni"
    return f"course-v1:{org}+{name}+2024"


PROGRAM_COURSES = {
    P1: [course("C1"), course("C2"), course("C3")],
    P2: [course("C2"), course("C3"), course("C4")],
    P3: [course("T1"), course("T2")],
}

COLUMNS: dict[str, Sequence[str]] = {
    "auth_user": ("id", "username", "email", "is_active", "date_joined"),
    "course_overviews_courseoverview": ("id", "org", "display_name"),
    "course_modes_coursemode": ("id", "course_id", "mode_slug", "mode_display_name"),
    "student_courseenrollment": ("id", "user_id", "course_id", "created", "is_active", "mode"),
    "student_courseaccessrole": ("id", "user_id", "org", "course_id", "role"),
    "program_enrollments_program": ("program_uuid", "authoring_organization_key", "title"),
    "program_enrollments_programenrollment": (
        "id",
        "created",
        "modified",
        "user_id",
        "external_user_key",
        "program_uuid",
        "curriculum_uuid",
        "status",
    ),
    "program_enrollments_programcourseenrollment": (
        "id",
        "created",
        "modified",
        "program_enrollment_id",
        "course_enrollment_id",
        "course_key",
        "status",
    ),
    "program_enrollments_courseaccessroleassignment": (
        "id",
        "created",
        "modified",
        "role",
        "enrollment_id",
    ),
    "program_enrollments_learneridentity": (
        "id",
        "organization_key",
        "external_user_key",
        "user_id",
        "created",
        "modified",
    ),
}


class Export:
    """One open CSV writer per table and one id counter per table."""

    def __init__(self, directory: Path, stack: ExitStack) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.writers: dict[str, Any] = {}
        self.ids: dict[str, int] = {}
        for table, columns in COLUMNS.items():
            out = stack.enter_context((directory / f"{table}.csv").open("w", newline=""))
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            self.writers[table] = writer
            self.ids[table] = 0

    def row(self, table: str, *values: object) -> int:
        """Write a row whose first column is the next id; return the id."""
        self.ids[table] += 1
        self.put(table, self.ids[table], *values)
        return self.ids[table]

    def put(self, table: str, *values: object) -> None:
        self.writers[table].writerow([NULL if v is None else _text(v) for v in values])


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def key_of(i: int) -> str:
    return f"uni-{i:07d}"


def write_export(directory: Path, learners: int) -> None:
    """Write the export of ``learners`` learners into ``directory``."""
    with ExitStack() as stack:
        x = Export(directory, stack)
        _catalog(x)
        ce_of: dict[tuple[int, str], int] = {}  # (user, course) -> id, of learner i-1 and i
        for i in range(1, learners + 1):
            _learner(x, i, ce_of)
            for stale in [k for k in ce_of if k[0] < i - 1]:
                del ce_of[stale]
        staff = x.row("auth_user", "staff.ops", "ops@example.edu", True, CREATED)
        x.row("student_courseaccessrole", staff, "uni", "", "staff")


def _catalog(x: Export) -> None:
    titles = {P1: "Data Science (MS)", P2: "Statistics (MS)", P3: "Robotics (Cert)"}
    for program in PROGRAM_COURSES:
        org = "tech" if program == P3 else "uni"
        x.put("program_enrollments_program", program, org, titles[program])
    for name in ("C1", "C2", "C3", "C4", "T1", "T2"):
        key = course(name)
        x.put("course_overviews_courseoverview", key, key.split(":")[1].split("+")[0], name)
        x.row("course_modes_coursemode", key, "audit", "Audit")
        x.row("course_modes_coursemode", key, "masters", "Master's")


def _pe(x: Export, user: int | None, key: str, program: UUID, status: str) -> int:
    return x.row(
        "program_enrollments_programenrollment",
        CREATED,
        CREATED,
        user,
        key,
        program,
        CURRICULUM[program],
        status,
    )


def _pce(x: Export, pe: int, ce: int | None, course_key: str, status: str) -> int:
    return x.row(
        "program_enrollments_programcourseenrollment", CREATED, CREATED, pe, ce, course_key, status
    )


def _ce(x: Export, user: int, course_key: str, active: bool, ce_of: dict[Any, int]) -> int:
    ce = x.row("student_courseenrollment", user, course_key, CREATED, active, "masters")
    ce_of[(user, course_key)] = ce
    return ce


def _learner(x: Export, i: int, ce_of: dict[tuple[int, str], int]) -> None:
    defect = i % 50
    waiting = i % 5 == 0 or defect == 5
    key = key_of(i) + (" " if defect == 1 else "")
    user = None
    if not waiting:
        user = x.row("auth_user", f"learner{i}", f"learner{i}@example.edu", True, CREATED)
        x.row("program_enrollments_learneridentity", "uni", key, user, CREATED, CREATED)
    if i % 10 == 9 or defect == 4:
        _two_programs(x, i, key, user, both_active=defect == 4, ce_of=ce_of)
        return
    pe = _pe(x, user, key, P1, "withdrawn" if defect == 6 else "enrolled")
    for n, course_key in enumerate(PROGRAM_COURSES[P1]):
        status = "unenrolled" if defect == 7 and n == 0 else "active"
        if user is None:
            _pce(x, pe, None, course_key, status)
        elif defect == 3 and n == 0 and (i - 1, course_key) in ce_of:
            _pce(x, pe, ce_of[(i - 1, course_key)], course_key, status)  # another user's
        else:
            _pce(x, pe, _ce(x, user, course_key, True, ce_of), course_key, status)
    if defect == 2:  # the same learner again, key differing only in case
        twin = _pe(x, None, key_of(i).upper(), P1, "pending")
        _pce(x, twin, None, PROGRAM_COURSES[P1][0], "active")
    if defect == 5:  # waiting, active for C2 in P2 too
        other = _pe(x, None, key, P2, "enrolled")
        _pce(x, other, None, course("C2"), "active")
    if i % 5 == 0 and defect != 5:
        pce = _pce(x, _pe(x, None, key, P3, "pending"), None, course("T1"), "active")
        x.row("program_enrollments_courseaccessroleassignment", CREATED, CREATED, "staff", pce)


def _two_programs(
    x: Export, i: int, key: str, user: int | None, *, both_active: bool, ce_of: dict[Any, int]
) -> None:
    """Canceled in P1 (C2 inactive), enrolled in P2 (C2 active): one course enrollment."""
    shared = course("C2")
    first = _pe(x, user, key, P1, "enrolled" if both_active else "canceled")
    second = _pe(x, user, key, P2, "enrolled")
    ce = None if user is None else _ce(x, user, shared, True, ce_of)
    _pce(x, first, ce, shared, "active" if both_active else "inactive")
    _pce(x, second, ce, shared, "active")
    for course_key in PROGRAM_COURSES[P2]:
        if course_key != shared:
            ce_other = None if user is None else _ce(x, user, course_key, True, ce_of)
            _pce(x, second, ce_other, course_key, "active")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m enrolldb.demo_export",
        description="Write a realistic Django export, with every defect kind enrolldb import "
        "reports, into DIR (one CSV file per table).",
    )
    parser.add_argument("directory", metavar="DIR", type=Path)
    parser.add_argument("--learners", type=int, default=100, help="number of learners (100)")
    args = parser.parse_args(argv)
    if args.learners < 1:
        parser.error("--learners must be at least 1")
    write_export(args.directory, args.learners)
    print(f"wrote the export of {args.learners} learners to {args.directory}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
