"""PostgreSQL's own isolation tester on the linking functions (``tests/isolation``).

Why in addition to ``test_concurrency.py``: ``isolationtester`` replays every listed
interleaving of sessions step by step, detects on its own which step waits for a lock, and
compares the whole transcript (results, waits, errors) with a reviewed expected file. A
change that makes a session stop waiting, or wait somewhere else, shows up as a diff.

Each spec runs against a fresh database cloned from the migrated template, through
``pg_isolation_regress --use-existing`` from the PostgreSQL installation whose major version
matches the server (Debian/Ubuntu: package ``postgresql-<major>``, under
``/usr/lib/postgresql/<major>/lib/pgxs/src/test/isolation``). Without it the test is skipped
and says what to install.

To accept a deliberate change of a transcript, copy ``results/<spec>.out`` from the
reported output directory over ``tests/isolation/expected/<spec>.out`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

ISOLATION_DIR = Path(__file__).resolve().parent / "isolation"
SPECS = sorted((ISOLATION_DIR / "specs").glob("*.spec"))
RELATIVE = Path("pgxs") / "src" / "test" / "isolation" / "pg_isolation_regress"


def pkglibdirs(major: int) -> list[Path]:
    """Where the installation of ``major`` keeps pgxs: pg_config first, then Debian's."""
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--version", "--pkglibdir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.split("\n")
            version = out[0].split()[1] if out[0].split()[1:] else ""
            if version.split(".")[0] == str(major):
                found.append(Path(out[1].strip()))
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    found.append(Path(f"/usr/lib/postgresql/{major}/lib"))
    return found


def find_isolation_regress(major: int) -> Path | None:
    for libdir in pkglibdirs(major):
        binary = libdir / RELATIVE
        isolationtester = binary.parent / "isolationtester"
        if os.access(binary, os.X_OK) and os.access(isolationtester, os.X_OK):
            return binary
    return None


def server_major(db: psycopg.Connection[tuple[Any, ...]]) -> int:
    row = db.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10_000


def test_specs_have_expected_outputs() -> None:
    assert SPECS, "tests/isolation/specs has no .spec files"
    for spec in SPECS:
        assert (ISOLATION_DIR / "expected" / f"{spec.stem}.out").is_file(), spec.name


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_isolation_spec(
    spec: Path, db: psycopg.Connection[tuple[Any, ...]], db_dsn: str, tmp_path: Path
) -> None:
    major = server_major(db)
    binary = find_isolation_regress(major)
    if binary is None:
        pytest.skip(
            f"pg_isolation_regress for PostgreSQL {major} not found (looked under pg_config "
            f"--pkglibdir and /usr/lib/postgresql/{major}/lib/{RELATIVE}); install the "
            f"PostgreSQL {major} server package (e.g. apt-get install postgresql-{major})"
        )
    params = conninfo_to_dict(db_dsn)
    env = dict(os.environ)
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    command = [
        str(binary),
        "--use-existing",
        f"--dbname={params['dbname']}",
        f"--inputdir={ISOLATION_DIR}",
        f"--outputdir={tmp_path}",
    ]
    for option in ("host", "port", "user"):
        if params.get(option):
            command.append(f"--{option}={params[option]}")
    command.append(spec.stem)
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=False
    )
    diffs = tmp_path / "regression.diffs"
    detail = diffs.read_text(encoding="utf-8") if diffs.is_file() else ""
    assert done.returncode == 0, (
        f"{spec.name}: transcript differs from expected (output in {tmp_path}):\n"
        f"{done.stdout}\n{done.stderr}\n{detail}"
    )
