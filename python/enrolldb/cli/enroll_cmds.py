"""``enrolldb enroll`` and ``enrolldb enroll-courses``: the registrar's writes from a CSV.

- ``enroll PROGRAM_UUID FILE|-``: lines ``external_user_key,status[,curriculum_uuid]``
  (SPEC 4.5; the curriculum is needed only to create an enrollment);
- ``enroll-courses PROGRAM_UUID COURSE_KEY FILE|-``: lines
  ``external_user_key,status[,course_staff]`` (SPEC 4.6; course_staff ``true``/``false``,
  empty or absent leaves the role as it is).

The header line is optional; ``#`` comment lines and blank lines are skipped. The whole
input is checked before the database is touched: a malformed line is reported with its line
number and the run is refused (exit 2). Keys and statuses are sent as written; the database
judges them and answers per learner. Inputs larger than ``--chunk-size`` go in chunks, each
its own committed transaction; all occurrences of one key (compared as the database compares
stored keys) share a chunk, so ``duplicated`` is reported as one call would. A progress bar is
shown on a terminal only. At the end: the count of each outcome and every line that did not
succeed (or one JSON object with ``--format json``).

Exit codes: 0 every request succeeded, 1 some did not, 2 the run was refused or stopped by a
whole-call error (bad input, unknown program or course, lost connection).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from enrolldb.cli._common import EXIT_ERROR, Subparsers
from enrolldb.cli._input import InputError, chunk_size, csv_records, progress_bar
from enrolldb.dsn import connect, one_line, resolve_dsn
from enrolldb.errors import EnrollDBError
from enrolldb.linking import comparable_keys, group_chunks
from enrolldb.registrar import (
    PROGRAM_COURSE_ENROLLMENT_STATUSES,
    PROGRAM_ENROLLMENT_STATUSES,
    write_program_course_enrollments,
    write_program_enrollments,
)

DEFAULT_CHUNK_SIZE = 10_000
EXIT_FAILED = 1
MAX_INPUT_ERRORS = 20

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


@dataclass(frozen=True)
class Line:
    """One request, with the CSV line it came from."""

    line: int
    external_user_key: str
    status: str
    extra: str | bool | None  # curriculum_uuid (enroll) or course_staff (enroll-courses)


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
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def register(subparsers: Subparsers) -> None:
    """Add the ``enroll`` and ``enroll-courses`` commands."""
    p = subparsers.add_parser(
        "enroll",
        help="create/update program enrollments from CSV external_user_key,status,curriculum_uuid",
        description=(
            "Write a program's enrollments (enrolldb.write_program_enrollments). Input: CSV lines "
            "'external_user_key,status[,curriculum_uuid]'; header optional, '#' comments and "
            "blank lines skipped. Exit codes: 0 all succeeded, 1 some failed, 2 refused."
        ),
    )
    p.add_argument("program_uuid", metavar="PROGRAM_UUID", help="the program")
    _common_options(p)
    p.set_defaults(handler=run_enroll)

    p = subparsers.add_parser(
        "enroll-courses",
        help="create/update program course enrollments from CSV key,status,course_staff",
        description=(
            "Write a program's enrollments in one course "
            "(enrolldb.write_program_course_enrollments). Input: CSV lines "
            "'external_user_key,status[,course_staff]' (course_staff true/false/empty); header "
            "optional, '#' comments and blank lines skipped. Exit codes: 0 all succeeded, "
            "1 some failed, 2 refused."
        ),
    )
    p.add_argument("program_uuid", metavar="PROGRAM_UUID", help="the program")
    p.add_argument("course_key", metavar="COURSE_KEY", help="the course run key")
    _common_options(p)
    p.set_defaults(handler=run_enroll_courses)


# Input -------------------------------------------------------------------------------------


def parse_uuid(text: str, what: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InputError([f"{what} '{text}' is not a valid UUID"]) from None


def _curriculum(text: str) -> str | None:
    if not text.strip():
        return None
    UUID(text.strip())  # ValueError: reported by the caller with the line number
    return text.strip()


def _staff(text: str) -> bool | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(text)


def parse_csv(data: bytes, *, courses: bool) -> list[Line]:
    """The requests of CSV input; :class:`InputError` listing every malformed line."""
    header = ("external_user_key", "status", "course_staff" if courses else "curriculum_uuid")
    lines: list[Line] = []
    errors: list[str] = []
    for number, fields in csv_records(data, {header, header[:2]}, errors):
        if len(fields) not in (2, 3):
            errors.append(
                f"line {number}: expected 2 or 3 fields {','.join(header)}, got {len(fields)}"
            )
            continue
        extra: str | bool | None = None
        if len(fields) == 3:
            try:
                extra = _staff(fields[2]) if courses else _curriculum(fields[2])
            except ValueError:
                what = "course_staff (true/false or empty)" if courses else "curriculum_uuid"
                errors.append(f"line {number}: {fields[2]!r} is not a valid {what}")
                continue
        lines.append(Line(number, fields[0], fields[1], extra))
    if errors:
        raise InputError(errors)
    return lines


def read_input(path: str, *, courses: bool) -> list[Line]:
    if path == "-":
        lines = parse_csv(sys.stdin.buffer.read(), courses=courses)
    else:
        with open(path, "rb") as fh:
            lines = parse_csv(fh.read(), courses=courses)
    if not lines:
        raise InputError([f"no requests in {'stdin' if path == '-' else path}"])
    return lines


# Running -----------------------------------------------------------------------------------


Writer = Callable[[psycopg.Connection[Any], Sequence[Line]], dict[str, str]]


def _chunks(conn: psycopg.Connection[Any], lines: Sequence[Line], size: int) -> list[list[Line]]:
    if len(lines) <= size:
        return [list(lines)]
    comparable = comparable_keys(conn, [line.external_user_key for line in lines])
    return [[lines[i] for i in chunk] for chunk in group_chunks(comparable, size)]


def _run(
    args: argparse.Namespace,
    command: str,
    courses: bool,
    write: Writer,
    success: frozenset[str],
) -> int:
    try:
        if not (args.create or args.update):
            raise InputError(["at least one of --create, --update is needed"])
        program = parse_uuid(args.program_uuid, "PROGRAM_UUID")
        lines = read_input(args.file, courses=courses)
    except InputError as exc:
        for message in exc.messages[:MAX_INPUT_ERRORS]:
            print(f"enrolldb {command}: {message}", file=sys.stderr)
        if len(exc.messages) > MAX_INPUT_ERRORS:
            more = len(exc.messages) - MAX_INPUT_ERRORS
            print(f"enrolldb {command}: ... and {more} more", file=sys.stderr)
        print(f"enrolldb {command}: nothing was written (the input is refused)", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"enrolldb {command}: cannot read {args.file}: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    args.program_uuid = str(program)

    outcomes: list[tuple[Line, str]] = []
    stopped: str | None = None
    dsn = resolve_dsn(args.dsn)
    with connect(dsn, autocommit=True, application_name=f"enrolldb {command}") as conn:
        try:
            chunks = _chunks(conn, lines, args.chunk_size)
            with progress_bar("writing", len(lines), sys.stderr.isatty()) as advance:
                for chunk in chunks:
                    result = write(conn, chunk)
                    outcomes.extend((line, result[line.external_user_key]) for line in chunk)
                    advance(len(chunk))
        except (EnrollDBError, psycopg.Error) as exc:
            stopped = one_line(exc)
        except KeyboardInterrupt:
            stopped = "interrupted"

    outcomes.sort(key=lambda item: item[0].line)
    failures = [(line, outcome) for line, outcome in outcomes if outcome not in success]
    counts = Counter(outcome for _, outcome in outcomes)
    if stopped is not None:
        print(
            f"enrolldb {command}: {stopped}; {len(outcomes)} of {len(lines)} requests were "
            "done and committed before it stopped",
            file=sys.stderr,
        )
    if args.format == "json":
        document: dict[str, Any] = {
            "program_uuid": args.program_uuid,
            "requests": len(lines),
            "done": len(outcomes),
            "counts": dict(sorted(counts.items())),
            "failures": [
                {"line": line.line, "external_user_key": line.external_user_key, "outcome": o}
                for line, o in failures
            ],
        }
        if courses:
            document["course_key"] = args.course_key
        if stopped is not None:
            document["error"] = stopped
        json.dump(document, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(f"{len(outcomes)} of {len(lines)} requests done")
        for outcome, n in sorted(counts.items()):
            print(f"  {outcome}: {n}")
        if failures:
            print(f"not applied ({len(failures)}):")
            for line, o in failures:
                print(f"  line {line.line}: {line.external_user_key}: {o}")
    if stopped is not None:
        return 130 if stopped == "interrupted" else EXIT_ERROR
    return EXIT_FAILED if failures else 0


def run_enroll(args: argparse.Namespace) -> int:
    def write(conn: psycopg.Connection[Any], chunk: Sequence[Line]) -> dict[str, str]:
        return write_program_enrollments(
            conn,
            args.program_uuid,
            [
                {
                    "external_user_key": line.external_user_key,
                    "status": line.status,
                    "curriculum_uuid": line.extra,
                }
                for line in chunk
            ],
            create=args.create,
            update=args.update,
        )

    return _run(args, "enroll", False, write, PROGRAM_ENROLLMENT_STATUSES)


def run_enroll_courses(args: argparse.Namespace) -> int:
    def write(conn: psycopg.Connection[Any], chunk: Sequence[Line]) -> dict[str, str]:
        return write_program_course_enrollments(
            conn,
            args.program_uuid,
            args.course_key,
            [
                {
                    "external_user_key": line.external_user_key,
                    "status": line.status,
                    "course_staff": line.extra,
                }
                for line in chunk
            ],
            create=args.create,
            update=args.update,
        )

    return _run(args, "enroll-courses", True, write, PROGRAM_COURSE_ENROLLMENT_STATUSES)
