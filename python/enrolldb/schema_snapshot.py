"""A deterministic text snapshot of the enrolldb schema, read from the system catalogs.

Why not ``pg_dump``: CI servers may be newer than the local ``pg_dump`` (which refuses
them), and dump output carries noise (SET lines, ordering, owners). The snapshot is
committed as ``sql/schema.snapshot`` so every schema change shows up in review, and the
tests compare it with freshly migrated, rolled-back-and-reapplied and stepwise-migrated
databases.

Each kind of object is one section of sorted entries. Role-dependent noise is
neutralised: object owners are not listed and the schema owner is written ``<owner>`` in
ACLs (grantors are omitted), so snapshots taken as different superusers compare equal.
No OIDs appear. Definitions come from ``pg_get_*def`` with ``search_path = pg_catalog``
so every non-catalog name is schema-qualified the same way everywhere.

Usage: ``python -m enrolldb.schema_snapshot DSN`` prints the snapshot.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from enrolldb.routines import SCHEMAS

ROLES = ("enrolldb_app", "enrolldb_readonly")

# ACL entries as "grantee:privilege[*]" (grantable = '*'), owner normalised.
_ACL = """
(SELECT coalesce(string_agg(
            CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                 WHEN a.grantee = {owner} THEN '<owner>'
                 ELSE pg_get_userbyid(a.grantee) END
            || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END,
            ' ' ORDER BY 1), '')
   FROM aclexplode({acl}) AS a)
