"""``enrolldb demo``: replay docs/reference.md, What it is scenario on a scratch database."""

from __future__ import annotations

import argparse

from enrolldb.cli._common import Subparsers, add_command
from enrolldb.demo import run_demo


def register(subparsers: Subparsers) -> None:
    """Add the ``demo`` command."""
    p = add_command(
        subparsers,
        "demo",
        help="migrate a scratch database, replay the two-program scenario, drop the database",
        description=(
            "Create a scratch database on the server (named enrolldb_demo_<random>), migrate\n"
            "it, replay the two-program scenario (a course run in two programs, the learner\n"
            "canceled out of one and enrolled in the other) and show it linking cleanly, then\n"
            "drop the database. The role needs CREATEDB.\n\n"
            "Exit codes: 0 the scenario ran as expected; 2 error."
        ),
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.dsn)
    return 0
