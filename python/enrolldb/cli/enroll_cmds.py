"""``enrolldb enroll`` and ``enrolldb enroll-courses``: the registrar's writes from a CSV.

- ``enroll PROGRAM_UUID FILE|-``: lines ``external_user_key,status[,curriculum_uuid]``
  (the curriculum is needed only to create an enrollment);
- ``enroll-courses PROGRAM_UUID COURSE_KEY FILE|-``: lines
  ``external_user_key,status[,course_staff]`` (course_staff ``true``, ``false``, or empty or
  absent to leave the role as it is).

The input is read as ``link`` reads it (:mod:`enrolldb.cli._input`): header optional (a
different header is refused), ``#`` comments and blank lines skipped, the whole input checked
before anything is written, never held in memory. Keys and statuses are sent as written; the
database judges them and answers per learner. Chunks of ``--chunk-size`` requests, each its
own committed transaction (``--dry-run``: one transaction, rolled back); all occurrences of
one key (compared as the database compares stored keys) share a chunk, so ``duplicated`` is
reported as one call would. Each line gets the answer of its own request, by input position
(the ``..._rows`` functions answer one row per request, in order, with ``applied``): of two
lines spelling one key the same way, the first can be applied and the second ``duplicated``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from enrolldb.cli._bulk import BulkRun, Outcome, Sender, print_json_report, stopped_message
from enrolldb.cli._common import (
    EXIT_ERROR,
    Refused,
    Subparsers,
    add_command,
    add_format_option,
    chunk_size,
    parse_uuid,
    report_refusal,
    wants_json,
)
from enrolldb.cli._failed_csv import open_failed_csv, write_failed_csv
from enrolldb.cli._input import CsvLayout, Problems, Source, csv_line, csv_records, open_source
from enrolldb.dsn import one_line
from enrolldb.registrar import (
    PROGRAM_COURSE_ENROLLMENT_STATUSES,
    PROGRAM_ENROLLMENT_STATUSES,
    WriteResult,
    write_program_course_enrollment_rows,
    write_program_enrollment_rows,
)

DEFAULT_CHUNK_SIZE = 10_000

DRY_RUN_NOTE = "DRY RUN: every change was rolled back; nothing was committed."
NOTHING_WRITTEN = "nothing was written (the whole input is refused)"

_HEADER_WORDS = frozenset(
    {
        "external_user_key",
        "status",
        "curriculum_uuid",
        "course_staff",
        "key",
        "external_key",
        "user_key",
        "username",
        "lms_username",
        "curriculum",
        "staff",
        "email",
    }
)
ENROLL_HEADER = ("external_user_key", "status", "curriculum_uuid")
COURSES_HEADER = ("external_user_key", "status", "course_staff")


@dataclass(frozen=True)
class Line:
    """One request, with the CSV line it came from and its fields as written."""

    line: int
    fields: tuple[str, ...]
    extra: str | bool | None  # curriculum_uuid (enroll) or course_staff (enroll-courses)

    @property
    def external_user_key(self) -> str:
        return self.fields[0]

    @property
    def status(self) -> str:
        return self.fields[1]


@dataclass(frozen=True)
class Command:
    """What tells ``enroll`` and ``enroll-courses`` apart."""

    name: str
    header: tuple[str, ...]
    extra: Callable[[str], str | bool | None]  # ValueError: the line is refused
    extra_problem: str
    statuses: tuple[str, ...]  # for the help text only: the database judges statuses

    @property
    def layout(self) -> CsvLayout:
        return CsvLayout(self.header, _HEADER_WORDS, last_optional=True)


def _curriculum(text: str) -> str | None:
    if not text.strip():
        return None
    return str(UUID(text.strip()))


def _staff(text: str) -> bool | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(text)


ENROLL = Command(
    "enroll",
    ENROLL_HEADER,
    _curriculum,
    "is not a valid curriculum_uuid",
    PROGRAM_ENROLLMENT_STATUSES,
)
ENROLL_COURSES = Command(
    "enroll-courses",
    COURSES_HEADER,
    _staff,
    "is not a valid course_staff: write true, false, or leave it empty",
    PROGRAM_COURSE_ENROLLMENT_STATUSES,
)


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="CSV file; '-' for stdin")
    p.add_argument(
        "--create",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create missing enrollments (default: yes)",
    )
    p.add_argument(
        "--update",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="update existing enrollments (default: yes)",
    )
    p.add_argument(
        "--chunk-size",
        type=chunk_size,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"requests per database call, each committed alone (default {DEFAULT_CHUNK_SIZE})",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="do everything in one transaction and roll it back: shows what would happen",
    )
    p.add_argument(
        "--failed-csv",
        metavar="PATH",
        help="also write the lines not applied to PATH as CSV (with the header), to fix and re-run",
    )
    add_format_option(p)


_INPUT_HELP = (
    "The header line is optional (a different header is refused); '#' comment lines and blank\n"
    "lines are skipped. The whole input is checked first: a malformed line refuses the run and\n"
    "nothing is written. Then the requests go in chunks, each committed on its own. The file\n"
    "is read twice, never held in memory (stdin is first copied to a temporary file).\n\n"
    "Exit codes: 0 every request applied (a re-run of an applied file included); 1 some were\n"
    "not (listed); 2 refused or stopped (bad input, unknown program or course, database\n"
    "error); 130 interrupted."
)


def _one_of(values: Sequence[str]) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]


def register(subparsers: Subparsers) -> None:
    """Add the ``enroll`` and ``enroll-courses`` commands."""
    p = add_command(
        subparsers,
        "enroll",
        help="create/update program enrollments from CSV external_user_key,status,curriculum_uuid",
        description=(
            "Write a program's enrollments (enrolldb.write_program_enrollments).\n\n"
            "Input: CSV lines 'external_user_key,status[,curriculum_uuid]' from FILE or stdin\n"
            f"('-'); status is {_one_of(ENROLL.statuses)}; curriculum_uuid\n"
            "is needed only to create an enrollment. " + _INPUT_HELP
        ),
    )
    p.add_argument("program_uuid", metavar="PROGRAM_UUID", help="the program")
    _common_options(p)
    p.set_defaults(handler=lambda args: _run(args, ENROLL))

    p = add_command(
        subparsers,
        "enroll-courses",
        help="create/update program course enrollments from CSV key,status,course_staff",
        description=(
            "Write a program's enrollments in one course\n"
            "(enrolldb.write_program_course_enrollments).\n\n"
            "Input: CSV lines 'external_user_key,status[,course_staff]' from FILE or stdin ('-');\n"
            f"status is {_one_of(ENROLL_COURSES.statuses)}; course_staff is true, false, or empty\n"
            "(or absent) to leave the learner's staff role as it is. " + _INPUT_HELP
        ),
    )
    p.add_argument("program_uuid", metavar="PROGRAM_UUID", help="the program")
    p.add_argument("course_key", metavar="COURSE_KEY", help="the course run key")
    _common_options(p)
    p.set_defaults(handler=lambda args: _run(args, ENROLL_COURSES))


# Input -------------------------------------------------------------------------------------


def _lines(source: Source, command: Command, problems: Problems) -> Iterator[Line]:
    for number, fields in csv_records(source.lines(), command.layout, problems):
        if len(fields) not in (2, 3):
            problems.add(
                f"line {number}: expected 2 or 3 fields {','.join(command.header)}, "
                f"got {len(fields)}"
            )
            continue
        if fields[0] == "":  # empty: no character at all; blanks are the database's to judge
            problems.add(f"line {number}: empty external_user_key")
            continue
        extra: str | bool | None = None
        if len(fields) == 3:
            try:
                extra = command.extra(fields[2])
            except ValueError:
                problems.add(f"line {number}: {fields[2]!r} {command.extra_problem}")
                continue
        yield Line(number, tuple(fields), extra)


# Running -----------------------------------------------------------------------------------


def _sender(
    args: argparse.Namespace, command: Command, program: UUID, applied: set[str]
) -> Sender[Line]:
    """The chunk call; adds to ``applied`` every outcome name the database reports as
    applied (statuses), so that failures are told by the database's flag, not by a list."""

    def send(conn: psycopg.Connection[Any], chunk: Sequence[Line]) -> list[tuple[str, Any]]:
        # The request fields are the CSV columns: external_user_key, status and the third.
        requests = [
            dict(zip(command.header, (x.external_user_key, x.status, x.extra), strict=True))
            for x in chunk
        ]
        results: list[WriteResult]
        if command is ENROLL:
            results = write_program_enrollment_rows(
                conn, program, requests, create=args.create, update=args.update
            )
        else:
            results = write_program_course_enrollment_rows(
                conn, program, args.course_key, requests, create=args.create, update=args.update
            )
        # One result per request, in input order: line i of the chunk is request i + 1.
        if [r.request_number for r in results] != list(range(1, len(chunk) + 1)):
            raise RuntimeError(
                f"{command.name}: {len(chunk)} requests sent, {len(results)} results received"
            )
        answers = []
        for x, result in zip(chunk, results, strict=True):
            if result.applied:
                applied.add(result.outcome)
            record = {"line": x.line, "fields": list(x.fields), "outcome": result.outcome}
            answers.append((result.outcome, record))
        return answers

    return send


