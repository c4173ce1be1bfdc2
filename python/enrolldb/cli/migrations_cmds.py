"""``enrolldb migrate | rollback | status``: thin wrappers over :mod:`enrolldb.migrate`."""

from __future__ import annotations

import argparse
import contextlib
import io

from enrolldb.cli._common import Subparsers, add_command
from enrolldb.dsn import resolve_dsn
from enrolldb.migrate import migrate, rollback, status


def register(subparsers: Subparsers) -> None:
    """Add the three schema-management commands."""
    p = add_command(
        subparsers,
        "migrate",
        help="apply pending migrations and re-apply sql/functions",
        description=(
            "Apply every pending migration (each in its own transaction), then re-apply every\n"
            "sql/functions/*.sql file, even when no migration was pending, so the database runs\n"
            "the functions of this version. Run it as the role that owns the schema enrolldb.\n\n"
            "Exit codes: 0 done; 2 error (lock timeout, failing migration, no server)."
        ),
    )
    p.set_defaults(handler=run_migrate)

    p = add_command(
        subparsers,
        "rollback",
        help="roll back the latest migration",
        description=(
            "Run the .rollback.sql of the newest applied migration (with --all: of every\n"
            "applied migration, newest first). Rolling back 0001_schema drops the schema\n"
            "enrolldb with all its data. The roles enrolldb_app and enrolldb_readonly stay.\n\n"
            "Exit codes: 0 done (or nothing to roll back); 2 error."
        ),
    )
    p.add_argument("--all", action="store_true", help="roll back every applied migration")
    p.set_defaults(handler=run_rollback)

    p = add_command(
        subparsers,
        "status",
        help="show applied/pending migrations and out-of-date functions (exit 1 if any)",
        description=(
            "List the applied and the pending migrations, and the API functions whose deployed\n"
            "definition differs from sql/functions (a hand edit, or a new version not yet\n"
            "migrated). It only reads: a database never migrated is reported as not migrated\n"
            "and left without a new relation.\n\n"
            "Exit codes: 0 up to date; 1 something pending or out of date; 2 error."
        ),
    )
    p.set_defaults(handler=run_status)


def _quiet() -> contextlib.AbstractContextManager[object]:
    """yoyo prints the rows of any migration statement that returns some (0005 has a
    top-level ``SELECT``) as a psql-style table on stdout; the commands say what they did
    themselves, so that table goes nowhere."""
    return contextlib.redirect_stdout(io.StringIO())


def run_migrate(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args.dsn)
    with _quiet():
        applied = migrate(dsn)
    if not applied:
        print("nothing to apply; functions re-applied")
        return 0
    for migration_id in applied:
        print(f"applied {migration_id}")
    print("functions re-applied")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args.dsn)
    with _quiet():
        rolled_back = rollback(dsn, all=args.all)
    if not rolled_back:
        print("nothing to roll back")
    for migration_id in rolled_back:
        print(f"rolled back {migration_id}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    st = status(resolve_dsn(args.dsn))
    print(f"applied ({len(st.applied)}):")
    for migration_id in st.applied:
        print(f"  {migration_id}")
    print(f"pending ({len(st.pending)}):")
    for migration_id in st.pending:
        print(f"  {migration_id}")
    if st.functions_error and st.pending:
        print("functions: not checked until the pending migrations are applied")
    elif st.functions_error:
        print(f"functions: cannot check ({st.functions_error})")
    elif st.functions_out_of_date:
        print(f"functions out of date ({len(st.functions_out_of_date)}), run `enrolldb migrate`:")
        for name in st.functions_out_of_date:
            print(f"  {name}")
    else:
        print("functions: up to date")
    return 0 if st.up_to_date else 1
