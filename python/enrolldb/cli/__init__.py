"""The ``enrolldb`` console script.

Commands live in small modules listed in :data:`COMMAND_MODULES`; each exposes
``register(subparsers) -> None`` and sets ``handler`` via ``set_defaults``. Adding a command
(link, matriculate, doctor, ...) means writing a module and adding one entry here, without
touching the error handling, which is shared: any database or set-up error becomes one
line on stderr and exit code 2, never a traceback (these are operator tools, often run
from cron or CI logs where a traceback hides the one line that matters).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

import psycopg
from yoyo import exceptions as yoyo_exceptions

from enrolldb import __version__
from enrolldb.cli import (
    demo_cmds,
    doctor_cmds,
    enroll_cmds,
    import_cmds,
    link_cmds,
    matriculate_cmds,
    migrations_cmds,
)
from enrolldb.cli._common import (
    DSN_EPILOG,
    DSN_HELP,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    CommandParser,
    Handler,
    error_document,
    print_json,
    wants_json,
)
from enrolldb.dsn import SetupError, one_line
from enrolldb.errors import EnrollDBError

COMMAND_MODULES: tuple[ModuleType, ...] = (
    migrations_cmds,
    link_cmds,
    matriculate_cmds,
    enroll_cmds,
    doctor_cmds,
    import_cmds,
    demo_cmds,
)

_EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    SetupError,
    EnrollDBError,
    psycopg.Error,
    yoyo_exceptions.LockTimeout,
    yoyo_exceptions.BadMigration,
    yoyo_exceptions.MigrationConflict,
    FileNotFoundError,
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command module registered."""
    parser = argparse.ArgumentParser(
        prog="enrolldb",
        description="Program enrollments enforced by PostgreSQL. "
        "`enrolldb COMMAND --help` describes each command.",
        epilog=DSN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--dsn", help=DSN_HELP)
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=CommandParser
    )
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except _EXPECTED_ERRORS as exc:
        return _fail(args, one_line(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", EXIT_INTERRUPTED)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """One line on stderr; with ``--format json`` also an error object on stdout, so that
    monitoring reading stdout never gets an empty file."""
    print(f"enrolldb {args.command}: {message}", file=sys.stderr)
    if wants_json(args):
        print_json(error_document(args.command, [message]))
    return code


if __name__ == "__main__":
    sys.exit(main())