def _run(args: argparse.Namespace, command: Command) -> int:
    json_output = wants_json(args)
    context: dict[str, Any] = {"program_uuid": args.program_uuid, "dry_run": bool(args.dry_run)}
    if command is ENROLL_COURSES:
        context["course_key"] = args.course_key

    # The outcome names the database reported as applied (the statuses written).
    applied: set[str] = set()
    with ExitStack() as stack:
        try:
            if not (args.create or args.update):
                raise Refused(["at least one of --create, --update is needed"])
            program = parse_uuid(args.program_uuid, "PROGRAM_UUID")
            failed_out = open_failed_csv(args.failed_csv, stack)
            source = stack.enter_context(open_source(args.file))
            bulk = BulkRun(
                command=command.name,
                read=lambda problems: _lines(source, command, problems),
                key=lambda line: line.external_user_key,
                send=_sender(args, command, program, applied),
                chunk_size=args.chunk_size,
                dry_run=args.dry_run,
                dsn=args.dsn,
                source=source.name,
                empty=f"no requests in {source.name}",
                progress="writing",
            )
            outcome = bulk.run(stack)
        except (Refused, OSError) as exc:
            messages = (
                exc.messages
                if isinstance(exc, Refused)
                else [f"cannot read {args.file}: {exc.strerror or one_line(exc)}"]
            )
            return report_refusal(
                command.name,
                messages,
                json_output=json_output,
                conclusion=NOTHING_WRITTEN,
                **context,
            )
        if outcome.stopped is not None:
            stopped_message(
                command.name,
                outcome,
                dry_run=args.dry_run,
                noun="requests",
                nothing="nothing was written",
            )
        failed = _failed(applied)
        csv_error = write_failed_csv(
            failed_out,
            args.failed_csv,
            command.header,
            (record["fields"] for record in outcome.spool if failed(record["outcome"])),
        )
        if json_output:
            _print_json(args, context, outcome, failed, csv_error)
        elif outcome.stopped is None or outcome.done:
            _print_text(args, outcome, failed)
        code = outcome.exit_code(failed)
        if csv_error is not None:
            print(f"enrolldb {command.name}: {csv_error}", file=sys.stderr)
            return max(code, EXIT_ERROR)
        return code


