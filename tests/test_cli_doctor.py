"""``enrolldb doctor`` run as a subprocess against a real database.

A DBA runs doctor from cron or by hand and acts on its exit code; these tests plant each
kind of problem by hand (as a careless script or a restore would) and check that doctor
names it and exits 1, and that a healthy database, including learners in the two-program
pattern, exits 0.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cli_run import enrolldb_cli
from pgtypes import Conn

REPO = Path(__file__).resolve().parents[1]

PROGRAM_A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
PROGRAM_B = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
CURRICULUM = "22222222-2222-4222-8222-222222222222"
COURSE = "course-v1:GTx+CS6250+2024_T1"


def enrolldb(db_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return enrolldb_cli(*args, dsn=db_dsn)


def seed_program(db: Conn, program: str) -> None:
    db.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org) VALUES (%s, 'GTx')"
        " ON CONFLICT DO NOTHING",
        (COURSE,),
    )
    db.execute(
        "INSERT INTO enrolldb.program_enrollments_program"
        " (program_uuid, authoring_organization_key) VALUES (%s, 'gtx')",
        (program,),
    )


def enroll(db: Conn, program: str, key: str, course_status: str) -> int:
    """A waiting program enrollment of ``key`` with one program course enrollment."""
    row = db.execute(
        "INSERT INTO enrolldb.program_enrollments_programenrollment"
        " (external_user_key, program_uuid, curriculum_uuid, status)"
        " VALUES (%s, %s, %s, 'enrolled') RETURNING id",
        (key, program, CURRICULUM),
    ).fetchone()
    assert row is not None
    db.execute(
        "INSERT INTO enrolldb.program_enrollments_programcourseenrollment"
        " (program_enrollment_id, course_key, status) VALUES (%s, %s, %s)",
        (row[0], COURSE, course_status),
    )
    return int(row[0])


def linked_learner(db: Conn) -> int:
    """One learner linked through the API; returns the program enrollment id."""
    seed_program(db, PROGRAM_A)
    pe_id = enroll(db, PROGRAM_A, "gt-0001", "active")
    db.execute("INSERT INTO enrolldb.auth_user (username) VALUES ('learner1')")
    failures = db.execute(
        "SELECT error FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['gt-0001'],"
        " ARRAY['learner1']) WHERE error IS NOT NULL",
        (PROGRAM_A,),
    ).fetchall()
    assert failures == []
    return pe_id


def test_healthy_database_exits_0(db: Conn, db_dsn: str) -> None:
    linked_learner(db)
    proc = enrolldb(db_dsn, "doctor")
    assert proc.returncode == 0, proc
    assert "check_integrity(): no violation" in proc.stdout
    assert "functions: up to date" in proc.stdout
    assert proc.stdout.rstrip().endswith("healthy")
    assert proc.stderr == ""


def test_healthy_database_json(db: Conn, db_dsn: str) -> None:
    proc = enrolldb(db_dsn, "doctor", "--format", "json")
    assert proc.returncode == 0, proc
    document = json.loads(proc.stdout)
    assert document["healthy"] is True
    assert document["violations"] == []
    assert document["two_program_learners"] == []
    assert document["migrations"]["pending"] == []
    assert document["migrations"]["functions_out_of_date"] == []
    assert len(document["migrations"]["applied"]) >= 4


def test_planted_violation_is_reported_and_exits_1(db: Conn, db_dsn: str) -> None:
    pe_id = linked_learner(db)
    # The section 1 defect, by hand: the learner loses access while the program says active.
    db.execute(
        "UPDATE enrolldb.student_courseenrollment SET is_active = false"
        " WHERE id IN (SELECT course_enrollment_id"
        "   FROM enrolldb.program_enrollments_programcourseenrollment WHERE status = 'active')"
    )
    ce_id, pce_id = db.execute(
        "SELECT course_enrollment_id, id FROM enrolldb.program_enrollments_programcourseenrollment"
    ).fetchall()[0]

    proc = enrolldb(db_dsn, "doctor")
    assert proc.returncode == 1, proc
    assert "check_integrity(): 1 violation(s)" in proc.stdout
    assert "active_enrollment_without_access" in proc.stdout
    assert "- active_enrollment_without_access: the learner lost course access" in proc.stdout
    assert "NOT healthy: 1 violation(s)" in proc.stdout

    proc = enrolldb(db_dsn, "doctor", "--format", "json")
    assert proc.returncode == 1, proc
    document = json.loads(proc.stdout)
    assert document["healthy"] is False
    assert document["violations"] == [
        {
            "violation": "active_enrollment_without_access",
            "program_enrollment_id": pe_id,
            "program_course_enrollment_id": pce_id,
            "course_enrollment_id": ce_id,
            "detail": f"active program course enrollment for {COURSE} points at inactive "
            "course enrollment (mode masters)",
        }
    ]


def test_two_program_learners_are_information_not_a_problem(db: Conn, db_dsn: str) -> None:
    # The defect of docs/reference.md, "What it is": canceled out of program A's course,
    # enrolled in program B's.
    seed_program(db, PROGRAM_A)
    seed_program(db, PROGRAM_B)
    enroll(db, PROGRAM_A, "gt-0002", "inactive")
    enroll(db, PROGRAM_B, "gt-0002", "active")
    enroll(db, PROGRAM_A, "gt-0003", "active")

    proc = enrolldb(db_dsn, "doctor")
    assert proc.returncode == 0, proc
    assert "1 external key(s) hold program course enrollments for one course" in proc.stdout
    assert "  gt-0002\n" in proc.stdout
    assert "gt-0003" not in proc.stdout

    document = json.loads(enrolldb(db_dsn, "doctor", "--format", "json").stdout)
    assert document["healthy"] is True
    assert document["two_program_learners"] == ["gt-0002"]


def test_two_program_learners_whose_keys_differ_by_case_are_listed(db: Conn, db_dsn: str) -> None:
    """K1 in program A, k1 in program B: one learner to enrolldb; the verbatim query (exact
    ``=``) misses them, doctor runs the case-insensitive form and lists both spellings."""
    seed_program(db, PROGRAM_A)
    seed_program(db, PROGRAM_B)
    enroll(db, PROGRAM_A, "K1", "inactive")
    enroll(db, PROGRAM_B, "k1", "active")

    document = json.loads(enrolldb(db_dsn, "doctor", "--format", "json").stdout)
    assert document["two_program_learners"] == ["K1", "k1"]
    proc = enrolldb(db_dsn, "doctor")
    assert proc.returncode == 0, proc
    assert "  K1\n" in proc.stdout and "  k1\n" in proc.stdout


def test_function_out_of_date_exits_1(db: Conn, db_dsn: str) -> None:
    db.execute("COMMENT ON FUNCTION enrolldb.check_integrity() IS 'edited by hand'")
    proc = enrolldb(db_dsn, "doctor")
    assert proc.returncode == 1, proc
    assert "function out of date: enrolldb.check_integrity()" in proc.stdout
    assert "NOT healthy: 1 function(s) out of date" in proc.stdout


def test_pending_migration_exits_1(db: Conn, db_dsn: str) -> None:
    db.execute(
        "DELETE FROM enrolldb_migrations._yoyo_migration"
        " WHERE migration_id = '0004_retirement_salt'"
    )
    proc = enrolldb(db_dsn, "doctor", "--format", "json")
    assert proc.returncode == 1, proc
    document = json.loads(proc.stdout)
    assert document["migrations"]["pending"] == ["0004_retirement_salt"]
    assert document["healthy"] is False


def test_unmigrated_database_exits_1_without_traceback(empty_db_dsn: str) -> None:
    proc = enrolldb(empty_db_dsn, "doctor")
    assert proc.returncode == 1, proc
    assert "not migrated" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_unreachable_server_exits_2() -> None:
    proc = enrolldb("host=127.0.0.1 port=1 user=postgres connect_timeout=2", "doctor")
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
