"""Run the ``enrolldb`` console script as a subprocess, as an operator would.

Shared by the CLI tests: the environment carries no ``PG*`` variables and no
``DATABASE_URL`` (so only the DSN given here, or the documented default, is used), the
package comes from this checkout, and the terminal width is not inherited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def enrolldb_cli(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m enrolldb [--dsn DSN] ARGS...``; never raises on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.pop("DATABASE_URL", None)
    env.pop("COLUMNS", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "python"), env.get("PYTHONPATH")) if p
    )
    dsn_args = ["--dsn", dsn] if dsn is not None else []
    return subprocess.run(
        [sys.executable, "-m", "enrolldb", *dsn_args, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
