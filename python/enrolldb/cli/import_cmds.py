"""``enrolldb import DIR``: adopt a Django deployment's tables, with every row's fate.

The whole run is one transaction (a dry run rolls it back): either every kept row is
written, with its Django id, or nothing is. The summary adds up per table (read = imported
+ changed + present + refused; present only with ``--merge``); ``--report`` lists every
changed or refused row.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from enrolldb.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    Subparsers,
    add_command,
    add_format_option,
    print_json,
    report_refusal,
    wants_json,
)
from enrolldb.dsn import connect, resolve_dsn
from enrolldb.importing import ImportRefused, ImportResult, end_import, run_import, write_report

COMMAND = "import"


def register(subparsers: Subparsers) -> None:
    """Add the ``import`` command."""
    p = add_command(
        subparsers,
        COMMAND,
        help="import a Django export (one CSV file per table) into an enrolldb database",
        description=(
            "Read DIR/<django table>.csv (RFC 4180, header naming the columns, \\N for NULL),\n"
            "give every row one fate (imported as is, imported changed, or refused by a named\n"
            "rule), keep Django ids and write the kept rows, in one transaction. The database\n"
            "must hold no rows in the imported tables, unless --merge. Needs the owner role.\n"
            "docs/operators.md, 'Adopting an existing deployment', has the export commands\n"
            "and docs/reference.md the rules.\n\n"
            "Exit codes: 0 every row imported (as is or changed); 1 some rows refused (the\n"
            "others are imported); 2 could not run (nothing written)."
        ),
    )
    p.add_argument("directory", metavar="DIR", type=Path, help="directory of the export's files")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="do everything, print the same summary and report, then roll back",
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        type=Path,
        help="write every changed or refused row to FILE (CSV; JSON with --format json)",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="merge by id into a database that holds rows: a row whose id is there with the "
        "same values is already present, with other values refused; new rows meet every rule "
        "against the database's rows too",
    )
    add_format_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    json_output = wants_json(args)
    with connect(resolve_dsn(args.dsn), application_name="enrolldb import") as conn:
        try:
            result = run_import(conn, args.directory, dry_run=args.dry_run, merge=args.merge)
            if args.report is not None:
                write_report(conn, args.report, "json" if json_output else "csv")
            end_import(conn)
        except ImportRefused as exc:
            conn.rollback()
            return report_refusal(
                COMMAND, exc.messages, json_output=json_output, conclusion="nothing was written"
            )
        if args.dry_run:
            conn.rollback()
        else:
            conn.commit()
    print_summary(result, json_output=json_output, report=args.report)
    return EXIT_FAILED if result.refused else EXIT_OK


def print_summary(result: ImportResult, *, json_output: bool, report: Path | None) -> None:
    if json_output:
        print_json(
            {
                "command": COMMAND,
                "dry_run": result.dry_run,
                "merge": result.merge,
                "tables": [asdict(t) for t in result.tables],
                "refused": result.refused,
                "report": str(report) if report else None,
                "complete": True,
            }
        )
        return
    width = max(len(t.table) for t in result.tables)
    names = ("read", "imported", "changed", *(("present",) if result.merge else ()), "refused")
    print(f"{'table':<{width}}  " + " ".join(f"{n:>8}" for n in names))
    for t in result.tables:
        values = " ".join(f"{getattr(t, n):>8}" for n in names)
        print(f"{t.table:<{width}}  {values}")
    done = "dry run: rolled back, nothing written" if result.dry_run else "committed"
    where = f"; every changed or refused row is in {report}" if report else ""
    print(f"{done}; refused rows: {result.refused}{where}", file=sys.stderr)
