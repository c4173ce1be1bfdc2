"""``enrolldb doctor``: is this database healthy?

Four sections, each answering a question a DBA or support lead asks:

1. *Is the schema current?* Pending migrations and API functions whose deployed definition
   differs from ``sql/functions`` (:func:`enrolldb.status`).
2. *Are the objects that enforce the rules in place?* Constraints, indexes and triggers
   missing, different, disabled, not validated or invalid compared with the committed
   ``sql/schema.snapshot`` (:mod:`enrolldb.schema_check`); objects a DBA added are listed as
   information. Skipped while migrations are pending (the snapshot is of the latest schema).
3. *Do the rows obey the rules?* Every row of ``enrolldb.check_integrity()``, as a table,
   with what to do about each kind (docs/operators.md explains them at length).
4. *Who is exposed to the two-program pattern?* The two-program query in its case-insensitive
   form (:mod:`enrolldb.compatibility`, docs/compatibility-query.md): the verbatim form misses
   learners whose keys differ by case (``K1`` in one program, ``k1`` in the other). This is
   information, not a problem: enrolldb links these learners correctly; support staff used
   the list on the Django schema and may still want it.

Exit codes: 0 healthy, 1 never migrated, a violation, a pending migration, an out-of-date
or undeclared function, a schema object not as shipped, 2 the check itself could not run
(no server, bad DSN). Everything here only reads, so members of enrolldb_app and
enrolldb_readonly may run it; the one check that needs the owner is skipped for others and
said so (the schema-object check reads only catalogs: everyone gets it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table
from rich.text import Text

from enrolldb.cli._common import Subparsers, add_command, add_format_option
from enrolldb.compatibility import TWO_PROGRAM_QUERY
from enrolldb.dsn import connect, one_line, resolve_dsn
from enrolldb.errors import EnrollDBError
from enrolldb.integrity import Violation, check_integrity
from enrolldb.migrate import MIGRATIONS_SCHEMA, MigrationStatus, status, status_lines
from enrolldb.schema_check import SchemaFinding, check_schema_objects, finding_line

#: One line per violation kind: what to do. docs/operators.md has the long form.
HINTS: dict[str, str] = {
    "active_enrollment_without_access": (
        "the learner lost course access while the program says active: find who deactivated "
        "it in student_courseenrollment_history, then unlink and re-link the program "
        "enrollment (or have the registrar re-write the course enrollment as active)"
    ),
    "unbacked_masters_enrollment": (
        "course access in 'masters' with no active program course enrollment behind it: "
        "unenroll the learner in the LMS, or have the registrar write the program course "
        "enrollment as active"
    ),
    "double_active_course": (
        "two programs both hold the learner active in one course: ask the registrar which "
        "program keeps it and write the other as inactive"
    ),
    "realized_without_course_enrollment": (
        "a linked learner's program course enrollment has no course enrollment (added by a "
        "direct write): unlink and re-link the program enrollment"
    ),
    "course_enrollment_mismatch": (
        "impossible while the integrity triggers are on: see 'schema objects' above for "
        "disabled or dropped triggers, check for session_replication_role=replica writes, "
        "fix the row by hand"
    ),
    "shared_active_course_enrollment": (
        "impossible while the partial unique index exists: see 'schema objects' above for "
        "programcourseenrollment_active_course_enrollment_uq missing or invalid"
    ),
    "noncanonical_external_key": (
        "impossible while programenrollment_key_canonical_ck holds: re-write the key as "
        "enrolldb.canonical_external_key(key)"
    ),
    "unfulfilled_role_assignment": (
        "a pending course role of a linked, active learner was never granted: unlink and "
        "re-link, or grant the role and delete the assignment by hand"
    ),
    "history_out_of_date": (
        "a row changed without a history row (triggers disabled or history deleted): "
        "investigate, then record the current state with a no-op UPDATE of the row"
    ),
}

MAX_KEYS_SHOWN = 50


def register(subparsers: Subparsers) -> None:
    """Add the ``doctor`` command."""
    p = add_command(
        subparsers,
        "doctor",
        help="check migrations, functions and check_integrity(); exit 1 if anything is wrong",
        description=(
            "Report pending migrations, API functions out of date with sql/functions,\n"
            "constraints, indexes and triggers not as shipped (missing, different, disabled,\n"
            "NOT VALID, invalid; extra ones as information), every violation found by\n"
            "enrolldb.check_integrity(), and (as information) the learners\n"
            "holding program course enrollments for one course in two programs. It only\n"
            "reads; a member of enrolldb_readonly may run it (the checks that need the schema\n"
            "owner are skipped, and the report says so).\n\n"
            "Exit codes: 0 healthy; 1 problems found; 2 the check could not run."
        ),
    )
    add_format_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args.dsn)
    st = status(dsn)
    violations: list[Violation] = []
    exposed: list[str] | None = None
    errors: list[str] = []
    objects = SchemaObjects()
    if not st.migrated:
        # Nothing to check, and nothing may be created: say so and stop.
        errors.append(NOT_MIGRATED)
    else:
        objects = _check_objects(dsn, st)
        violations, exposed = _check_rows(dsn, errors)
    healthy = st.up_to_date and not violations and not errors and not objects.unhealthy
    if args.format == "json":
        _print_json(st, objects, violations, exposed, errors, healthy)
    else:
        _print_text(st, objects, violations, exposed, errors, healthy)
    return 0 if healthy else 1


NOT_MIGRATED = "not migrated: enrolldb was never applied to this database (run `enrolldb migrate`)"


@dataclass(frozen=True)
class SchemaObjects:
    """The schema-object section: findings, or why they were not looked for."""

    findings: list[SchemaFinding] = field(default_factory=list)
    not_checked: str | None = None
    error: str | None = None

    @property
    def unhealthy(self) -> bool:
        """An error or a finding other than information makes doctor exit 1; not comparing
        because migrations are pending does not (the pending migrations already do)."""
        return self.error is not None or any(f.unhealthy for f in self.findings)


def _check_objects(dsn: str, st: MigrationStatus) -> SchemaObjects:
    """Compare constraints, indexes and triggers with the snapshot, unless migrations are
    pending: the snapshot is of the latest schema, so an older one would differ by design."""
    if st.pending:
        return SchemaObjects(not_checked="not compared until the pending migrations are applied")
    try:
        with connect(dsn, autocommit=True, application_name="enrolldb doctor") as conn:
            return SchemaObjects(findings=check_schema_objects(conn))
    except (OSError, ValueError, psycopg.Error) as exc:
        return SchemaObjects(error=f"cannot check ({one_line(exc)})")


def _check_rows(dsn: str, errors: list[str]) -> tuple[list[Violation], list[str] | None]:
    """check_integrity() and the two-program query; failures are appended to ``errors``."""
    violations: list[Violation] = []
    exposed: list[str] | None = None
    with connect(dsn, autocommit=True, application_name="enrolldb doctor") as conn:
        if _has_check_integrity(conn):
            try:
                violations = check_integrity(conn)
            except (EnrollDBError, psycopg.Error) as exc:
                errors.append(f"check_integrity() failed: {one_line(exc)}")
            try:
                exposed = two_program_learners(conn)
            except psycopg.Error as exc:
                errors.append(f"two-program query failed: {one_line(exc)}")
        else:
            errors.append("enrolldb.check_integrity() does not exist: run `enrolldb migrate`")
    return violations, exposed


def _has_check_integrity(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT to_regprocedure('enrolldb.check_integrity()') IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])


def two_program_learners(conn: psycopg.Connection[Any]) -> list[str]:
    """External keys returned by the case-insensitive two-program query, run in a read-only
    transaction with ``search_path`` naming ``enrolldb`` (as support staff would in psql)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL search_path = enrolldb, public")
        rows = conn.execute(TWO_PROGRAM_QUERY).fetchall()
    return sorted(str(row[0]) for row in rows)


