"""``enrolldb link PROGRAM_UUID [FILE|-]``: bulk linking of external keys to LMS usernames.

Who uses it: support staff holding a registrar's CSV of tens of thousands of
``external_user_key,lms_username`` lines. What they need from it:

- the whole input is checked *before* the database is touched: a malformed line is reported
  with its line number and the run is refused (exit 2), so a typo on line 39,000 does not
  leave 38,999 learners linked and the rest not;
- keys and usernames are sent exactly as written (only the line ending is removed): the
  database canonicalises keys and reports bad ones per learner, with the caller's spelling;
- large inputs go in chunks (``--chunk-size``), each committed on its own, so an
  interruption keeps what was done and a re-run simply reports those as already linked;
- a progress bar on a terminal, nothing on stderr when piped (cron, CI logs);
- at the end the counts and every failure, or one JSON object with ``--format json``;
- ``--dry-run``: the same calls inside one transaction that is rolled back.

Exit codes: 0 every pair linked (or relinked), 1 some failed, 2 the run was refused or
stopped by a whole-call error (bad input, unknown program, lost connection).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO
from uuid import UUID

import psycopg

from enrolldb.cli._common import EXIT_ERROR, Subparsers
from enrolldb.cli._input import InputError, chunk_size, csv_records, progress_bar
from enrolldb.dsn import connect, one_line, resolve_dsn
from enrolldb.errors import EnrollDBError
from enrolldb.linking import DEFAULT_CHUNK_SIZE, LinkResult, iter_link_chunks

#: The optional header line of the CSV input.
HEADER = ("external_user_key", "lms_username")

#: At most this many input errors are printed; the rest are counted.
MAX_INPUT_ERRORS = 20

EXIT_FAILED = 1

DRY_RUN_NOTE = "DRY RUN: every change was rolled back; nothing was committed."


@dataclass(frozen=True)
class Pair:
    """One pair to link, with where it came from (CSV line number or ``--pair`` position)."""

    position: int
    line: int | None
    external_user_key: str
    username: str


@dataclass
class Outcome:
    """What the database answered so far, matched back to the input pairs."""

    pairs: Sequence[Pair]
    results: dict[int, LinkResult] = field(default_factory=dict)
    chunks_done: int = 0
    _slots: dict[tuple[str, str], deque[Pair]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pair in self.pairs:
            self._slots.setdefault((pair.external_user_key, pair.username), deque()).append(pair)

    def add(self, chunk: Sequence[LinkResult]) -> None:
        # Each result carries the caller's spelling of key and username, so it finds its input
        # pair; identical pairs get identical results, so their order among themselves is moot.
        for result in chunk:
            pair = self._slots[(result.external_user_key, result.username)].popleft()
            self.results[pair.position] = result
        self.chunks_done += 1

    def count(self, result: str) -> int:
        return sum(1 for r in self.results.values() if r.result == result)

    def ordered(self) -> list[tuple[Pair, LinkResult]]:
        return [(p, self.results[p.position]) for p in self.pairs if p.position in self.results]


def register(subparsers: Subparsers) -> None:
    """Add the ``link`` command."""
    p = subparsers.add_parser(
        "link",
        help="link external user keys to LMS usernames (CSV or --pair), in committed chunks",
        description=(
            "Link a program's enrollments of each external user key to the LMS user with that "
            "username. Input: CSV lines 'external_user_key,lms_username' (the header line is "
            "optional, '#' comment lines and blank lines are skipped), from FILE, from stdin "
            "('-'), or --pair arguments. The whole input is checked first; a malformed line "
            "refuses the run. Exit codes: 0 all linked, 1 some failed, 2 refused or stopped."
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
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.set_defaults(handler=run)
    _allow_options_between_positionals(p)


def _allow_options_between_positionals(parser: argparse.ArgumentParser) -> None:
    """Accept ``link UUID --dry-run FILE`` as well as ``link --dry-run UUID FILE``.

    Plain argparse binds the optional FILE positional (as absent) together with PROGRAM_UUID
    and then rejects a FILE that follows an option as "unrecognized". The subcommand parser
    is created by ``add_subparsers``, so it cannot be a subclass; its ``parse_known_args`` is
    replaced by argparse's own intermixed parsing, which calls the original inside.
    """
    plain = parser.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        setattr(parser, "parse_known_args", plain)  # noqa: B010 (a method, replaced)
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            setattr(parser, "parse_known_args", parse_known_args)  # noqa: B010

    setattr(parser, "parse_known_args", parse_known_args)  # noqa: B010


# Input -------------------------------------------------------------------------------------


def parse_program_uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InputError([f"supplied program_uuid '{text}' is not a valid UUID"]) from None


def parse_csv(data: bytes) -> list[Pair]:
    """Pairs of CSV input (read as :func:`csv_records` says); :class:`InputError` listing
    every malformed line."""
    pairs: list[Pair] = []
    errors: list[str] = []
    for number, fields in csv_records(data, {HEADER}, errors):
        problem = _field_problem(fields)
        if problem:
            errors.append(f"line {number}: {problem}")
            continue
        pairs.append(Pair(len(pairs) + 1, number, fields[0], fields[1]))
    if errors:
        raise InputError(errors)
    return pairs


def _field_problem(fields: Sequence[str]) -> str | None:
    if len(fields) != 2:
        return (
            f"expected 2 fields 'external_user_key,lms_username', got {len(fields)}: "
            f"{_csv_pair(*fields)}"
        )
    if not fields[0].strip():
        return "empty external_user_key"
    if not fields[1].strip():
        return "empty lms_username"
    return None


def parse_pair_args(items: Sequence[str]) -> list[Pair]:
    """``--pair key:username`` arguments, split as the Django management command does: exactly
    two non-blank parts (so a key or username containing ':' needs the CSV input)."""
    pairs: list[Pair] = []
    errors: list[str] = []
    for raw in items:
        parts = raw.split(":")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            errors.append(
                f"incorrectly formatted argument '{raw}', "
                "must be in form <external user key>:<lms username>"
            )
            continue
        pairs.append(Pair(len(pairs) + 1, None, parts[0], parts[1]))
    if errors:
        raise InputError(errors)
    return pairs


def read_input(args: argparse.Namespace) -> tuple[list[Pair], str]:
    """The pairs to link and a description of where they came from."""
    if args.pair and args.file is not None:
        raise InputError(["give either FILE (or '-') or --pair arguments, not both"])
    if args.pair:
        pairs, source = parse_pair_args(args.pair), "--pair arguments"
    else:
        if args.file is None and sys.stdin.isatty():
            raise InputError(
                ["no input: give a CSV FILE, '-' to read stdin, or --pair KEY:USERNAME"]
            )
        if args.file in (None, "-"):
            pairs, source = parse_csv(sys.stdin.buffer.read()), "stdin"
        else:
            with open(args.file, "rb") as fh:
                pairs, source = parse_csv(fh.read()), args.file
    if not pairs:
        raise InputError([f"no pairs to link in {source}"])
    return pairs, source


# Running -----------------------------------------------------------------------------------


def link_pairs(
    conn: psycopg.Connection[Any],
    program: UUID,
    pairs: Sequence[Pair],
    chunk_size: int,
    outcome: Outcome,
    show_progress: bool,
) -> None:
    chunks = iter_link_chunks(
        conn,
        program,
        [(p.external_user_key, p.username) for p in pairs],
        chunk_size=chunk_size,
    )
    # A dry run is one transaction rolled back at the end (by the caller): every chunk sees
    # what the chunks before it did, exactly as a real run would. Linking locks rows, not
    # entries of the shared lock table, so holding a whole file's locks is safe.
    with progress_bar("linking", len(pairs), show_progress) as advance:
        for chunk in chunks:
            outcome.add(chunk)
            advance(len(chunk))


def run(args: argparse.Namespace) -> int:
    try:
        program = parse_program_uuid(args.program_uuid)
        pairs, source = read_input(args)
    except InputError as exc:
        _print_refusal(exc.messages)
        return EXIT_ERROR
    except OSError as exc:
        _print_refusal([f"cannot read {args.file}: {exc.strerror or one_line(exc)}"])
        return EXIT_ERROR

    dsn = resolve_dsn(args.dsn)
    outcome = Outcome(pairs)
    stopped: str | None = None
    # Autocommit: each chunk is its own committed transaction. Dry run: one transaction for
    # everything (each chunk inside it under a savepoint), rolled back below.
    with connect(dsn, autocommit=not args.dry_run, application_name="enrolldb link") as conn:
        try:
            link_pairs(
                conn,
                program,
                pairs,
                args.chunk_size,
                outcome,
                show_progress=sys.stderr.isatty(),
            )
        except (EnrollDBError, psycopg.Error) as exc:
            stopped = _describe(exc)
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            if args.dry_run and not conn.closed:
                conn.rollback()

    if stopped is not None:
        if not outcome.results:
            print(f"enrolldb link: {stopped}; nothing was linked", file=sys.stderr)
        else:
            done = "rolled back (dry run)" if args.dry_run else "committed"
            print(
                f"enrolldb link: {stopped}; stopped after {outcome.chunks_done} chunk(s): "
                f"{len(outcome.results)} of {len(pairs)} pairs done and {done}",
                file=sys.stderr,
            )
        if outcome.results:
            _print_outcome(args, program, source, outcome, stopped)
        return 130 if stopped == "interrupted" else EXIT_ERROR
    _print_outcome(args, program, source, outcome, None)
    return EXIT_FAILED if outcome.count("failed") else 0


# Output ------------------------------------------------------------------------------------


def _print_refusal(messages: Sequence[str]) -> None:
    for message in messages[:MAX_INPUT_ERRORS]:
        print(f"enrolldb link: {message}", file=sys.stderr)
    if len(messages) > MAX_INPUT_ERRORS:
        print(f"enrolldb link: ... and {len(messages) - MAX_INPUT_ERRORS} more", file=sys.stderr)
    print("enrolldb link: nothing was linked (the whole input is refused)", file=sys.stderr)


def _describe(exc: Exception) -> str:
    """One line: PostgreSQL's primary message when there is one (no LINE/caret context)."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return " ".join(exc.diag.message_primary.split())
    return one_line(exc)


