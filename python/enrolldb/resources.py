"""Where the migrations and SQL function files live.

An installed wheel carries them as package data (``enrolldb/migrations`` and
``enrolldb/sql``, force-included by hatchling), so ``pip install enrolldb`` followed by
``enrolldb migrate`` works without the source tree. An editable install does *not* get
force-included paths, so we fall back to the repository checkout that contains this file.
Package data wins so that an installed wheel never picks up an unrelated checkout.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import sqlparse

_PACKAGE_DIR = Path(__file__).resolve().parent
# python/enrolldb/resources.py -> repository root is two levels above the package.
_REPO_ROOT = _PACKAGE_DIR.parent.parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"enrolldb resources not found (tried: {tried})")


def migrations_dir() -> Path:
    """Directory of yoyo migrations (``*.sql``, ``*.rollback.sql``, ``post-apply.py``)."""
    return _first_existing(_PACKAGE_DIR / "migrations", _REPO_ROOT / "migrations")


def sql_dir() -> Path:
    """Directory holding ``functions/`` (and the committed ``schema.snapshot``)."""
    return _first_existing(_PACKAGE_DIR / "sql", _REPO_ROOT / "sql")


def functions_dir() -> Path:
    """Directory of the repeatable ``CREATE OR REPLACE`` API function files."""
    return _first_existing(_PACKAGE_DIR / "sql" / "functions", _REPO_ROOT / "sql" / "functions")


def function_files() -> list[Path]:
    """The function files in the order the post-apply hook executes them (by file name)."""
    return sorted(functions_dir().glob("*.sql"), key=lambda p: p.name)


def function_statements() -> Iterator[tuple[Path, str]]:
    """Every statement of every function file, in execution order, with its file.

    The one deploy loop: ``enrolldb migrate`` (through yoyo's post-apply hook,
    ``migrations/post-apply.py``) and ``status``/``doctor``'s drift check both execute
    exactly these statements. Files are split with ``sqlparse.split``, as yoyo splits
    migrations, so dollar-quoted bodies stay whole; statements that are only comments are
    skipped (the server rejects an empty query).
    """
    for path in function_files():
        for statement in sqlparse.split(path.read_text(encoding="utf-8")):
            if sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip():
                yield path, statement
