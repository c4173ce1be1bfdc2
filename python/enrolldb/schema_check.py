"""Are the constraints, indexes and triggers that enforce the rules still there, as shipped?

Why: the rules hold because of catalog objects (a partial unique index, CHECK constraints,
statement triggers). A DBA can drop or disable one (``DISABLE TRIGGER``, ``DROP INDEX``), a
constraint can be left ``NOT VALID``, a failed ``CREATE INDEX CONCURRENTLY`` leaves an
invalid index, and nothing else notices: the rows stay fine until the next bad write.
``enrolldb doctor`` therefore compares the live objects of :data:`enrolldb.routines.SCHEMAS`
with the committed ``sql/schema.snapshot`` (sections ``constraints``, ``indexes`` and
``triggers``, produced by the same queries, :func:`enrolldb.schema_snapshot.section_entries`)
and reads the state the definitions do not fully show: ``pg_trigger.tgenabled``,
``pg_constraint.convalidated``, ``pg_index.indisvalid``/``indisready``.

The expected set is the snapshot file, never a list of names here: a migration that adds an
index changes the snapshot (the tests insist it is current), and doctor follows.

Only catalogs are read, which every role may do: members of enrolldb_readonly get the same
findings as the owner. ``enrolldb migrate`` does not recreate a dropped object (migrations
run once; only the function files are re-applied), so each finding carries the SQL that
puts the object back, to be run by the schema owner.

Objects present but not shipped (a DBA's own index, say) are reported as information and do
not make doctor unhealthy: adding an index is a legitimate tuning decision. Everything else
(missing, different, disabled, not validated, invalid) does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from enrolldb.resources import sql_dir
from enrolldb.routines import SCHEMAS
from enrolldb.schema_snapshot import catalog_cursor, parse_section, section_entries

#: The snapshot sections compared (each entry one line).
SECTIONS = ("constraints", "indexes", "triggers")

_IDENT = r'(?:"(?:[^"]|"")+"|[^\s".(),]+)'
_QUALIFIED = rf"(?P<schema>{_IDENT})\.(?P<rel>{_IDENT})"
_PATTERNS = {
    "constraints": re.compile(
        rf"^constraint (?P<domain>domain )?(?P<target>{_IDENT}\.{_IDENT}) (?P<name>{_IDENT}): "
        r"(?P<def>.*)$"
    ),
    "indexes": re.compile(
        rf"^CREATE (?:UNIQUE )?INDEX (?P<name>{_IDENT}) ON (?:ONLY )?{_QUALIFIED} "
    ),
    "triggers": re.compile(
        rf"^CREATE (?:CONSTRAINT )?TRIGGER (?P<name>{_IDENT}) .*? "
        rf"ON (?P<target>{_IDENT}\.{_IDENT}) "
    ),
}

# State the comparison leaves to _STATE_QUERY: the snapshot's trigger entries carry
# " [enabled=X]" and pg_get_constraintdef appends " NOT VALID"; stripped from both sides so
# that a disabled trigger is reported as disabled, not as a different definition.
_STATE_SUFFIX = {
    "constraints": re.compile(r" NOT VALID$"),
    "triggers": re.compile(r" \[enabled=.\]$"),
}

# (object, state, table) of every object of the schemas not in its normal state. The object
# names are built as _object_name builds them from the snapshot entries.
_STATE_QUERY = """
SELECT 'trigger ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text,
       'trigger:' || t.tgenabled::text, t.tgrelid::regclass::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(s)s) AND NOT t.tgisinternal AND t.tgenabled <> 'O'
UNION ALL
SELECT 'constraint ' || quote_ident(k.conname) || ' on '
       || coalesce(k.conrelid::regclass::text, 'domain ' || k.contypid::regtype::text),
       'constraint:not validated', coalesce(k.conrelid::regclass::text, '')
FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
WHERE n.nspname = ANY(%(s)s) AND NOT k.convalidated
UNION ALL
SELECT DISTINCT 'constraint ' || quote_ident(k.conname) || ' on ' || k.conrelid::regclass::text,
       'constraint:internal triggers', t.tgrelid::regclass::text
