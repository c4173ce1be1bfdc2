"""``enrolldb migrate | rollback | status``: thin wrappers over :mod:`enrolldb.migrate`."""

from __future__ import annotations

import argparse

from enrolldb.cli._common import Subparsers
from enrolldb.dsn import resolve_dsn
from enrolldb.migrate import migrate, rollback, status


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
    applied = migrate(resolve_dsn(args.dsn))
    if not applied:
        print("nothing to apply; functions re-applied")
        return 0
    for migration_id in applied:
        print(f"applied {migration_id}")
    print("functions re-applied")
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