"""


def _acl(acl: str, owner: str) -> str:
    return _ACL.format(acl=acl, owner=owner)


# NULL ACLs mean "the built-in default": make that explicit so GRANT/REVOKE to the
# default state and an untouched object snapshot the same.
_NSP_ACL = _acl("coalesce(n.nspacl, acldefault('n', n.nspowner))", "n.nspowner")
_REL_ACL = _acl(
    "coalesce(c.relacl, acldefault("
    "CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))",
    "c.relowner",
)
_COL_ACL = _acl("a.attacl", "c.relowner")
_PROC_ACL = _acl("coalesce(p.proacl, acldefault('f', p.proowner))", "p.proowner")

# Each query returns (sort_key, entry_text) rows; %(s)s is the list of schema names.
_SECTIONS: dict[str, str] = {
    "schema": f"""
        SELECT n.nspname, 'schema ' || quote_ident(n.nspname)
               || ' acl=[' || {_NSP_ACL} || ']'
        FROM pg_namespace n WHERE n.nspname = ANY(%(s)s)
    """,
    "extensions": """
        SELECT e.extname, 'extension ' || e.extname || ' schema=' || n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname NOT IN ('plpgsql', 'plpgsql_check')
    """,
    "relations": f"""
        SELECT c.relname,
               CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                    WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                    WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
                    ELSE c.relkind::text END
               || ' ' || c.oid::regclass::text
               || ' persistence=' || c.relpersistence::text
               || CASE WHEN c.relrowsecurity THEN ' rls' ELSE '' END
               || CASE WHEN c.relforcerowsecurity THEN ' force_rls' ELSE '' END
               || coalesce(' options=' || array_to_string(c.reloptions, ','), '')
               || ' acl=[' || {_REL_ACL} || ']'
               || CASE WHEN c.relkind IN ('v', 'm')
                       THEN E'\\n    ' || replace(pg_get_viewdef(c.oid), E'\\n', E'\\n    ')
                       ELSE '' END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(s)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    """,
    "columns": f"""
        SELECT c.relname || lpad(row_number() OVER w::text, 5, '0'),
               'column ' || c.oid::regclass::text || '.' || quote_ident(a.attname)
               || ' #' || row_number() OVER w
               || ' ' || format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
               || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
               || CASE a.attidentity WHEN 'a' THEN ' IDENTITY ALWAYS'
                                     WHEN 'd' THEN ' IDENTITY BY DEFAULT' ELSE '' END
               || CASE a.attgenerated WHEN 's' THEN ' GENERATED STORED' ELSE '' END
               || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                       THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END
               || CASE WHEN a.attacl IS NOT NULL
                       THEN ' acl=[' || {_COL_ACL} || ']' ELSE '' END
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = ANY(%(s)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped
        WINDOW w AS (PARTITION BY c.oid ORDER BY a.attnum)
    """,
    "constraints": """
        SELECT coalesce(c.conrelid::regclass::text, c.contypid::regtype::text)
               || ' ' || c.conname,
               'constraint ' || coalesce(c.conrelid::regclass::text,
                                         'domain ' || c.contypid::regtype::text)
               || ' ' || quote_ident(c.conname) || ': ' || pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = ANY(%(s)s)
    """,
    "indexes": """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(s)s)
    """,
    "triggers": """
        SELECT t.tgrelid::regclass::text || ' ' || t.tgname,
               pg_get_triggerdef(t.oid)
               || CASE t.tgenabled WHEN 'O' THEN ''
                       ELSE ' [enabled=' || t.tgenabled::text || ']' END
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(s)s) AND NOT t.tgisinternal
    """,
    "types": """
        SELECT t.oid::regtype::text,
               CASE t.typtype
                 WHEN 'e' THEN 'enum ' || t.oid::regtype::text || ' ('
                      || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                            ORDER BY e.enumsortorder)
                          FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                 WHEN 'd' THEN 'domain ' || t.oid::regtype::text || ' AS '
                      || format_type(t.typbasetype, t.typtypmod)
                      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                      || coalesce(' DEFAULT ' || t.typdefault, '')
                 WHEN 'c' THEN 'composite ' || t.oid::regtype::text || ' ('
                      || (SELECT string_agg(quote_ident(a.attname) || ' '
                                            || format_type(a.atttypid, a.atttypmod), ', '
                                            ORDER BY a.attnum)
                          FROM pg_attribute a
                          WHERE a.attrelid = t.typrelid AND a.attnum > 0
                            AND NOT a.attisdropped) || ')'
                 WHEN 'r' THEN 'range ' || t.oid::regtype::text
                 ELSE 'type ' || t.oid::regtype::text || ' typtype=' || t.typtype::text
               END
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY(%(s)s)
          AND (t.typtype IN ('e', 'd', 'r', 'm')
               OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c
                                        WHERE c.oid = t.typrelid) = 'c'))
    """,
    "functions": f"""
        SELECT p.oid::regprocedure::text,
               CASE WHEN p.prokind = 'a'
                    THEN 'aggregate ' || p.oid::regprocedure::text
                    ELSE rtrim(pg_get_functiondef(p.oid), E'\\n') END
               || E'\\n-- security_definer=' || p.prosecdef
               || ' config=' || coalesce(array_to_string(p.proconfig, ','), '')
               || ' acl=[' || {_PROC_ACL} || ']'
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY(%(s)s)
    """,
    "comments": """
        SELECT kind || ' ' || name, 'comment on ' || kind || ' ' || name || ' IS '
               || quote_literal(description)
        FROM (
          SELECT 'schema' AS kind, quote_ident(n.nspname) AS name,
                 obj_description(n.oid, 'pg_namespace') AS description
          FROM pg_namespace n WHERE n.nspname = ANY(%(s)s)
          UNION ALL
          SELECT CASE WHEN c.relkind = 'i' THEN 'index' ELSE 'relation' END,
                 c.oid::regclass::text, obj_description(c.oid, 'pg_class')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY(%(s)s)
          UNION ALL
          SELECT 'column', c.oid::regclass::text || '.' || quote_ident(a.attname),
                 col_description(c.oid, a.attnum)
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY(%(s)s) AND a.attnum > 0 AND NOT a.attisdropped
          UNION ALL
          SELECT 'function', p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc')
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = ANY(%(s)s)
          UNION ALL
          SELECT 'constraint', quote_ident(c.conname) || ' on '
                 || coalesce(c.conrelid::regclass::text, c.contypid::regtype::text),
                 obj_description(c.oid, 'pg_constraint')
          FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
          WHERE n.nspname = ANY(%(s)s)
          UNION ALL
          SELECT 'trigger', quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text,
                 obj_description(t.oid, 'pg_trigger')
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY(%(s)s) AND NOT t.tgisinternal
          UNION ALL
          SELECT 'type', t.oid::regtype::text, obj_description(t.oid, 'pg_type')
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname = ANY(%(s)s)
        ) AS d
        WHERE description IS NOT NULL
    """,
    "default privileges": """
        SELECT d.objtype || ' ' || a.grantee || ' ' || a.privilege_type,
               'default privileges'
               || CASE WHEN d.defaclnamespace = 0 THEN ' (all schemas)'
                       ELSE ' in schema ' || quote_ident(n.nspname) END
               || ' for ' || CASE WHEN d.defaclrole = s.nspowner THEN '<owner>'
                                  ELSE pg_get_userbyid(d.defaclrole) END
               || ' on ' || CASE d.defaclobjtype WHEN 'r' THEN 'tables'
                      WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                      WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas'
                      ELSE d.defaclobjtype::text END
               || ': ' || CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                               WHEN a.grantee = s.nspowner THEN '<owner>'
                               ELSE pg_get_userbyid(a.grantee) END
               || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END
        FROM (SELECT *, defaclobjtype::text AS objtype FROM pg_default_acl) d
        CROSS JOIN LATERAL aclexplode(d.defaclacl) a
        LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
        CROSS JOIN (SELECT nspowner FROM pg_namespace WHERE nspname = ANY(%(s)s)) s
        WHERE d.defaclnamespace = 0 OR n.nspname = ANY(%(s)s)
    """,
}

_ROLES_QUERY = """
SELECT r.rolname,
       'role ' || r.rolname
       || ' login=' || r.rolcanlogin || ' inherit=' || r.rolinherit
       || ' member_of=[' || coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname)
                                      FROM pg_auth_members m
                                      JOIN pg_roles g ON g.oid = m.roleid
                                      WHERE m.member = r.oid), '') || ']'
