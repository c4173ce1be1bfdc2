"""What every command shares: exit codes, the parser class and common options, argument
types, and how a refused run is reported.

Kept in one module so that ``link``, ``enroll`` and the rest cannot drift apart on the things
operators script against: an exit code, the shape of a refusal on stderr, the JSON object
that monitoring reads on stdout when a run is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias
from uuid import UUID

import psycopg

from enrolldb.dsn import one_line

#: What ``register()`` receives: the object returned by ``add_subparsers()``.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: A command handler: gets the parsed arguments, returns the process exit code.
Handler: TypeAlias = Callable[[argparse.Namespace], int]

#: Every request succeeded (or there was nothing to do).
EXIT_OK = 0
#: The run completed and some requests failed (listed in the report).
EXIT_FAILED = 1
#: Usage, environment or database errors: the run was refused or stopped.
EXIT_ERROR = 2
#: Interrupted (Ctrl-C): what was committed before stays committed.
EXIT_INTERRUPTED = 130

#: At most this many refusal messages are printed; the rest are counted.
MAX_MESSAGES = 20

DSN_HELP = (
    "PostgreSQL server: postgresql://... or key=value conninfo; default: DATABASE_URL, "
    "then the libpq PG* variables (PGHOST, PGUSER, PGSERVICE, ...), "
    "then host=127.0.0.1 port=5432 user=postgres"
)

#: Said at the end of every command's ``--help``.
DSN_EPILOG = (
    "The server comes from --dsn (accepted before or after the command name), else\n"
    "DATABASE_URL, else the libpq PG* variables, else 127.0.0.1:5432 as postgres."
)


class CommandParser(argparse.ArgumentParser):
    """The parser of each command: options may come between positionals.

    ``enrolldb link UUID --dry-run FILE`` must work as well as ``link --dry-run UUID FILE``;
    plain argparse binds an optional positional (FILE) as absent as soon as an option
    follows the first positional and then rejects FILE as unrecognized. argparse's own
    intermixed parsing handles it; this class makes it the command parsers' way of parsing
    (``add_subparsers(parser_class=CommandParser)``).
    """

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._intermixing:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def add_command(
    subparsers: Subparsers, name: str, *, help: str, description: str
) -> argparse.ArgumentParser:
    """A command's parser with the options every command takes (``--dsn``), the DSN epilog,
    and the description shown as written."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=DSN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # SUPPRESS: when not given after the command, the global --dsn (or None) stays.
    parser.add_argument("--dsn", default=argparse.SUPPRESS, help=DSN_HELP)
    return parser


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default) or one JSON object on stdout, also when the run is refused",
    )


def chunk_size(text: str) -> int:
    """argparse type of ``--chunk-size``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class Refused(Exception):
    """The run cannot start as asked (bad input, bad argument); nothing was written."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def parse_uuid(text: str, what: str) -> UUID:
    """``text`` as a UUID, or :class:`Refused` naming the argument (``what``)."""
    try:
        return UUID(text)
    except ValueError:
        raise Refused([f"supplied {what} '{text}' is not a valid UUID"]) from None


def describe_error(exc: BaseException) -> str:
    """One line: PostgreSQL's primary message when there is one (no LINE/caret context)."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return " ".join(exc.diag.message_primary.split())
    return one_line(exc)


def print_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


def report_refusal(
    command: str,
    messages: Sequence[str],
    *,
    json_output: bool,
    conclusion: str | None = "nothing was written (the whole input is refused)",
    **context: Any,
) -> int:
    """Print why a run was refused, on stderr (and as JSON on stdout with ``--format json``,
    so monitoring never reads an empty file); return :data:`EXIT_ERROR`."""
    for message in messages[:MAX_MESSAGES]:
        print(f"enrolldb {command}: {message}", file=sys.stderr)
    if len(messages) > MAX_MESSAGES:
        print(f"enrolldb {command}: ... and {len(messages) - MAX_MESSAGES} more", file=sys.stderr)
    if conclusion:
        print(f"enrolldb {command}: {conclusion}", file=sys.stderr)
    if json_output:
        print_json(error_document(command, messages, **context))
    return EXIT_ERROR


def error_document(command: str, messages: Sequence[str], **context: Any) -> dict[str, Any]:
    """The JSON object of a refused run: ``{"command", ..., "error", "messages",
    "complete": false}``."""
    return {
        "command": command,
        **context,
        "error": messages[0] if messages else "refused",
        "messages": list(messages),
        "complete": False,
    }


def wants_json(args: argparse.Namespace) -> bool:
    return getattr(args, "format", "text") == "json"
