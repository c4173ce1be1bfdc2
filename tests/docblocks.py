"""Run the commands of the documentation exactly as written (the convention of docs/).

The convention, for docs/operators.md and docs/service-authors.md:

- Every fenced block whose info string is ``sh`` or ``sql`` is a command a reader will
  copy, so it is executed, in document order. Output shown to the reader goes in a block
  without an info string (or ``text``, ``json``, ``csv``, ``python``, ``go``): never
  executed.
- ``sql`` blocks of one document run on one connection (like one psql session) as the
  test server's superuser, on one scratch database per document; statements are split as
  yoyo splits migrations. ``CREATE ROLE enrolldb_app`` / ``enrolldb_readonly`` may meet an
  existing role (they are "once per cluster"): that error alone is tolerated.
- ``sh`` blocks run with ``bash -euo pipefail`` in one temporary directory per document
  (a file one block writes is there for the blocks after it), with ``enrolldb`` and
  ``psql`` on PATH, no ``PG*`` variables and ``DATABASE_URL`` pointing at the scratch
  database as the superuser (a block may export its own).
- Placeholders, replaced before running and nowhere else: the server ``db.internal:5432``,
  the databases ``lms`` and ``lms_adopted`` and the example roles ``enrolldb_owner``,
  ``lms_service``, ``support_staff`` (per-run names, because roles are shared by the whole cluster).
- A block that cannot run (a placeholder such as ``<ce>``, a file the reader has) is listed
  in the test's ``SKIP`` with the reason, keyed by document and first line.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlparse
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parents[1]
RUNNABLE = ("sh", "sql")
_FENCE = re.compile(r"^```(\S*)\s*$")
_TOLERATED_ROLES = re.compile(r"^\s*CREATE\s+ROLE\s+(enrolldb_app|enrolldb_readonly)\b", re.I)


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file."""

    doc: str
    line: int
    lang: str
    text: str
    section: str

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0] if self.text.strip() else ""


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with its info string and the heading above it."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    section = ""
    i = 0
    while i < len(lines):
        if lines[i].startswith("#") and not lines[i].startswith("#!"):
            section = lines[i].lstrip("#").strip()
        match = _FENCE.match(lines[i])
        if match:
            start = i
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            found.append(Block(path.name, start + 1, match.group(1), "\n".join(body), section))
        i += 1
    return found


@dataclass
class Placeholders:
    """Per-run names for the documentation's example server, database and roles."""

    host: str
    port: int
    dbname: str
    suffix: str = ""

    def __post_init__(self) -> None:
        self.suffix = self.suffix or secrets.token_hex(3)

    def role(self, name: str) -> str:
        return f"{name}_{self.suffix}"

    @property
    def roles(self) -> list[str]:
        return [self.role(r) for r in ("enrolldb_owner", "lms_service", "support_staff")]

    def apply(self, text: str) -> str:
        text = text.replace("db.internal:5432", f"{self.host}:{self.port}")
        for name in ("enrolldb_owner", "lms_service", "support_staff"):
            text = re.sub(rf"\b{name}\b", self.role(name), text)
        # ``lms_adopted`` (operators.md, adopting a deployment) is a second database.
        return re.sub(r"\blms(_adopted)?\b", lambda m: self.dbname + (m.group(1) or ""), text)


class Runner:
    """Runs blocks on one scratch database as the superuser (see the module docstring)."""

    def __init__(self, superuser_dsn: str, names: Placeholders) -> None:
        self.dsn = superuser_dsn
        self.names = names
        self.conn = psycopg.connect(superuser_dsn, autocommit=True)
        # One working directory per document, as a reader's shell: a file one block writes
        # (``cat > omscs-spring.csv``) is there for the blocks after it.
        self.workdir = tempfile.mkdtemp(prefix="enrolldb-doc-")

    def close(self) -> None:
        self.conn.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def run(self, block: Block) -> None:
        text = self.names.apply(block.text)
        if block.lang == "sql":
            self._sql(block, text)
        elif block.lang == "sh":
            self._sh(block, text)
        else:
            raise ValueError(f"not runnable: {block.lang}")

    def _sql(self, block: Block, text: str) -> None:
        for statement in sqlparse.split(text):
            if not sqlparse.format(statement, strip_comments=True).strip():
                continue
            try:
                self.conn.execute(statement.encode())
            except psycopg.errors.DuplicateObject:
                if not _TOLERATED_ROLES.match(sqlparse.format(statement, strip_comments=True)):
                    raise
            except psycopg.Error as exc:
                raise AssertionError(
                    f"{block.doc}:{block.line}: {statement.strip()!r} failed: {exc}"
                ) from exc

    def _sh(self, block: Block, text: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.pop("DATABASE_URL", None)
        info = self.conn.info
        env["DATABASE_URL"] = make_conninfo(self.dsn)
        if info.password:
            env["PGPASSWORD"] = info.password
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
        env.pop("COLUMNS", None)
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", text],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, (
            f"{block.doc}:{block.line} exited {proc.returncode}\n{text}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )


def drop_roles(superuser_dsn: str, roles: list[str], databases: list[str]) -> None:
    """Remove the per-run example roles (and whatever they own in ``databases``)."""
    for dbname in databases:
        try:
            with psycopg.connect(make_conninfo(superuser_dsn, dbname=dbname), autocommit=True) as c:
                for role in roles:
                    if _role_exists(c, role):
                        c.execute(f'DROP OWNED BY "{role}" CASCADE'.encode())
        except psycopg.OperationalError:
            continue  # the database is gone already
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        for role in roles:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"'.encode())


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (role,))
    result = row.fetchone()
    return bool(result and result[0])
