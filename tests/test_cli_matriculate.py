"""``enrolldb matriculate`` run as a subprocess: replaying an SSO sign-in for support staff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pgtypes import Conn

REPO = Path(__file__).resolve().parents[1]

PROGRAM = "11111111-1111-4111-8111-111111111111"
CURRICULUM = "22222222-2222-4222-8222-222222222222"
COURSE = "course-v1:GTx+CS6250+2024_T1"
MISSING_COURSE = "course-v1:GTx+Gone+2020_T1"


def enrolldb(db_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "python"), env.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "enrolldb", "--dsn", db_dsn, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def seed(db: Conn, *course_keys: str) -> tuple[int, int]:
    """User 'learner1' and a waiting enrollment 'gt-0001' in a gtx program, with one active
    program course enrollment per course key. Returns (user id, program enrollment id)."""
    db.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org) VALUES (%s, 'GTx')",
        (COURSE,),
    )
    db.execute(
        "INSERT INTO enrolldb.program_enrollments_program"
        " (program_uuid, authoring_organization_key) VALUES (%s, 'gtx')",
        (PROGRAM,),
    )
    user = db.execute(
        "INSERT INTO enrolldb.auth_user (username) VALUES ('learner1') RETURNING id"
    ).fetchone()
    pe = db.execute(
        "INSERT INTO enrolldb.program_enrollments_programenrollment"
        " (external_user_key, program_uuid, curriculum_uuid, status)"
        " VALUES ('gt-0001', %s, %s, 'enrolled') RETURNING id",
        (PROGRAM, CURRICULUM),
    ).fetchone()
    assert user is not None and pe is not None
    for course_key in course_keys:
        db.execute(
            "INSERT INTO enrolldb.program_enrollments_programcourseenrollment"
            " (program_enrollment_id, course_key, status) VALUES (%s, %s, 'active')",
            (pe[0], course_key),
        )
    return int(user[0]), int(pe[0])


def linked_user(db: Conn, pe_id: int) -> int | None:
    row = db.execute(
        "SELECT user_id FROM enrolldb.program_enrollments_programenrollment WHERE id = %s",
        (pe_id,),
    ).fetchone()
    assert row is not None
    return None if row[0] is None else int(row[0])


def test_matriculate_links_and_commits(db: Conn, db_dsn: str) -> None:
    user_id, pe_id = seed(db, COURSE)
    proc = enrolldb(db_dsn, "matriculate", str(user_id), "gtx", "GT-0001")
    assert proc.returncode == 0, proc
    assert PROGRAM in proc.stdout and "linked" in proc.stdout
    assert "linked: 1  failed: 0" in proc.stdout
    assert proc.stderr == ""
    assert linked_user(db, pe_id) == user_id


def test_matriculate_json_and_per_enrollment_failure(db: Conn, db_dsn: str) -> None:
    user_id, pe_id = seed(db, MISSING_COURSE)
    proc = enrolldb(db_dsn, "matriculate", "--format", "json", str(user_id), "gtx", "gt-0001")
    assert proc.returncode == 1, proc
    assert proc.stderr == "", "failures are in the output, not logged a second time"
    document = json.loads(proc.stdout)
    assert document["linked"] == 0 and document["failed"] == 1
    assert document["results"] == [
        {
            "program_enrollment_id": pe_id,
            "program_uuid": PROGRAM,
            "result": "failed",
            "error": f"NonExistentCourseError: {MISSING_COURSE} does not exist",
        }
    ]
    assert linked_user(db, pe_id) is None
    # The identity is recorded even so (docs/reference.md, matriculate_learner).
    identity = db.execute(
        "SELECT user_id FROM enrolldb.program_enrollments_learneridentity"
        " WHERE organization_key = 'gtx' AND external_user_key = 'gt-0001'"
    ).fetchone()
    assert identity == (user_id,)


def test_nothing_waiting_exits_0(db: Conn, db_dsn: str) -> None:
    user_id, _ = seed(db, COURSE)
    proc = enrolldb(db_dsn, "matriculate", str(user_id), "other-org", "gt-0001")
    assert proc.returncode == 0, proc
    assert "no waiting program enrollment matched" in proc.stdout


def test_unknown_user_exits_2(db: Conn, db_dsn: str) -> None:
    proc = enrolldb(db_dsn, "matriculate", "424242", "gtx", "gt-0001")
    assert proc.returncode == 2, proc
    assert "no user with id=424242 exists" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_invalid_key_exits_2(db: Conn, db_dsn: str) -> None:
    user_id, _ = seed(db, COURSE)
    proc = enrolldb(db_dsn, "matriculate", str(user_id), "gtx", "   ")
    assert proc.returncode == 2, proc
    assert "Invalid external user key" in proc.stderr
