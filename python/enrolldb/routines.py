"""Which functions of our schemas the shipped SQL files define, and which others exist.

Why: ``CREATE OR REPLACE`` cannot remove an overload. When a function's parameters change in
``sql/functions``, the old signature stays behind after ``migrate``, calls become ambiguous,
and nothing else would notice. The expected set is derived by reading the files (no scratch
database, so ``status`` and ``doctor`` can do it as a read-only role):

- every ``CREATE [OR REPLACE] FUNCTION|PROCEDURE <schema>.<name>(...)`` statement of
  ``sql/functions/*.sql`` and of the *applied* migrations (trigger and helper functions
  defined by migrations count as defined), minus
- every ``DROP FUNCTION|PROCEDURE|ROUTINE <schema>.<name>(...)`` statement of a later
  applied migration,

where ``<schema>`` is one of :data:`SCHEMAS`: the API's, the internals' and the import's.

Argument lists are turned into types by PostgreSQL itself (``to_regtype``/``format_type``)
and compared with ``oidvectortypes(proargtypes)``, so ``int`` and ``integer`` or
``timestamptz`` and ``timestamp with time zone`` are the same. A name whose argument types do
not resolve (e.g. a type of a migration not yet applied) protects every function of that
name: when in doubt, nothing is reported or dropped. tests/test_function_drift.py checks the
parse against a real deploy (nothing extra, nothing missing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlparse

#: The schemas whose functions the files of ``sql/functions`` (and the migrations) define.
SCHEMAS = ("enrolldb", "enrolldb_internal", "enrolldb_import")
_SCHEMA_NAME = r"\"?(enrolldb|enrolldb_internal|enrolldb_import)\"?"

_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_CREATE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\s+"
    + _SCHEMA_NAME
    + r"\.\"?(\w+)\"?\s*\(",
    re.IGNORECASE,
)
_DROP = re.compile(
    r"DROP\s+(?:FUNCTION|PROCEDURE|ROUTINE)\s+(?:IF\s+EXISTS\s+)?"
    + _SCHEMA_NAME
    + r"\.\"?(\w+)\"?\s*\(",
    re.IGNORECASE,
)
_DEFAULT = re.compile(r"\s+DEFAULT\s+|\s*=\s*", re.IGNORECASE)
_MODES = {"in", "out", "inout", "variadic"}
#: First words of built-in type names that contain a space ("double precision", ...): an
#: argument starting with one of them has no parameter name in front.
_MULTIWORD_TYPE_STARTS = {"double", "character", "char", "national", "bit", "time", "timestamp"}


@dataclass(frozen=True)
class Declared:
    """A routine as a file declares it: schema, name and argument types as written."""

    schema: str
    name: str
    arg_types: tuple[str, ...]


def _balanced(text: str, start: int) -> str:
    """The text between the ``(`` before ``start`` and its matching ``)``."""
    depth = 1
    quote: str | None = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
    raise ValueError(f"unbalanced parentheses after: {text[:start]!r}")


def _split_top_level(args: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in args:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _arg_type(arg: str) -> str | None:
    """The type of one argument declaration; None for an OUT argument (not in the signature)."""
    arg = _DEFAULT.split(arg, maxsplit=1)[0].strip()
    words = arg.split()
    if words and words[0].lower() in _MODES:
        if words[0].lower() == "out":
            return None
        words = words[1:]
    if len(words) >= 2 and words[0].lower() not in _MULTIWORD_TYPE_STARTS:
        words = words[1:]  # the parameter name
    return " ".join(words)


def _statements(path: Path) -> Iterable[str]:
    for statement in sqlparse.split(path.read_text(encoding="utf-8")):
        yield _LEADING_COMMENTS.sub("", statement)


def _signature(statement: str, match: re.Match[str]) -> Declared:
    args = _balanced(statement, match.end())
    types = [_arg_type(a) for a in _split_top_level(args)]
    return Declared(match.group(1), match.group(2), tuple(t for t in types if t is not None))


def declared_routines(files: Sequence[Path]) -> list[Declared]:
    """Routines of our schemas created by ``files`` (in order) and not dropped later."""
    declared: list[Declared] = []
    for path in files:
        for statement in _statements(path):
            created = _CREATE.match(statement)
            if created:
                declared.append(_signature(statement, created))
                continue
            dropped = _DROP.match(statement)
            if dropped:
                gone = _signature(statement, dropped)
                declared = [d for d in declared if d != gone]
    return declared


@dataclass(frozen=True)
class Expected:
    """Declared routines resolved by the server: (schema, name, canonical type list)."""

    signatures: frozenset[tuple[str, str, str]]
    #: (schema, name) whose argument types did not all resolve: every overload is kept.
    protected_names: frozenset[tuple[str, str]]


def resolve(conn: psycopg.Connection[Any], declared: Sequence[Declared]) -> Expected:
    """Canonical type names for every declared argument list, as ``oidvectortypes`` spells them."""
    type_texts = sorted({t for d in declared for t in d.arg_types})
    canonical: dict[str, str | None] = {}
    if type_texts:
        # A type of a schema the role may not use (enrolldb_internal, for every role but the
        # owner) stays unresolved: to_regtype raises instead of returning NULL there.
        rows = conn.execute(
            "SELECT t, CASE WHEN s.nspname IS NULL"
            " OR pg_catalog.has_schema_privilege(s.oid, 'USAGE')"
            " THEN pg_catalog.format_type(pg_catalog.to_regtype(t), NULL) END"
            " FROM pg_catalog.unnest(%s::text[]) AS t"
            " LEFT JOIN pg_catalog.pg_namespace AS s"
            " ON s.nspname = pg_catalog.substring(t, '^\"?([A-Za-z_][A-Za-z0-9_$]*)\"?\\.')",
            (type_texts,),
        ).fetchall()
        canonical = {str(t): (None if c is None else str(c)) for t, c in rows}
    signatures: set[tuple[str, str, str]] = set()
    protected: set[tuple[str, str]] = set()
    for d in declared:
        types = [canonical.get(t) for t in d.arg_types]
        if any(t is None for t in types):
            protected.add((d.schema, d.name))
        else:
            signatures.add((d.schema, d.name, ", ".join(t for t in types if t is not None)))
    return Expected(frozenset(signatures), frozenset(protected))


def undeclared_routines(conn: psycopg.Connection[Any], declared: Sequence[Declared]) -> list[str]:
    """Signatures (``schema.name(types)``) of functions and procedures of :data:`SCHEMAS`
    that no declared routine accounts for, sorted."""
    expected = resolve(conn, declared)
    rows = conn.execute(
        "SELECT n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes),"
        " pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)"
        " || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'"
        " FROM pg_catalog.pg_proc AS p"
        " JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace"
        " WHERE n.nspname = ANY(%s) AND p.prokind IN ('f', 'p')",
        (list(SCHEMAS),),
    ).fetchall()
    return sorted(
        str(signature)
        for schema, name, types, signature in rows
        if (schema, name) not in expected.protected_names
        and (schema, name, types) not in expected.signatures
    )
