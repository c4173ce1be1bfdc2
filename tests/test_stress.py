"""The short stress run of ``make test`` (the long one is ``make stress``; see
tests/stress_world.py). A random seed each run, printed in the failure message so that
``make stress SEED=<seed>`` (or ``STRESS_SEED=<seed> pytest tests/test_stress.py``) replays it.
"""

from __future__ import annotations

import os
import random

import psycopg

from enrolldb.migrate import migrate
from stress_world import run


def seed() -> int:
    return int(os.environ.get("STRESS_SEED") or random.randrange(1, 10**9))


def test_short_stress_run_is_clean(db_dsn: str) -> None:
    chosen = seed()
    report = run(db_dsn, seed=chosen, workers=3, calls_per_worker=120)
    assert report.ok, (
        f"{report.summary()}\nreplay this run: STRESS_SEED={chosen} make pytest "
        "PYTEST_ARGS=tests/test_stress.py"
    )
    assert report.calls == 360
    # Every call is accounted for by its operation, and the run did real work.
    assert sum(n for k, n in report.outcomes.items() if k.startswith("calls ")) == 360
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM enrolldb.program_enrollments_programenrollment"
        ).fetchone()
    assert row is not None and row[0] > 0


def test_a_seed_replays_the_same_calls(db_dsn: str, empty_db_dsn: str) -> None:
    """With one worker the run is fully determined by the seed: same outcomes, same rows."""
    migrate(empty_db_dsn)
    chosen = seed()
    first = run(db_dsn, seed=chosen, workers=1, calls_per_worker=80)
    second = run(empty_db_dsn, seed=chosen, workers=1, calls_per_worker=80)
    assert first.ok and second.ok, (first.summary(), second.summary())
    assert first.outcomes == second.outcomes

    def keys(dsn: str) -> list[tuple[object, ...]]:
        with psycopg.connect(dsn) as conn:
            return conn.execute(
                "SELECT id, user_id, external_user_key ~ '^retired_external_key_', status "
                "FROM enrolldb.program_enrollments_programenrollment ORDER BY id"
            ).fetchall()

    assert keys(db_dsn) == keys(empty_db_dsn)
