"""The client and the CLI through PgBouncer in transaction pooling mode.

Why: many deployments put PgBouncer in front of PostgreSQL. In transaction mode a client
gets a server connection for one transaction only, so nothing may outlive a transaction:
no server-side prepared statement (psycopg 3 prepares a query after 5 executions unless
``prepare_threshold=None``), no session ``SET``, temp table or session advisory lock.
A real pgbouncer (Debian's package; ``.ci/run`` installs it) is started on a free port of
127.0.0.1 in front of the test server, with a pool of ONE server connection, so every
client shares it and any state left by one transaction is met by the next.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import enrolldb
from cli_run import enrolldb_cli
from enrolldb.dsn import connect

REPO = Path(__file__).resolve().parents[1]
PROGRAM = "8e4c1a2b-0000-4000-8000-000000000001"
CURRICULUM = "c0000000-0000-4000-8000-000000000001"
COURSE = "course-v1:GTx+CS6250+2024_T1"
#: More calls per connection than psycopg's default prepare threshold (5).
CALLS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def bouncer_dsn(db_dsn: str) -> Iterator[str]:
    """conninfo of the test database through a pgbouncer in transaction mode (pool of 1)."""
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)")
    params = conninfo_to_dict(db_dsn)
    user = str(params.get("user") or "postgres")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="enrolldb-pgbouncer-"))
    workdir.chmod(0o755)
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={params.get('host', '127.0.0.1')} port={params.get('port', 5432)}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'userlist.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 50\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    for name in ("userlist.txt", "pgbouncer.ini"):
        (workdir / name).chmod(0o644)
    command = [binary, str(workdir / "pgbouncer.ini")]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]  # pgbouncer refuses to run as root
        shutil.chown(workdir, "postgres")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dsn = make_conninfo(db_dsn, host="127.0.0.1", port=str(port))
    try:
        _wait_until_ready(dsn, process)
        yield dsn
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_ready(dsn: str, process: subprocess.Popen[bytes]) -> None:
    """Poll until pgbouncer accepts a connection (it needs a moment to bind)."""
    for _ in range(200):
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"pgbouncer exited with {process.returncode}: {output}")
        try:
            with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            time.sleep(0.05)
    pytest.fail("pgbouncer did not accept connections")


def seed(db: psycopg.Connection[Any], keys: list[str]) -> None:
    db.execute("INSERT INTO enrolldb.course_overviews_courseoverview VALUES (%s, 'GTx')", (COURSE,))
    db.execute(
        "INSERT INTO enrolldb.program_enrollments_program VALUES (%s, 'gtx', 'OMSCS')", (PROGRAM,)
    )
    for key in keys:
        db.execute("INSERT INTO enrolldb.auth_user (username) VALUES (%s)", (f"user-{key}",))
    enrolldb.write_program_enrollments(
        db,
        PROGRAM,
        [
            {"external_user_key": k, "status": "enrolled", "curriculum_uuid": CURRICULUM}
            for k in keys
        ],
        create=True,
        update=False,
    )


def test_client_calls_through_transaction_pooling(db: Any, bouncer_dsn: str) -> None:
    keys = [f"GT-{i}" for i in range(CALLS)]
    seed(db, keys)
    first = connect(bouncer_dsn, autocommit=True)
    second = connect(bouncer_dsn, autocommit=True)
    try:
        # Two clients interleaved on one server connection, each repeating the same calls
        # more often than psycopg's default prepare threshold.
        for i, key in enumerate(keys):
            conn = first if i % 2 == 0 else second
            outcome = enrolldb.write_program_course_enrollments(
                conn,
                PROGRAM,
                COURSE,
                [{"external_user_key": key, "status": "active"}],
                create=True,
                update=False,
            )
            assert outcome == {key: "active"}
            assert enrolldb.link_program_enrollments(conn, PROGRAM, {key: f"user-{key}"}) == {}
            assert enrolldb.check_integrity(conn) == []
        user_id = db.execute("SELECT id FROM enrolldb.auth_user WHERE username = 'user-GT-0'")
        row = user_id.fetchone()
        assert row is not None
        for conn in (first, second):
            results = enrolldb.matriculate_learner(conn, row[0], "gtx", "GT-0")
            assert results == []  # nothing waiting any more: all linked above
    finally:
        first.close()
        second.close()
    linked = db.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_programenrollment pe"
        " JOIN enrolldb.auth_user u ON u.id = pe.user_id"
        " WHERE u.username = 'user-' || pe.external_user_key"
    ).fetchone()
    assert linked == (CALLS,)


def test_psycopg_defaults_do_break_behind_it(db: Any, bouncer_dsn: str) -> None:
    """The control: without prepare_threshold=None the same pattern fails, so the test
    above proves something."""
    first = psycopg.connect(bouncer_dsn, autocommit=True)
    second = psycopg.connect(bouncer_dsn, autocommit=True)
    try:
        with pytest.raises(psycopg.Error, match="prepared statement"):
            for _ in range(CALLS):
                for conn in (first, second):
                    conn.execute("SELECT count(*) FROM enrolldb.auth_user WHERE id > %s", (0,))
    finally:
        first.close()
        second.close()


def test_cli_through_transaction_pooling(db: Any, bouncer_dsn: str) -> None:
    keys = [f"GT-{i}" for i in range(CALLS)]
    seed(db, keys[:-1])
    db.execute("INSERT INTO enrolldb.auth_user (username) VALUES ('late')")
    pairs = [arg for key in keys[:-1] for arg in ("--pair", f"{key}:user-{key}")]
    proc = enrolldb_cli("link", PROGRAM, *pairs, "--chunk-size", "1", dsn=bouncer_dsn)
    assert proc.returncode == 0, proc
    assert re.search(rf"^linked: +{CALLS - 1}$", proc.stdout, re.M), proc.stdout

    # SSO sign-in of a learner the registrar enrolls afterwards: realized at once.
    row = db.execute("SELECT id FROM enrolldb.auth_user WHERE username = 'late'").fetchone()
    assert row is not None
    proc = enrolldb_cli("matriculate", str(row[0]), "gtx", keys[-1], dsn=bouncer_dsn)
    assert proc.returncode == 0, proc
    with connect(bouncer_dsn, autocommit=True) as conn:
        outcome = enrolldb.write_program_enrollments(
            conn,
            PROGRAM,
            [{"external_user_key": keys[-1], "status": "enrolled", "curriculum_uuid": CURRICULUM}],
            create=True,
            update=False,
        )
    assert outcome == {keys[-1]: "enrolled"}
    late = db.execute(
        "SELECT user_id FROM enrolldb.program_enrollments_programenrollment"
        " WHERE external_user_key = %s",
        (keys[-1],),
    ).fetchone()
    assert late == (row[0],)

    for command in (["doctor"], ["status"]):
        proc = enrolldb_cli(*command, dsn=bouncer_dsn)
        assert proc.returncode == 0, proc
