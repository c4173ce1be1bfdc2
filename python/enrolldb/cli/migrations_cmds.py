"""``enrolldb migrate | rollback | status``: thin wrappers over :mod:`enrolldb.migrate`."""

from __future__ import annotations

import argparse

from enrolldb.cli._common import Subparsers, add_command
from enrolldb.dsn import resolve_dsn
from enrolldb.migrate import MIGRATIONS_SCHEMA, migrate_report, rollback, status, status_lines


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


def run_migrate(args: argparse.Namespace) -> int:
    result = migrate_report(resolve_dsn(args.dsn))
    if result.moved_bookkeeping:
        print(f"moved yoyo's tables from schema public to {MIGRATIONS_SCHEMA}")
    if not result.applied:
        print("nothing to apply; functions re-applied")
    for migration_id in result.applied:
        print(f"applied {migration_id}")
    if result.applied:
        print("functions re-applied")
    for signature in result.dropped_functions:
        print(f"dropped {signature}: no file in sql/functions or migrations defines it")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    rolled_back = rollback(resolve_dsn(args.dsn), all=args.all)
    if not rolled_back:
        print("nothing to roll back")
    for migration_id in rolled_back:
        print(f"rolled back {migration_id}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    st = status(resolve_dsn(args.dsn))
    if not st.migrated:
        print("not migrated: enrolldb was never applied to this database (run `enrolldb migrate`)")
        return 1
    print(f"applied ({len(st.applied)}):")
    for migration_id in st.applied:
        print(f"  {migration_id}")
    print(f"pending ({len(st.pending)}):")
    for migration_id in st.pending:
        print(f"  {migration_id}")
    for line in status_lines(st):
        print(line)
    return 0 if st.up_to_date else 1
