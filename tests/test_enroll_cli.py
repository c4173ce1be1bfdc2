"""``enrolldb enroll`` and ``enrolldb enroll-courses``, run as a subprocess against a test
database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures_registrar import (
    COURSE,
    CURRICULUM_A,
    ORG,
    PROGRAM_A,
    Conn,
    add_identity,
    add_user,
    catalog,
    course_rows,
    program_enrollments,
)

# Registers enroll_cmds when the CLI does not list it yet; a no-op once it does.
RUNNER = (
    "import sys, enrolldb.cli as c; from enrolldb.cli import enroll_cmds; "
    "c.COMMAND_MODULES = c.COMMAND_MODULES if enroll_cmds in c.COMMAND_MODULES "
    "else (*c.COMMAND_MODULES, enroll_cmds); sys.exit(c.main(sys.argv[1:]))"
)


def cli(dsn: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, "--dsn", dsn, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_enroll_file_then_courses_from_stdin(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    catalog(db)
    bob = add_user(db, "bob")
    add_identity(db, ORG, "bob", bob)
    csv_file = tmp_path / "enroll.csv"
    csv_file.write_text(
        "external_user_key,status,curriculum_uuid\n"
        "# registrar export\n"
        "\n"
        f"Ann,enrolled,{CURRICULUM_A}\n"
        f"BOB,pending,{CURRICULUM_A}\n"
        f"cid,enrolled,{CURRICULUM_A}\n",
        encoding="utf-8",
    )
    done = cli(db_dsn, "enroll", str(PROGRAM_A), str(csv_file), "--chunk-size", "2")
    assert done.returncode == 0, done.stderr
    assert "enrolled: 2" in done.stdout and "pending: 1" in done.stdout
    assert program_enrollments(db, PROGRAM_A) == [
        ("Ann", None, CURRICULUM_A, "enrolled"),
        ("BOB", bob, CURRICULUM_A, "pending"),
        ("cid", None, CURRICULUM_A, "enrolled"),
    ]

    done = cli(
        db_dsn,
        "enroll-courses",
        str(PROGRAM_A),
        COURSE,
        "-",
        "--no-update",
        "--format",
        "json",
        stdin="ann,active,true\nbob,inactive\nnobody,active,\ncid,bogus,false\n",
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {
        "active": 1,
        "inactive": 1,
        "invalid-status": 1,
        "not-in-program": 1,
    }
    assert report["failures"] == [
        {"line": 3, "external_user_key": "nobody", "outcome": "not-in-program"},
        {"line": 4, "external_user_key": "cid", "outcome": "invalid-status"},
    ]
    ce = db.execute(
        "SELECT id FROM enrolldb.student_courseenrollment WHERE user_id = %s", (bob,)
    ).fetchone()
    assert ce is not None
    assert course_rows(db, PROGRAM_A, COURSE) == [
        ("Ann", "active", None),
        ("BOB", "inactive", ce[0]),
    ]
    pending = db.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_courseaccessroleassignment"
    ).fetchone()
    assert pending == (1,)


def test_refused_runs_write_nothing(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    catalog(db)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"ann,enrolled,{CURRICULUM_A}\nbea,enrolled,not-a-uuid\ncid\n", encoding="utf-8")
    done = cli(db_dsn, "enroll", str(PROGRAM_A), str(bad))
    assert done.returncode == 2
    assert "line 2:" in done.stderr and "line 3:" in done.stderr

    done = cli(db_dsn, "enroll", "not-a-uuid", "-", stdin=f"ann,enrolled,{CURRICULUM_A}\n")
    assert done.returncode == 2
    assert "not a valid UUID" in done.stderr

    done = cli(
        db_dsn, "enroll", str(PROGRAM_A), "-", "--no-create", "--no-update", stdin="ann,enrolled\n"
    )
    assert done.returncode == 2

    done = cli(db_dsn, "enroll-courses", str(PROGRAM_A), COURSE, "-", stdin="ann,active,maybe\n")
    assert done.returncode == 2
    assert "line 1:" in done.stderr

    done = cli(
        db_dsn, "enroll-courses", str(PROGRAM_A), "course-v1:no+such+run", "-", stdin="a,active\n"
    )
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert program_enrollments(db, PROGRAM_A) == []