FROM pg_trigger t JOIN pg_constraint k ON k.oid = t.tgconstraint
JOIN pg_namespace n ON n.oid = k.connamespace
WHERE n.nspname = ANY(%(s)s) AND t.tgisinternal AND t.tgenabled <> 'O'
UNION ALL
SELECT 'index ' || i.indexrelid::regclass::text,
       CASE WHEN NOT i.indisready THEN 'index:not ready' ELSE 'index:invalid' END,
       i.indrelid::regclass::text
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(s)s) AND NOT (i.indisvalid AND i.indisready)
ORDER BY 1, 3
"""

_TRIGGER_STATES = {
    "D": "it does not fire (ALTER TABLE ... DISABLE TRIGGER)",
    "R": "fires only in sessions with session_replication_role = replica (ENABLE REPLICA)",
    "A": "fires in replica sessions too (ENABLE ALWAYS), unlike as shipped",
}


@dataclass(frozen=True)
class SchemaFinding:
    """One constraint, index or trigger not as shipped."""

    #: ``constraint <name> on <table>``, ``index <schema>.<name>``, ``trigger <name> on <table>``.
    object: str
    #: missing, different, extra, disabled, not validated, invalid, not ready.
    problem: str
    #: What is wrong, in words, with the definitions involved.
    detail: str
    #: What to do; SQL to run as the schema owner where there is one.
    what_to_do: str
    #: False for information that does not make doctor unhealthy (extra objects).
    unhealthy: bool = True


def expected_entries(kind: str) -> list[str]:
    """Section ``kind`` of the packaged ``sql/schema.snapshot``."""
    text = (sql_dir() / "schema.snapshot").read_text(encoding="utf-8")
    return parse_section(text, kind)


def check_schema_objects(conn: psycopg.Connection[Any]) -> list[SchemaFinding]:
    """Every shipped constraint, index and trigger missing, different, extra (information),
    disabled, not validated or invalid in ``conn``'s database, sorted by object."""
    findings: list[SchemaFinding] = []
    missing_constraints: set[tuple[str, str]] = set()
    for kind in SECTIONS:
        expected = _by_object(kind, expected_entries(kind))
        live = _by_object(kind, section_entries(conn, kind, SCHEMAS))
        for name in sorted(expected.keys() - live.keys()):
            if kind == "constraints":
                missing_constraints.add(_constraint_key(expected[name]))
            findings.append(_missing(kind, name, expected[name], missing_constraints))
        for name in sorted(expected.keys() & live.keys()):
            if expected[name] != live[name]:
                findings.append(_different(kind, name, expected[name], live[name]))
        for name in sorted(live.keys() - expected.keys()):
            findings.append(_extra(kind, name, live[name]))
    # With search_path = pg_catalog, as the sections: regclass text is schema-qualified
    # whatever the role's own search_path, so the names match the snapshot's.
    with catalog_cursor(conn) as cur:
        cur.execute(_STATE_QUERY, {"s": list(SCHEMAS)})
        findings.extend(_state_findings(cur.fetchall()))
    return sorted(findings, key=lambda f: (not f.unhealthy, f.object, f.problem))


def _by_object(kind: str, entries: list[str]) -> dict[str, str]:
    """Entries keyed by object name, their state suffix stripped."""
    result: dict[str, str] = {}
    for entry in entries:
        suffix = _STATE_SUFFIX.get(kind)
        definition = suffix.sub("", entry) if suffix else entry
        result[_object_name(kind, definition)] = definition
    return result


def _match(kind: str, entry: str) -> re.Match[str]:
    found = _PATTERNS[kind].match(entry)
    if found is None:
        raise ValueError(f"cannot read a {kind} entry of the schema snapshot: {entry}")
    return found


def _object_name(kind: str, entry: str) -> str:
    found = _match(kind, entry)
    if kind == "constraints":
        domain = "domain " if found["domain"] else ""
        return f"constraint {found['name']} on {domain}{found['target']}"
    if kind == "indexes":
        return f"index {found['schema']}.{found['name']}"
    return f"trigger {found['name']} on {found['target']}"


def _constraint_key(entry: str) -> tuple[str, str]:
    """(schema-qualified table, name) of a table constraint entry."""
    found = _match("constraints", entry)
    return found["target"], found["name"]


