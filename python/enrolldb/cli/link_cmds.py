"""``enrolldb link PROGRAM_UUID [FILE|-]``: bulk linking of external keys to LMS usernames.

Who uses it: support staff holding a registrar's CSV of tens of thousands (up to millions) of
``external_user_key,lms_username`` lines. What they need from it:

- the whole input is checked *before* the database is written: a malformed line (or a wrong
  header) is reported with its line number and the run is refused (exit 2), so a typo on
  line 39,000 does not leave 38,999 learners linked and the rest not;
- keys and usernames are sent exactly as written (only the line ending is removed): the
  database canonicalises keys and reports bad ones per learner, with the caller's spelling;
- large inputs go in chunks (``--chunk-size``), each committed on its own, so an
  interruption keeps what was done and a re-run reports those as already linked (exit 0);
- the file is read twice and never held in memory (:mod:`enrolldb.cli._chunks`);
- a progress bar on a terminal, nothing on stderr when piped (cron, CI logs);
- at the end the counts and every failure, or one JSON object with ``--format json``;
- ``--dry-run``: the same calls inside one transaction that is rolled back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TextIO
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
from enrolldb.linking import DEFAULT_CHUNK_SIZE, LinkResult, link

#: The optional header line of the CSV input.
HEADER = ("external_user_key", "lms_username")

LAYOUT = CsvLayout(
    header=HEADER,
    header_words=frozenset(
        {*HEADER, "key", "external_key", "user_key", "username", "user", "lms_user", "email"}
    ),
)

#: The report's counts, in this order; ``failed`` alone makes the exit code 1.
KINDS = ("linked", "relinked", "already_linked", "failed")

DRY_RUN_NOTE = "DRY RUN: every change was rolled back; nothing was committed."
NOTHING_LINKED = "nothing was linked (the whole input is refused)"


@dataclass(frozen=True)
class Pair:
    """One pair to link, with its CSV line number (None for ``--pair`` arguments)."""

    line: int | None
    external_user_key: str
    username: str


def register(subparsers: Subparsers) -> None:
    """Add the ``link`` command."""
    p = add_command(
        subparsers,
        "link",
        help="link external user keys to LMS usernames (CSV or --pair), in committed chunks",
        description=(
            "Link a program's enrollments of each external user key to the LMS user with that\n"
            "username (enrolldb.link_program_enrollments).\n\n"
            "Input: CSV lines 'external_user_key,lms_username' from FILE, from stdin ('-'), or\n"
            "--pair arguments. The header line is optional (a different header is refused);\n"
            "'#' comment lines and blank lines are skipped. The whole input is checked first:\n"
            "a malformed line refuses the run and nothing is linked. Then the pairs go in\n"
            "chunks, each committed on its own. The file is read twice, never held in memory\n"
            "(stdin is first copied to a temporary file).\n\n"
            "Exit codes: 0 every pair linked, relinked or already linked; 1 some failed;\n"
            "2 refused or stopped (bad input, unknown program, database error); 130 interrupted."
        ),
    )
    p.add_argument("program_uuid", metavar="PROGRAM_UUID", help="the program to link in")
    p.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="CSV file of external_user_key,lms_username lines; '-' for stdin",
    )
    p.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="KEY:USERNAME",
        help="a pair to link, as the Django management command takes it (repeatable)",
    )
    p.add_argument(
        "--chunk-size",
        type=chunk_size,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"pairs per database call, each committed on its own (default {DEFAULT_CHUNK_SIZE})",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="do everything in one transaction and roll it back: shows what would happen",
    )
    p.add_argument(
        "--failed-csv",
        metavar="PATH",
        help="also write the failed pairs to PATH as CSV (with the header), to fix and re-run",
    )
    add_format_option(p)
    p.set_defaults(handler=run)


# Input -------------------------------------------------------------------------------------


def _csv_pairs(source: Source, problems: Problems) -> Iterator[Pair]:
    for number, fields in csv_records(source.lines(), LAYOUT, problems):
        problem = _field_problem(fields)
        if problem:
            problems.add(f"line {number}: {problem}")
        else:
            yield Pair(number, fields[0], fields[1])


def _field_problem(fields: Sequence[str]) -> str | None:
    if len(fields) != 2:
        return (
            f"expected 2 fields 'external_user_key,lms_username', got {len(fields)}: "
            f"{csv_line(fields)}"
        )
    # Empty means no character at all. Whether a key of blanks or invisible characters is
    # a key is the database's rule (canonical_external_key), answered for that line alone,
    # as in enroll / enroll-courses.
    if fields[0] == "":
        return "empty external_user_key"
    if fields[1] == "":
        return "empty lms_username"
    return None


def parse_pair_args(items: Sequence[str]) -> list[Pair]:
    """``--pair key:username`` arguments, split as the Django management command does: exactly
    two non-empty parts (so a key or username containing ':' needs the CSV input). A part of
    blanks is sent, and the database answers for it, as for a CSV line."""
    pairs: list[Pair] = []
    errors: list[str] = []
    for raw in items:
        parts = raw.split(":")
        if len(parts) != 2 or "" in parts:
            errors.append(
                f"incorrectly formatted argument '{raw}', "
                "must be in form <external user key>:<lms username>"
            )
            continue
        pairs.append(Pair(None, parts[0], parts[1]))
    if errors:
        raise Refused(errors)
    return pairs


# Running -----------------------------------------------------------------------------------


def kind(result: LinkResult) -> str:
    """The report's name for a result: the database's, or ``already_linked``."""
    return "already_linked" if result.already_linked else result.result


def _send(program: UUID) -> Sender[Pair]:
    def send(
        conn: psycopg.Connection[Any], pairs: Sequence[Pair]
    ) -> list[tuple[str, dict[str, Any]]]:
        items = [(p.external_user_key, p.username) for p in pairs]
        results = link(conn, program, items, chunk_size=len(items))
        return [
            (
                kind(result),
                {
                    "line": pair.line,
                    "external_user_key": result.external_user_key,
                    "username": result.username,
                    "result": kind(result),
                    "error": result.error,
                },
            )
            for pair, result in zip(pairs, results, strict=True)
        ]

    return send


def run(args: argparse.Namespace) -> int:
    json_output = wants_json(args)

    def refuse(messages: Sequence[str]) -> int:
        return report_refusal(
            "link",
            messages,
            json_output=json_output,
            conclusion=NOTHING_LINKED,
            program_uuid=args.program_uuid,
            dry_run=bool(args.dry_run),
        )

    with ExitStack() as stack:
        try:
            program = parse_uuid(args.program_uuid, "program_uuid")
            failed_out = open_failed_csv(args.failed_csv, stack)
            bulk = _bulk_run(args, program, stack)
            outcome = bulk.run(stack)
        except Refused as exc:
            return refuse(exc.messages)
        except OSError as exc:
            return refuse([f"cannot read {args.file}: {exc.strerror or one_line(exc)}"])
        if outcome.stopped is not None:
            stopped_message(
                "link",
                outcome,
                dry_run=args.dry_run,
                noun="pairs",
                nothing="nothing was linked",
            )
            if outcome.done or json_output:
                csv_error = _report(args, program, bulk.source, outcome, failed_out)
            else:
                csv_error = None
        else:
            csv_error = _report(args, program, bulk.source, outcome, failed_out)
        code = outcome.exit_code(lambda k: k == "failed")
        if csv_error is not None:
            print(f"enrolldb link: {csv_error}", file=sys.stderr)
            return max(code, EXIT_ERROR)
        return code


def _bulk_run(args: argparse.Namespace, program: UUID, stack: ExitStack) -> BulkRun[Pair]:
    if args.pair and args.file is not None:
        raise Refused(["give either FILE (or '-') or --pair arguments, not both"])
    if args.pair:
        pairs = parse_pair_args(args.pair)
        return _make(args, program, lambda problems: pairs, "--pair arguments")
    if args.file is None and sys.stdin.isatty():
        raise Refused(["no input: give a CSV FILE, '-' to read stdin, or --pair KEY:USERNAME"])
    source = stack.enter_context(open_source("-" if args.file is None else args.file))
    return _make(args, program, lambda problems: _csv_pairs(source, problems), source.name)


def _make(
    args: argparse.Namespace,
    program: UUID,
    read: Callable[[Problems], Iterable[Pair]],
    source: str,
) -> BulkRun[Pair]:
    return BulkRun(
        command="link",
        read=read,
        key=lambda pair: pair.external_user_key,
        send=_send(program),
        chunk_size=args.chunk_size,
        dry_run=args.dry_run,
        dsn=args.dsn,
        source=source,
        empty=f"no pairs to link in {source}",
        progress="linking",
    )


# Output ------------------------------------------------------------------------------------


def _report(
    args: argparse.Namespace,
    program: UUID,
    source: str,
    outcome: Outcome,
    failed_out: TextIO | None,
) -> str | None:
    """Write the failed list, then print the report; return why the list could not be
    written, if it could not (the caller says so after the report)."""
    csv_error = write_failed_csv(
        failed_out,
        args.failed_csv,
        HEADER,
        (
            [record["external_user_key"], record["username"]]
            for record in outcome.spool
            if record["result"] == "failed"
        ),
    )
    if wants_json(args):
        head: dict[str, Any] = {
            "program_uuid": str(program),
            "dry_run": bool(args.dry_run),
            **{k: outcome.counts[k] for k in KINDS},
        }
        tail: dict[str, Any] = {}
        if outcome.stopped is not None:
            tail = {"error": outcome.stopped, "complete": False}
        if csv_error is not None:
            tail["failed_csv_error"] = csv_error
        print_json_report(head, "results", outcome.spool, tail)
    else:
        _print_text(args, program, source, outcome, sys.stdout)
    return csv_error


def _print_text(
    args: argparse.Namespace, program: UUID, source: str, outcome: Outcome, out: TextIO
) -> None:
    if args.dry_run:
        print(DRY_RUN_NOTE, file=out)
    print(
        f"program {program}: {outcome.done} of {outcome.total} pairs from {source}, "
        f"{outcome.chunks} chunk(s)",
        file=out,
    )
    for k in KINDS:
        label = k.replace("_", " ") + ":"
        print(f"{label:<16}{outcome.counts[k]}", file=out)
    if outcome.counts["failed"]:
        print("failures:", file=out)
        for record in outcome.spool:
            if record["result"] == "failed":
                where = f"line {record['line']}: " if record["line"] is not None else ""
                what = csv_line([record["external_user_key"], record["username"]])
                print(f"  {where}{what}: {record['error']}", file=out)
    if args.dry_run:
        print(DRY_RUN_NOTE, file=out)
