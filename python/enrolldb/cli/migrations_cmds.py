"""``enrolldb migrate | rollback | status``: thin wrappers over :mod:`enrolldb.migrate`."""

from __future__ import annotations

import argparse

from enrolldb.cli._common import Subparsers
from enrolldb.dsn import resolve_dsn
from enrolldb.migrate import MIGRATIONS_SCHEMA, migrate_report, rollback, status, status_lines


def register(subparsers: Subparsers) -> None:
    """Add the three schema-management commands."""
    p = subparsers.add_parser("migrate", help="apply pending migrations and re-apply sql/functions")
    p.set_defaults(handler=run_migrate)

    p = subparsers.add_parser("rollback", help="roll back the latest migration")
    p.add_argument("--all", action="store_true", help="roll back every applied migration")
    p.set_defaults(handler=run_rollback)

    p = subparsers.add_parser(
        "status", help="show applied/pending migrations and out-of-date functions (exit 1 if any)"
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