FROM pg_roles r WHERE r.rolname = ANY(%(roles)s)
"""


def snapshot(conn: psycopg.Connection[Any], schemas: Sequence[str] = SCHEMAS) -> str:
    """Return the snapshot text of ``schemas`` (and our roles) as seen by ``conn``."""
    sections: list[str] = []
    with catalog_cursor(conn) as cur:
        for kind, query in _SECTIONS.items():
            cur.execute(query, {"s": list(schemas)})
            sections.append(_section(kind, cur.fetchall()))
        cur.execute(_ROLES_QUERY, {"roles": list(ROLES)})
        sections.append(_section("roles", cur.fetchall()))
    return "\n".join(sections)


def section_entries(
    conn: psycopg.Connection[Any], kind: str, schemas: Sequence[str] = SCHEMAS
) -> list[str]:
    """The entries of one section (``"indexes"``, ...) of :func:`snapshot`, sorted as there.

    Why: ``enrolldb doctor`` compares the live constraints, indexes and triggers with the
    committed snapshot; producing the live side with the very query that wrote the file
    means a difference is a real difference, never two renderings of one object.
    """
    with catalog_cursor(conn) as cur:
        cur.execute(_SECTIONS[kind], {"s": list(schemas)})
        return [text for _, text in _sorted_entries(cur.fetchall())]


def parse_section(text: str, kind: str) -> list[str]:
    """The entries of section ``kind`` of a snapshot ``text``, one line each.

    Only for sections whose entries are single lines (constraints, indexes, triggers);
    the entry count in the ``## kind (N)`` header is checked so that a multi-line entry or
    a hand-edited file is an error rather than a silently wrong comparison.
    """
    header = re.compile(rf"^## {re.escape(kind)} \((\d+)\)$", re.MULTILINE)
    found = header.search(text)
    if found is None:
        raise ValueError(f"schema snapshot has no section {kind!r}")
    body = text[found.end() :].split("\n## ", 1)[0]
    entries = [line for line in body.splitlines() if line.strip()]
    if len(entries) != int(found.group(1)):
        raise ValueError(
            f"schema snapshot section {kind!r}: header says {found.group(1)} entries, "
            f"found {len(entries)} lines"
        )
    return entries


@contextmanager
def catalog_cursor(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor whose queries run with ``search_path = pg_catalog`` (every non-catalog name
    then comes out schema-qualified), the caller's path restored afterwards."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("SELECT current_setting('search_path')")
        row = cur.fetchone()
        old_path = row[0] if row else ""
        # Local to this (sub)transaction: reverted by itself if a query fails, restored
        # below otherwise (a released savepoint would keep it until the caller commits).
        cur.execute("SELECT set_config('search_path', 'pg_catalog', true)")
        yield cur
        cur.execute("SELECT set_config('search_path', %s, true)", (old_path,))


def _sorted_entries(rows: list[tuple[Any, ...]]) -> list[tuple[str, str]]:
    return sorted(
        (str(key), "\n".join(line.rstrip() for line in str(text).splitlines()))
        for key, text in rows
    )


def _section(kind: str, rows: list[tuple[Any, ...]]) -> str:
    entries = _sorted_entries(rows)
    body = "\n".join(text for _, text in entries)
    return f"## {kind} ({len(entries)})\n{body}\n" if entries else f"## {kind} (0)\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m enrolldb.schema_snapshot [DSN] [--scratch] [-o FILE]``.

    Without ``--scratch`` the snapshot of the database at DSN is printed. With
    ``--scratch`` DSN only names a server (found like ``enrolldb demo`` does when
    omitted): a scratch database is created, migrated, snapshotted and dropped; this is
    what ``make schema-snapshot`` uses to regenerate ``sql/schema.snapshot``.
    """
    import argparse
    from pathlib import Path

    from enrolldb.demo import demo_server
    from enrolldb.dsn import SetupError, one_line, resolve_dsn, scratch_database, to_conninfo
    from enrolldb.migrate import migrate

    parser = argparse.ArgumentParser(prog="python -m enrolldb.schema_snapshot")
    parser.add_argument("dsn", nargs="?", help="database (or server, with --scratch)")
    parser.add_argument(
        "--schema", action="append", help=f"schema to list (repeatable; default: {SCHEMAS})"
    )
    parser.add_argument(
        "--scratch",
        action="store_true",
        help="snapshot a freshly migrated scratch database on that server",
    )
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)

    def take(dsn: str) -> str:
        with psycopg.connect(to_conninfo(dsn), autocommit=True) as conn:
            return snapshot(conn, args.schema or SCHEMAS)

    try:
        if args.scratch:
            with demo_server(args.dsn) as server, scratch_database(server, "enrolldb_snap") as db:
                migrate(db)
                text = take(db)
        else:
            text = take(resolve_dsn(args.dsn))
    except (SetupError, psycopg.Error) as exc:
        print(f"enrolldb: {one_line(exc)}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