def _print_json(
    st: MigrationStatus,
    objects: SchemaObjects,
    violations: list[Violation],
    exposed: list[str] | None,
    errors: list[str],
    healthy: bool,
) -> None:
    document = {
        "healthy": healthy,
        "migrations": {
            "migrated": st.migrated,
            "bookkeeping_schema": st.bookkeeping_schema,
            "applied": st.applied,
            "pending": st.pending,
            "functions_out_of_date": st.functions_out_of_date,
            "privileges_out_of_date": st.privileges_out_of_date,
            "functions_error": st.functions_error,
            "functions_not_checked": st.functions_not_checked,
            "undeclared_functions": st.undeclared_functions,
        },
        "schema_objects": {
            "findings": [asdict(f) for f in objects.findings],
            "not_checked": objects.not_checked,
            "error": objects.error,
        },
        "violations": [asdict(v) for v in violations],
        "two_program_learners": exposed,
        "errors": errors,
    }
    json.dump(document, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


def _print_text(
    st: MigrationStatus,
    objects: SchemaObjects,
    violations: list[Violation],
    exposed: list[str] | None,
    errors: list[str],
    healthy: bool,
) -> None:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

    def say(text: str, style: str | None = None) -> None:
        console.print(Text(text, style=style or ""))

    say("migrations", "bold")
    if not st.migrated:
        say(f"  {NOT_MIGRATED}", "red")
        say("")
        say("NOT healthy: not migrated", "bold red")
        return
    say(f"  applied: {len(st.applied)}, pending: {len(st.pending)}")
    for line in status_lines(st):
        problem = not line.startswith("functions: ") or "cannot check" in line
        say(f"  {line}", "red" if problem else None)

    say("")
    say("schema objects (constraints, indexes, triggers; as in sql/schema.snapshot)", "bold")
    _print_objects(
        objects, lambda text, style: console.print(Text(text, style=style or ""), soft_wrap=True)
    )

    say("")
    say("integrity", "bold")
    for error in errors:
        say(f"  {error}", "red")
    if not violations and not errors:
        say("  check_integrity(): no violation")
    if violations:
        say(f"  check_integrity(): {len(violations)} violation(s)", "red")
        table = Table(
            caption="pe: program_enrollments_programenrollment.id, pce: "
            "program_enrollments_programcourseenrollment.id, ce: student_courseenrollment.id",
            caption_justify="left",
        )
        table.add_column("violation", no_wrap=True)
        table.add_column("pe", justify="right", no_wrap=True)
        table.add_column("pce", justify="right", no_wrap=True)
        table.add_column("ce", justify="right", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for v in violations:
            table.add_row(
                Text(v.violation),
                Text(_id(v.program_enrollment_id)),
                Text(_id(v.program_course_enrollment_id)),
                Text(_id(v.course_enrollment_id)),
                Text(v.detail),
            )
        console.print(table)
        say("  what to do (docs/operators.md, section 'Violation kinds'):")
        for kind in sorted({v.violation for v in violations}):
            say(f"  - {kind}: {HINTS.get(kind, 'see docs/operators.md')}")

    say("")
    say("two-program learners (information, not a problem)", "bold")
    if exposed is None:
        exposed = []
        say("  not checked")
    else:
        say(
            f"  {len(exposed)} external key(s) hold program course enrollments for one course "
            "in two programs; enrolldb links them correctly"
        )
    for key in exposed[:MAX_KEYS_SHOWN]:
        say(f"  {key}")
    if len(exposed) > MAX_KEYS_SHOWN:
        say(f"  ... and {len(exposed) - MAX_KEYS_SHOWN} more (all of them with --format json)")

    say("")
    if healthy:
        say("healthy", "bold green")
    else:
        problems = []
        if st.pending:
            problems.append(f"{len(st.pending)} pending migration(s)")
        if st.functions_out_of_date:
            problems.append(f"{len(st.functions_out_of_date)} function(s) out of date")
        if st.privileges_out_of_date:
            problems.append(f"privileges of {len(st.privileges_out_of_date)} object(s) out of date")
        if st.functions_error:
            problems.append("functions could not be checked")
        if st.undeclared_functions:
            problems.append(f"{len(st.undeclared_functions)} undeclared function(s)")
        if st.bookkeeping_schema != MIGRATIONS_SCHEMA:
            problems.append("migration bookkeeping to move")
        failing = [f for f in objects.findings if f.unhealthy]
        if failing:
            problems.append(f"{len(failing)} schema object(s) not as shipped")
        if objects.error:
            problems.append("schema objects could not be checked")
        if violations:
            problems.append(f"{len(violations)} violation(s)")
        if errors:
            problems.append("integrity check could not run")
        say("NOT healthy: " + ", ".join(problems), "bold red")


def _print_objects(objects: SchemaObjects, say: Callable[[str, str | None], None]) -> None:
    """One line per finding (never wrapped: a line is one object, for grep and for mail),
    the unhealthy ones in red, the extra objects after them."""
    if objects.error:
        say(f"  {objects.error}", "red")
        return
    if objects.not_checked:
        say(f"  {objects.not_checked}", None)
        return
    failing = [f for f in objects.findings if f.unhealthy]
    extra = [f for f in objects.findings if not f.unhealthy]
    if failing:
        say(f"  {len(failing)} not as shipped:", "red")
    else:
        say("  as shipped", None)
    for finding in failing:
        say(f"  {finding_line(finding)}", "red")
    if extra:
        say(f"  {len(extra)} not shipped (information, not a problem):", None)
    for finding in extra:
        say(f"  {finding_line(finding)}", None)


def _id(value: int | None) -> str:
    return "" if value is None else str(value)
