"""``enrolldb enroll`` and ``enrolldb enroll-courses``, run as a subprocess against a test
database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from builders import (
    CURRICULUM_A,
    PROGRAM_A,
    add_identity,
    add_user,
    catalog,
    course_rows,
    program_enrollments,
)
from builders import REGISTRAR_COURSE as COURSE
from builders import REGISTRAR_ORG as ORG
from pgtypes import Conn


def cli(dsn: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "enrolldb", "--dsn", dsn, *args],
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

    for command in (["enroll", str(PROGRAM_A)], ["enroll-courses", str(PROGRAM_A), COURSE]):
        done = cli(db_dsn, *command, "-", stdin="ann,enrolled\n,active\n")
        assert done.returncode == 2
        assert "line 2: empty external_user_key" in done.stderr

    done = cli(
        db_dsn, "enroll-courses", str(PROGRAM_A), "course-v1:no+such+run", "-", stdin="a,active\n"
    )
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert program_enrollments(db, PROGRAM_A) == []


def test_course_staff_accepts_only_true_false_or_empty(db: Conn, db_dsn: str) -> None:
    catalog(db)
    done = cli(
        db_dsn,
        "enroll-courses",
        str(PROGRAM_A),
        COURSE,
        "-",
        stdin="ann,active,TRUE\nbea,active,yes\ncid,active,1\ndee,active, \n",
    )
    assert done.returncode == 2, done
    assert (
        "line 2: 'yes' is not a valid course_staff: write true, false, or leave it empty"
        in done.stderr
    )
    assert "line 3: '1' is not a valid course_staff" in done.stderr
    assert "line 1" not in done.stderr and "line 4" not in done.stderr
    assert "nothing was written" in done.stderr
    assert program_enrollments(db, PROGRAM_A) == []


def test_dry_run_reports_and_rolls_back(db: Conn, db_dsn: str) -> None:
    catalog(db)
    stdin = f"ann,enrolled,{CURRICULUM_A}\nbea,bogus,{CURRICULUM_A}\ncid,pending,{CURRICULUM_A}\n"
    done = cli(db_dsn, "enroll", str(PROGRAM_A), "-", "--dry-run", "--chunk-size", "2", stdin=stdin)
    assert done.returncode == 1, done
    assert done.stdout.startswith("DRY RUN: every change was rolled back")
    assert "3 of 3 requests done, 2 chunk(s)" in done.stdout
    assert "  enrolled: 1" in done.stdout and "  pending: 1" in done.stdout
    assert "line 2: bea,bogus," in done.stdout and ": invalid-status" in done.stdout
    assert program_enrollments(db, PROGRAM_A) == []
    history = db.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_historicalprogramenrollment"
    ).fetchone()
    assert history == (0,)

    done = cli(
        db_dsn, "enroll-courses", str(PROGRAM_A), COURSE, "-", "--dry-run", stdin="a,active\n"
    )
    assert done.returncode == 1, done
    assert "not-in-program" in done.stdout and "DRY RUN" in done.stdout


def test_rerunning_an_applied_file_exits_0(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    catalog(db)
    csv_file = tmp_path / "enroll.csv"
    csv_file.write_text(
        f"external_user_key,status,curriculum_uuid\nann,enrolled,{CURRICULUM_A}\n"
        f"bea,pending,{CURRICULUM_A}\n",
        encoding="utf-8",
    )
    first = cli(db_dsn, "enroll", str(PROGRAM_A), str(csv_file))
    assert first.returncode == 0, first
    again = cli(db_dsn, "enroll", str(PROGRAM_A), str(csv_file), "--format", "json")
    assert again.returncode == 0, again
    report = json.loads(again.stdout)
    assert report["counts"] == {"enrolled": 1, "pending": 1}
    assert report["failures"] == []
    assert [row[3] for row in program_enrollments(db, PROGRAM_A)] == ["enrolled", "pending"]


def test_wrong_header_and_refusals_in_json(db: Conn, db_dsn: str) -> None:
    catalog(db)
    done = cli(
        db_dsn,
        "enroll",
        str(PROGRAM_A),
        "-",
        "--format",
        "json",
        stdin=f"key,status,curriculum\nann,enrolled,{CURRICULUM_A}\n",
    )
    assert done.returncode == 2, done
    report = json.loads(done.stdout)
    assert report["complete"] is False
    assert "expected 'external_user_key,status,curriculum_uuid'" in report["error"]

    done = cli(
        db_dsn,
        "enroll-courses",
        str(PROGRAM_A),
        "course-v1:no+such+run",
        "-",
        "--format",
        "json",
        stdin="ann,active\n",
    )
    assert done.returncode == 2, done
    report = json.loads(done.stdout)
    assert "does not exist" in report["error"] and report["complete"] is False
    assert report["done"] == 0 and report["failures"] == []


def test_lines_not_applied_are_written_back_as_csv(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    catalog(db)
    failed = tmp_path / "failed.csv"
    done = cli(
        db_dsn,
        "enroll",
        str(PROGRAM_A),
        "-",
        "--failed-csv",
        str(failed),
        stdin=f'ann,enrolled,{CURRICULUM_A}\n"#bea",bogus\n',
    )
    assert done.returncode == 1, done
    assert 'line 2: "#bea",bogus: invalid-status' in done.stdout
    assert failed.read_text(encoding="utf-8") == (
        'external_user_key,status,curriculum_uuid\n"#bea",bogus\n'
    )


def test_a_key_twice_reports_each_line_by_position(db: Conn, db_dsn: str) -> None:
    """The first line of a key is applied and reported so; only the later one is duplicated
    (matched by input position, not by spelling: both lines spell the key the same way)."""
    catalog(db)
    done = cli(
        db_dsn,
        "enroll",
        str(PROGRAM_A),
        "-",
        "--format",
        "json",
        stdin=f"ann,enrolled,{CURRICULUM_A}\nann,pending,{CURRICULUM_A}\nbea,enrolled,{CURRICULUM_A}\n",
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {"duplicated": 1, "enrolled": 2}
    assert report["failures"] == [{"line": 2, "external_user_key": "ann", "outcome": "duplicated"}]
    assert program_enrollments(db, PROGRAM_A) == [
        ("ann", None, CURRICULUM_A, "enrolled"),
        ("bea", None, CURRICULUM_A, "enrolled"),
    ]

    done = cli(
        db_dsn, "enroll-courses", str(PROGRAM_A), COURSE, "-", stdin="bea,active\nbea,inactive\n"
    )
    assert done.returncode == 1, done.stderr
    assert "  active: 1\n  duplicated: 1\n" in done.stdout
    assert "  line 2: bea,inactive: duplicated\n" in done.stdout
    assert "line 1" not in done.stdout
    assert course_rows(db, PROGRAM_A, COURSE) == [("bea", "active", None)]