def _failed(applied: set[str]) -> Callable[[str], bool]:
    """An outcome is a failure unless the database reported it applied: a status is always
    applied and the other outcomes never are, so the name decides, as the counts need."""
    return lambda outcome: outcome not in applied


# Output ------------------------------------------------------------------------------------


def _print_json(
    args: argparse.Namespace,
    context: dict[str, Any],
    outcome: Outcome,
    failed: Callable[[str], bool],
    csv_error: str | None,
) -> None:
    head = {
        **context,
        "requests": outcome.total,
        "done": outcome.done,
        "counts": dict(sorted(outcome.counts.items())),
    }
    failures = (
        {
            "line": record["line"],
            "external_user_key": record["fields"][0],
            "outcome": record["outcome"],
        }
        for record in outcome.spool
        if failed(record["outcome"])
    )
    tail: dict[str, Any] = {}
    if outcome.stopped is not None:
        tail = {"error": outcome.stopped, "complete": False}
    if csv_error is not None:
        tail["failed_csv_error"] = csv_error
    print_json_report(head, "failures", failures, tail)


def _print_text(args: argparse.Namespace, outcome: Outcome, failed: Callable[[str], bool]) -> None:
    out = sys.stdout
    if args.dry_run:
        print(DRY_RUN_NOTE, file=out)
    print(f"{outcome.done} of {outcome.total} requests done, {outcome.chunks} chunk(s)", file=out)
    for name, n in sorted(outcome.counts.items()):
        print(f"  {name}: {n}", file=out)
    not_applied = sum(n for name, n in outcome.counts.items() if failed(name))
    if not_applied:
        print(f"not applied ({not_applied}):", file=out)
        for record in outcome.spool:
            if failed(record["outcome"]):
                print(
                    f"  line {record['line']}: {csv_line(record['fields'])}: {record['outcome']}",
                    file=out,
                )
    if args.dry_run:
        print(DRY_RUN_NOTE, file=out)
