"""``enrolldb matriculate USER_ID ORGANIZATION_KEY EXTERNAL_KEY``: replay an SSO sign-in.

For support staff when a learner's sign-in did not link their waiting enrollments (the SAML
hook failed, the registrar enrolled them after their first sign-in, ...). It makes exactly
the call the SSO path makes (``enrolldb.matriculate_learner``), commits it, and shows one
line per waiting program enrollment attempted.

Exit codes: 0 every attempted enrollment linked (or none was waiting), 1 some failed,
2 whole-call error (unknown user, invalid key, NULL argument, database unreachable).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from enrolldb.cli._common import EXIT_FAILED, EXIT_OK, Subparsers, add_command, add_format_option
from enrolldb.dsn import connect, resolve_dsn
from enrolldb.linking import MatriculationResult, matriculate_learner


def register(subparsers: Subparsers) -> None:
    """Add the ``matriculate`` command."""
    p = add_command(
        subparsers,
        "matriculate",
        help="replay a learner's SSO sign-in: link their waiting program enrollments",
        description=(
            "Record that USER_ID signed in through ORGANIZATION_KEY's SSO as EXTERNAL_KEY and\n"
            "link every waiting program enrollment of that organization's programs with that\n"
            "key (case-insensitive), committing the result (enrolldb.matriculate_learner).\n\n"
            "Exit codes: 0 all linked (or none waiting); 1 some failed; 2 whole-call error\n"
            "(unknown user, invalid key, no server)."
        ),
    )
    p.add_argument("user_id", metavar="USER_ID", type=int, help="auth_user.id of the learner")
    p.add_argument(
        "organization_key",
        metavar="ORGANIZATION_KEY",
        help="the programs' authoring_organization_key (the SSO's organization)",
    )
    p.add_argument("external_key", metavar="EXTERNAL_KEY", help="the learner's external user key")
    add_format_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # The client logs each failure as a warning for services; here the table shows them, so
    # keep Python's last-resort handler from printing them a second time on stderr.
    logging.getLogger("enrolldb").addHandler(logging.NullHandler())
    dsn = resolve_dsn(args.dsn)
    # Whole-call errors (unknown user, invalid key) reach the CLI's handler: one line, exit 2.
    with connect(dsn, autocommit=True, application_name="enrolldb matriculate") as conn:
        results = matriculate_learner(conn, args.user_id, args.organization_key, args.external_key)
    failed = sum(1 for r in results if r.error is not None)
    if args.format == "json":
        _print_json(args, results)
    else:
        _print_text(args, results)
    return EXIT_FAILED if failed else EXIT_OK


def _print_json(args: argparse.Namespace, results: list[MatriculationResult]) -> None:
    document = {
        "user_id": args.user_id,
        "organization_key": args.organization_key,
        "external_user_key": args.external_key,
        "linked": sum(1 for r in results if r.error is None),
        "failed": sum(1 for r in results if r.error is not None),
        "results": [
            {
                "program_enrollment_id": r.program_enrollment_id,
                "program_uuid": str(r.program_uuid),
                "result": "failed" if r.error is not None else "linked",
                "error": r.error,
            }
            for r in results
        ],
    }
    json.dump(document, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


def _print_text(args: argparse.Namespace, results: list[MatriculationResult]) -> None:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    who = f"user {args.user_id}, organization {args.organization_key!r}, key {args.external_key!r}"
    if not results:
        console.print(
            f"{who}: no waiting program enrollment matched; the identity is recorded, so "
            "enrollments the registrar writes later are linked at once",
            markup=False,
        )
        return
    table = Table(title=Text(f"matriculation of {who}"), title_justify="left")
    table.add_column("program enrollment", justify="right", no_wrap=True)
    table.add_column("program uuid", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("error", overflow="fold")
    for r in results:
        table.add_row(
            Text(str(r.program_enrollment_id)),
            Text(str(r.program_uuid)),
            Text("failed" if r.error is not None else "linked"),
            Text(r.error or ""),
        )
    console.print(table)
    linked = sum(1 for r in results if r.error is None)
    console.print(f"linked: {linked}  failed: {len(results) - linked}", markup=False)