def _csv_pair(*fields: str) -> str:
    """Fields as one CSV line, quoted where needed: a failure list can be fixed and re-run."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _print_outcome(
    args: argparse.Namespace, program: UUID, source: str, outcome: Outcome, stopped: str | None
) -> None:
    ordered = outcome.ordered()
    if args.format == "json":
        document: dict[str, Any] = {
            "program_uuid": str(program),
            "dry_run": bool(args.dry_run),
            "linked": outcome.count("linked"),
            "relinked": outcome.count("relinked"),
            "failed": outcome.count("failed"),
            "results": [
                {
                    "line": pair.line,
                    "external_user_key": result.external_user_key,
                    "username": result.username,
                    "result": result.result,
                    "error": result.error,
                }
                for pair, result in ordered
            ],
        }
        if stopped is not None:
            document["error"] = stopped
            document["complete"] = False
        json.dump(document, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    _print_text(args, program, source, outcome, ordered, sys.stdout)


def _print_text(
    args: argparse.Namespace,
    program: UUID,
    source: str,
    outcome: Outcome,
    ordered: list[tuple[Pair, LinkResult]],
    out: TextIO,
) -> None:
    if args.dry_run:
        print(DRY_RUN_NOTE, file=out)
    print(
        f"program {program}: {len(ordered)} of {len(outcome.pairs)} pairs from {source}, "
        f"{outcome.chunks_done} chunk(s)",
        file=out,
    )
    print(f"linked:   {outcome.count('linked')}", file=out)
    print(f"relinked: {outcome.count('relinked')}", file=out)
    print(f"failed:   {outcome.count('failed')}", file=out)
    failures = [(pair, result) for pair, result in ordered if result.result == "failed"]
    if failures:
        print("failures:", file=out)
        for pair, result in failures:
            where = f"line {pair.line}: " if pair.line is not None else ""
            what = _csv_pair(result.external_user_key, result.username)
            print(f"  {where}{what}: {result.error}", file=out)
    if args.dry_run:
        print(DRY_RUN_NOTE, file=out)
