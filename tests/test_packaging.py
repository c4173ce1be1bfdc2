"""The wheel alone is enough: ``pip install enrolldb`` then ``enrolldb migrate`` (docs/reference.md,
Layout).

Why: an editable install finds ``migrations/`` and ``sql/`` in the checkout, so only a
real wheel in a fresh virtualenv outside the repository proves they are packaged.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.mark.slow
def test_wheel_installs_and_migrates_without_the_source_tree(
    tmp_path: Path, empty_db_dsn: str
) -> None:
    dist = tmp_path / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("enrolldb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = [n for n in names if n.startswith("enrolldb/migrations/")]
    assert any(n.endswith(".sql") for n in migrations), names
    assert "enrolldb/migrations/post-apply.py" in names, names
    expected_functions = sorted(p.name for p in (REPO / "sql" / "functions").glob("*.sql"))
    packaged_functions = sorted(
        n.rsplit("/", 1)[1]
        for n in names
        if n.startswith("enrolldb/sql/functions/") and n.endswith(".sql")
    )
    assert packaged_functions == expected_functions
    assert not [n for n in names if "__pycache__" in n], names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        cwd=tmp_path,
    )
    located = run(
        [str(py), "-c", "from enrolldb.resources import migrations_dir; print(migrations_dir())"],
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(located).is_relative_to(env_dir), located

    out = run(
        [str(env_dir / "bin" / "enrolldb"), "--dsn", empty_db_dsn, "migrate"], cwd=tmp_path
    ).stdout
    assert "applied" in out
    with psycopg.connect(empty_db_dsn) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'enrolldb'"
        ).fetchone()
    assert tables is not None and tables[0] > 0
