"""The demo: find a server, migrate a scratch database, replay the story, clean up.

Why a scratch database: the demo must be safe to run against any server it finds (a
developer's, CI's), so it never touches existing databases and always drops its own,
also when the story fails or the user hits Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from rich.console import Console

from enrolldb.demo_adoption import run_adoption
from enrolldb.demo_story import run_story
from enrolldb.dsn import (
    LOCAL_DEFAULT,
    ServerUnavailableError,
    check_reachable,
    configured_dsn,
    describe,
    scratch_database,
)
from enrolldb.migrate import migrate
from enrolldb.pgserver import throwaway_server

console = Console(highlight=False, soft_wrap=True)


def say(message: str) -> None:
    """Narrate a step of the demo."""
    console.print(message)


@contextmanager
def demo_server(explicit_dsn: str | None) -> Iterator[str]:
    """A server DSN per docs/reference.md, Deployment; a throwaway server as the last resort.

    An explicitly configured server (``--dsn``, ``DATABASE_URL``, ``PG*``) that does not
    answer is an error, not a reason to silently use another server.
    """
    dsn = configured_dsn(explicit_dsn)
    if dsn is not None:
        check_reachable(dsn)
        say(f"[bold]server[/]: {describe(dsn)}")
        yield dsn
        return
    try:
        check_reachable(LOCAL_DEFAULT, timeout=3)
    except ServerUnavailableError:
        say("no server configured or on 127.0.0.1:5432; starting a throwaway server")
        with throwaway_server() as throwaway:
            say(f"[bold]server[/]: throwaway ({describe(throwaway)})")
            yield throwaway
        return
    say(f"[bold]server[/]: {describe(LOCAL_DEFAULT)}")
    yield LOCAL_DEFAULT


def run_demo(explicit_dsn: str | None = None) -> None:
    """Run the whole demo; the scratch database is dropped whatever happens."""
    with demo_server(explicit_dsn) as server, scratch_database(server) as db:
        say(f"[bold]scratch database[/]: {describe(db)}")
        try:
            applied = migrate(db)
            say(f"migrated: {', '.join(applied) or 'nothing pending'}; functions applied")
            with psycopg.connect(db, autocommit=True) as conn:
                run_story(conn, console)
            with scratch_database(server) as adopted:
                migrate(adopted)
                run_adoption(adopted, console)
        finally:
            say("dropping the scratch database")
