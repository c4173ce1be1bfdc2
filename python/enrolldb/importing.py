"""Adopting a Django deployment: stream an export's CSV files into the staging tables, let
the SQL of ``enrolldb_import`` decide every row's fate, write the kept rows.

Why this shape: the rules live in PostgreSQL (sql/functions/09x_import_*.sql); Python only
checks that each file's header names known columns, streams the file to ``COPY`` in
fixed-size chunks (memory stays flat, whatever the file's size) and reads the verdict back.
A file with a value of the wrong type is read again into text columns (``<table>_raw``),
so that value refuses its row by rule ``type:<column>`` in SQL instead of stopping the run.
A run is one transaction: a dry run rolls it back, a failure leaves nothing. ``merge=True``
merges by id into a database that holds rows (the policy is SQL's too).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

#: Bytes handed to COPY per write.
CHUNK = 1 << 20

#: Files the import reads only when present; every other table's file is required.
OPTIONAL_FILES = frozenset(
    {
        "program_enrollments_learneridentity",
        "program_enrollments_historicalprogramenrollment",
        "program_enrollments_historicalprogramcourseenrollment",
        "student_courseenrollment_history",
    }
)

REPORT_COLUMNS = ("table_name", "line", "id", "fate", "rule", "detail", "changes", "input")


class ImportRefused(Exception):
    """The export cannot be imported as given (missing file, bad header, non-empty database);
    nothing was written."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


@dataclass(frozen=True)
class TableCount:
    table: str
    read: int
    imported: int
    changed: int
    present: int
    refused: int


@dataclass
class ImportResult:
    tables: list[TableCount] = field(default_factory=list)
    dry_run: bool = False
    merge: bool = False

    @property
    def refused(self) -> int:
        return sum(t.refused for t in self.tables)


@dataclass(frozen=True)
class Column:
    name: str
    required: bool