def _recreate_sql(kind: str, entry: str) -> str:
    if kind == "constraints":
        found = _match(kind, entry)
        what = "DOMAIN" if found["domain"] else "TABLE"
        return f"ALTER {what} {found['target']} ADD CONSTRAINT {found['name']} {found['def']}"
    return entry


def _missing(
    kind: str, name: str, entry: str, missing_constraints: set[tuple[str, str]]
) -> SchemaFinding:
    if kind == "indexes":
        found = _match(kind, entry)
        table = f"{found['schema']}.{found['rel']}"
        if (table, found["name"]) in missing_constraints:
            return SchemaFinding(
                name,
                "missing",
                "dropped with its constraint",
                f"comes back with constraint {found['name']} on {table} (see that line)",
            )
    remedy = f"recreate it as the schema owner: {_recreate_sql(kind, entry)}"
    if kind == "indexes":
        remedy += " (CREATE INDEX CONCURRENTLY on a busy table)"
    return SchemaFinding(
        name,
        "missing",
        "`enrolldb migrate` does not recreate it",
        remedy,
    )


def _different(kind: str, name: str, expected: str, live: str) -> SchemaFinding:
    drop = {
        "constraints": "ALTER TABLE ... DROP CONSTRAINT",
        "indexes": "DROP INDEX",
        "triggers": "DROP TRIGGER",
    }[kind]
    return SchemaFinding(
        name,
        "different",
        f"found: {live}",
        f"{drop} it, then recreate it as shipped: {_recreate_sql(kind, expected)}",
    )


def _extra(kind: str, name: str, live: str) -> SchemaFinding:
    return SchemaFinding(
        name,
        "extra",
        f"not shipped by enrolldb: {live}",
        "keep it if it is yours (enrolldb's tests never ran with it; a "
        "constraint, unique index or trigger may make enrolldb's functions fail)",
        unhealthy=False,
    )


def _state_findings(rows: list[tuple[Any, ...]]) -> list[SchemaFinding]:
    findings: list[SchemaFinding] = []
    internal: dict[str, list[str]] = {}
    for name, state, table in rows:
        kind, _, value = str(state).partition(":")
        if kind == "trigger":
            trigger = str(name).split(" ", 2)[1]
            findings.append(
                SchemaFinding(
                    str(name),
                    "disabled",
                    _TRIGGER_STATES.get(value, f"tgenabled = {value!r}"),
                    f"ALTER TABLE {table} ENABLE TRIGGER {trigger}",
                )
            )
        elif value == "not validated":
            constraint = str(name).split(" ", 2)[1]
            target = "DOMAIN" if str(name).split(" on ", 1)[1].startswith("domain ") else "TABLE"
            on = str(name).split(" on ", 1)[1].removeprefix("domain ")
            findings.append(
                SchemaFinding(
                    str(name),
                    "not validated",
                    "NOT VALID: rows written before it was added were never checked",
                    f"ALTER {target} {on} VALIDATE CONSTRAINT {constraint} (fix the rows it "
                    "reports first)",
                )
            )
        elif value == "internal triggers":
            internal.setdefault(str(name), []).append(str(table))
        else:
            findings.append(
                SchemaFinding(
                    str(name),
                    value,
                    "a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY left it "
                    + ("unused by queries" if value == "invalid" else "not even maintained"),
                    f"REINDEX INDEX CONCURRENTLY {str(name).removeprefix('index ')}"
                    " (or DROP INDEX it if it is a leftover copy)",
                )
            )
    for name, tables in internal.items():
        findings.append(
            SchemaFinding(
                name,
                "disabled",
                "not enforced: its internal triggers are disabled (DISABLE TRIGGER ALL)",
                "; ".join(f"ALTER TABLE {t} ENABLE TRIGGER ALL" for t in tables)
                + " (as a superuser)",
            )
        )
    return findings


def finding_line(finding: SchemaFinding) -> str:
    """One line per finding, for doctor's text output."""
    fix = "fix: " if finding.unhealthy else ""
    return f"{finding.object}: {finding.problem}, {finding.detail}; {fix}{finding.what_to_do}"
