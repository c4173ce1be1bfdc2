"""yoyo post-apply hook: (re)deploy every ``sql/functions/*.sql`` file.

Why a hook and not versioned migrations: the API functions are ``CREATE OR REPLACE`` and
must always match the files in the checkout/wheel, so they are re-executed after every
migrate (``enrolldb.migrate`` calls ``run_post_apply`` even when nothing is pending,
because yoyo itself skips hooks then).

The files are found relative to this file: ``../sql/functions``. That holds both in a
repository checkout (``migrations/`` and ``sql/`` at the top level) and in an installed
wheel (``enrolldb/migrations`` and ``enrolldb/sql`` are siblings). Files run in file-name
order, each split with ``sqlparse.split`` (as yoyo splits migrations, so dollar-quoted
bodies stay whole), inside yoyo's transaction: one bad file rolls back the whole apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlparse
from yoyo import step

__depends__: set[str] = set()

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "functions"


def _is_only_comments(statement: str) -> bool:
    return not sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip()


def apply_functions(conn: Any) -> None:
    """Execute each statement of each function file on yoyo's connection."""
    if not FUNCTIONS_DIR.is_dir():
        raise FileNotFoundError(f"SQL function directory not found: {FUNCTIONS_DIR}")
    for path in sorted(FUNCTIONS_DIR.glob("*.sql"), key=lambda p: p.name):
        for statement in sqlparse.split(path.read_text(encoding="utf-8")):
            if _is_only_comments(statement):
                continue
            cursor = conn.cursor()
            try:
                # No parameters are passed, so '%' in function bodies needs no escaping.
                cursor.execute(statement)
            except Exception as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(f"while executing {path.name}")
                raise
            finally:
                cursor.close()


step(apply_functions)
