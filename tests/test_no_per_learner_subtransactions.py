"""Linking is set-based: no subtransaction per learner (docs/reference.md, Qualities Scale).

Why a grep-level test: a ``BEGIN ... EXCEPTION`` block in PL/pgSQL and a ``SAVEPOINT`` both
open a subtransaction; one per learner in a bulk link of thousands crosses the 64-entry
subtransaction cache and every session on the server slows down (the known PostgreSQL
cliff). The functions must therefore contain no exception handler and no savepoint at all,
which source text shows directly. ``RAISE EXCEPTION`` is fine (it raises, it opens nothing);
comments and string literals are ignored.

Scanned: every file of ``sql/functions`` (the API) and the function bodies of the
migrations (the triggers that fire inside a link).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FUNCTION_FILES = sorted((REPO / "sql" / "functions").glob("*.sql"))
MIGRATION_FILES = sorted(
    p for p in (REPO / "migrations").glob("*.sql") if not p.name.endswith(".rollback.sql")
)

_TOKEN = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>[Ee]?'(?:[^']|'')*')
    | (?P<dollar>\$[A-Za-z_]*\$)
    | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def words(sql: str) -> list[str]:
    """The upper-cased words of ``sql``: comments and quoted strings dropped, dollar-quoted
    bodies kept (they are the PL/pgSQL code)."""
    return [m.group("word").upper() for m in _TOKEN.finditer(sql) if m.group("word")]


def function_bodies(sql: str) -> list[str]:
    """Bodies of ``CREATE [OR REPLACE] FUNCTION|PROCEDURE ... AS $tag$ ... $tag$`` and of
    ``DO $tag$ ... $tag$`` blocks."""
    bodies: list[str] = []
    starts = re.finditer(
        r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\b.*?\bAS\s+(\$[A-Za-z_]*\$)"
        r"|\bDO\s+(\$[A-Za-z_]*\$)",
        sql,
        re.IGNORECASE | re.DOTALL,
    )
    for start in starts:
        tag = start.group(1) or start.group(2)
        end = sql.find(tag, start.end())
        assert end >= 0, f"unterminated {tag} body"
        bodies.append(sql[start.end() : end])
    return bodies


def subtransaction_openers(sql: str) -> list[str]:
    """What in ``sql`` opens a subtransaction: exception handlers and savepoints."""
    found: list[str] = []
    toks = words(sql)
    for i, word in enumerate(toks):
        if word == "SAVEPOINT":
            found.append("SAVEPOINT")
        elif word == "EXCEPTION" and (i == 0 or toks[i - 1] != "RAISE"):
            found.append(" ".join(toks[i : i + 3]))
    return found


def test_checker_finds_handlers_and_ignores_raise_comments_and_strings() -> None:
    body = """
    BEGIN
        RAISE EXCEPTION 'x' USING ERRCODE = 'internal_error';  -- EXCEPTION WHEN in a comment
        PERFORM 'SAVEPOINT s; EXCEPTION WHEN others';
        /* SAVEPOINT in a block comment */
    END;
    """
    assert subtransaction_openers(body) == []
    handler = "BEGIN PERFORM 1; EXCEPTION WHEN unique_violation THEN NULL; END;"
    assert subtransaction_openers(handler) == ["EXCEPTION WHEN UNIQUE_VIOLATION"]
    assert subtransaction_openers("savepoint one") == ["SAVEPOINT"]
    created = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
    assert function_bodies(created) == [" SELECT 1 "]


def test_function_files_exist() -> None:
    assert FUNCTION_FILES, "sql/functions has no .sql files"


@pytest.mark.parametrize("path", FUNCTION_FILES, ids=lambda p: p.name)
def test_api_functions_open_no_subtransactions(path: Path) -> None:
    sql = path.read_text(encoding="utf-8")
    assert subtransaction_openers(sql) == [], (
        f"{path.relative_to(REPO)} opens subtransactions (EXCEPTION handler or SAVEPOINT): "
        "linking must stay set-based, with failures found before writing"
    )


@pytest.mark.parametrize("path", MIGRATION_FILES, ids=lambda p: p.name)
def test_migration_functions_open_no_subtransactions(path: Path) -> None:
    sql = path.read_text(encoding="utf-8")
    offenders = [found for body in function_bodies(sql) for found in subtransaction_openers(body)]
    assert offenders == [], f"a function in {path.relative_to(REPO)} opens subtransactions"