def import_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables of an export, parents first (as the SQL side lists them)."""
    row = conn.execute("SELECT enrolldb_import.tables()").fetchone()
    assert row is not None
    return list(row[0])


def staging_columns(conn: psycopg.Connection[Any], table: str) -> list[Column]:
    """The columns a file of ``table`` may have; required ones have no default."""
    rows = conn.execute(
        "SELECT a.attname::text, t.attnotnull AND NOT a.atthasdef"
        " FROM pg_catalog.pg_attribute AS a"
        " JOIN pg_catalog.pg_attribute AS t"
        "   ON t.attrelid = pg_catalog.format('enrolldb.%%I', %(t)s::text)::regclass"
        "  AND t.attname = a.attname"
        " WHERE a.attrelid = pg_catalog.format('enrolldb_import.%%I', %(t)s::text)::regclass"
        "   AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        {"t": table},
    ).fetchall()
    return [Column(str(name), bool(required)) for name, required in rows]


def read_header(stream: IO[bytes], path: Path) -> list[str]:
    """The column names of the first line (RFC 4180, optional UTF-8 BOM); the stream is left
    at the first data row."""
    first = stream.readline()
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise ImportRefused([f"{path.name}: the header is not UTF-8"]) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(c.strip() for c in rows[0]):
        raise ImportRefused([f"{path.name}: empty file (a header line is required)"])
    return [c.strip() for c in rows[0]]


def check_header(path: Path, header: list[str], columns: list[Column]) -> list[str]:
    """Why ``header`` cannot be loaded (unknown, repeated or missing columns); [] when fine."""
    known = {c.name for c in columns}
    problems = []
    unknown = [h for h in header if h not in known]
    if unknown:
        problems.append(
            f"{path.name}: unknown columns {', '.join(unknown)}"
            f" (known: {', '.join(c.name for c in columns)})"
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(f"{path.name}: columns given twice: {', '.join(repeated)}")
    missing = [c.name for c in columns if c.required and c.name not in header]
    if missing:
        problems.append(f"{path.name}: required columns missing: {', '.join(missing)}")
    return problems


def export_files(directory: Path, tables: Sequence[str]) -> dict[str, Path | None]:
    """The file of each table (None: optional and absent); refuses unknown or missing files."""
    if not directory.is_dir():
        raise ImportRefused([f"{directory}: not a directory"])
    problems = []
    for path in sorted(directory.glob("*.csv")):
        if path.stem not in tables:
            problems.append(f"{path.name}: not a table of the export ({', '.join(tables)})")
    files: dict[str, Path | None] = {}
    for table in tables:
        path = directory / f"{table}.csv"
        if path.is_file():
            files[table] = path
        elif table in OPTIONAL_FILES:
            files[table] = None
        else:
            problems.append(f"{path.name}: missing (required)")
    if problems:
        raise ImportRefused(problems)
    return files


def _copy_statement(target: str, header: list[str]) -> sql.Composed:
    return sql.SQL(
        "COPY enrolldb_import.{} ({}) FROM STDIN WITH (FORMAT csv, NULL '\\N', ENCODING 'UTF8')"
    ).format(sql.Identifier(target), sql.SQL(", ").join(map(sql.Identifier, header)))


def _stream(conn: psycopg.Connection[Any], statement: sql.Composed, path: Path) -> None:
    with path.open("rb") as stream, conn.cursor().copy(statement) as copy:
        read_header(stream, path)
        while chunk := stream.read(CHUNK):
            copy.write(chunk)


def _copy_file(conn: psycopg.Connection[Any], table: str, path: Path, header: list[str]) -> None:
    # First straight into the typed staging table, in a savepoint: a file whose every value
    # is of its column's type (the usual case) is read once. Otherwise the savepoint is
    # rolled back and the file goes to the raw table (every column text), where stage()
    # refuses each row with a bad value by rule type:<column>. There only the CSV itself can
    # stop the COPY (an unterminated quote, a surplus field, bytes that are not UTF-8).
    try:
        with conn.transaction():
            _stream(conn, _copy_statement(table, header), path)
        return
    except psycopg.errors.DataError:
        pass
    except psycopg.Error as exc:
        raise _copy_refused(path, exc) from exc
    try:
        _stream(conn, _copy_statement(f"{table}_raw", header), path)
    except psycopg.Error as exc:
        raise _copy_refused(path, exc) from exc
    conn.execute("SELECT enrolldb_import.stage(%s, %s::text[])", (table, header))


def _copy_refused(path: Path, exc: psycopg.Error) -> ImportRefused:
    # COPY counts lines from the first line it is sent: the header is not one.
    context = (exc.diag.context or "").strip()
    where = f" ({context}; line 1 is the row after the header)" if context else ""
    primary = exc.diag.message_primary or str(exc)
    return ImportRefused([f"{path.name}: {primary}{where}"])


def _violations(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT violation, detail FROM enrolldb.check_integrity()").fetchall()
    return [(str(v), str(d)) for v, d in rows]


def run_import(
    conn: psycopg.Connection[Any], directory: Path, *, dry_run: bool, merge: bool = False
) -> ImportResult:
    """Stage, classify and write an export in the connection's transaction (not committed
    here; the caller commits or rolls back). ``merge``: the database may hold rows; they are
    merged by id. Raises :class:`ImportRefused`."""
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    tables = import_tables(conn)
    files = export_files(directory, tables)
    headers: dict[str, list[str]] = {}
    problems: list[str] = []
    for table, path in files.items():
        if path is None:
            continue
        with path.open("rb") as stream:
            headers[table] = read_header(stream, path)
        problems += check_header(path, headers[table], staging_columns(conn, table))
    if problems:
        raise ImportRefused(problems)
    try:
        conn.execute("SELECT enrolldb_import.begin_import(%s)", (merge,))
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise ImportRefused([f"{exc.diag.message_primary} ({exc.diag.message_hint})"]) from exc
    for table, path in files.items():
        if path is not None:
            _copy_file(conn, table, path, headers[table])
    # What the database breaks already (merge; the tables are locked against writers) is
    # not the import's doing: only what the kept rows add stops the run.
    before = set(_violations(conn)) if merge else set()
    # Sequences ignore rollbacks: a dry run (or a run refused below) puts them back.
    positions = conn.execute("SELECT enrolldb_import.sequence_positions()").fetchone()
    conn.execute("SELECT enrolldb_import.classify()")
    counts = [
        TableCount(str(t), int(r), int(i), int(c), int(p), int(x))
        for t, r, i, c, p, x in conn.execute("SELECT * FROM enrolldb_import.summary()")
    ]
    conn.execute("SELECT enrolldb_import.write_kept_rows()")
    violations = [v for v in _violations(conn) if v not in before]
    if dry_run or violations:
        assert positions is not None
        conn.execute("SELECT enrolldb_import.restore_sequences(%s)", (Jsonb(positions[0]),))
    if violations:
        raise ImportRefused(
            ["the kept rows break a rule the import does not know (nothing was written):"]
            + [f"{v}: {d}" for v, d in violations[:20]]
        )
    return ImportResult(tables=counts, dry_run=dry_run, merge=merge)


def report_rows(conn: psycopg.Connection[Any]) -> Iterator[dict[str, Any]]:
    """Every changed or refused row, streamed from a server-side cursor."""
    with conn.cursor(name="enrolldb_import_report") as cur:
        cur.itersize = 5000
        cur.execute("SELECT * FROM enrolldb_import.report()")
        for row in cur:
            yield dict(zip(REPORT_COLUMNS, row, strict=True))


def write_report(conn: psycopg.Connection[Any], path: Path, fmt: str) -> None:
    """``--report FILE``: CSV (streamed by COPY) or a JSON array, one object per line."""
    with path.open("wb") as out:
        if fmt == "json":
            out.write(b"[")
            for n, row in enumerate(report_rows(conn)):
                row["input"] = json.loads(row["input"])
                out.write(b",\n" if n else b"\n")
                out.write(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            out.write(b"\n]\n")
            return
        with conn.cursor().copy(
            "COPY (SELECT * FROM enrolldb_import.report()) TO STDOUT WITH (FORMAT csv, HEADER)"
        ) as copy:
            for data in copy:
                out.write(data)


def end_import(conn: psycopg.Connection[Any]) -> None:
    """Empty the staging tables (in the run's transaction, before its commit)."""
    conn.execute("SELECT enrolldb_import.end_import()")
