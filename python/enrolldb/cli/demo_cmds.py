"""``enrolldb demo``: replay the SPEC §1 scenario on a scratch database."""

from __future__ import annotations

import argparse

from enrolldb.cli._common import Subparsers
from enrolldb.demo import run_demo


def register(subparsers: Subparsers) -> None:
    """Add the ``demo`` command."""
    p = subparsers.add_parser(
        "demo",
        help="migrate a scratch database, replay the two-program scenario, drop the database",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.dsn)
    return 0
