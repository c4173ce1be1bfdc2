"""``enrolldb import``: a value that is not of its column's type refuses its row only.

COPY reads every value as text (``enrolldb_import.<table>_raw``); ``stage()`` casts each row
into the typed staging table, refusing a row whose value does not cast by rule
``type:<column>`` (the first bad column), the detail quoting every bad value. The check
reads integers, booleans and uuids as PostgreSQL does (`` 10``, ``TRUE``, ``yes``) and
timestamps in ISO 8601 form, the day checked against its month (29 February 2024 is one).
"""

from __future__ import annotations

import json
from pathlib import Path

from builders import ORG_COURSE, T0, integrity, minimal_export, read_report
from cli_run import enrolldb_cli
from enrolldb.demo_export import P1
from pgtypes import Conn

C1 = "aaaaaaaa-1111-4111-8111-111111111111"
PE = "program_enrollments_programenrollment"
PCE = "program_enrollments_programcourseenrollment"


def test_a_bad_value_refuses_its_row_and_the_rest_is_imported(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    export = minimal_export(
        tmp_path / "x",
        auth_user=[
            [3, "ann", "a@x", "t", T0],  # 1 fine
            ["x7", "bob", "b@x", "t", T0],  # 2 id not an integer
            [5, "carl", "c@x", "maybe", T0],  # 3 not a boolean
            [6, "dora", "d@x", "t", "2024-02-30 10:00"],  # 4 no such day
            [8, "eve", "e@x", "yes", "2024-02-29 10:00:00+00"],  # 5 fine (a leap day)
            [9999999999, "fay", "f@x", "", "soon"],  # 6 three bad values, the first named
            [" 10", "gus", "g@x", "TRUE", "2024-01-08T09:00:00Z"],  # 7 fine (PostgreSQL's own)
        ],
        student_courseenrollment=[[70, 3, ORG_COURSE, T0, "t", "masters"]],
        program_enrollments_programenrollment=[
            [5, T0, T0, 3, "GT-1", P1, C1, "enrolled"],  # 1 fine
            [6, T0, T0, None, "GT-2", "not-a-uuid", C1, "pending"],  # 2 bad uuid
        ],
        program_enrollments_programcourseenrollment=[
            [50, T0, T0, 5, 70, ORG_COURSE, "active"],  # 1 fine
            [60, T0, T0, 6, None, ORG_COURSE, "active"],  # 2 its program enrollment refused
            [61, "yesterday-ish", T0, 5, "70.0", ORG_COURSE, "active"],  # 3 two bad values
        ],
    )
    report = tmp_path / "r.json"
    run = enrolldb_cli(
        "import", str(export), "--report", str(report), "--format", "json", dsn=db_dsn
    )
    assert run.returncode == 1, run.stderr
    fates = {k: (v["rule"], v["detail"]) for k, v in read_report(report).items()}
    assert fates == {
        ("auth_user", 2): ("type:id", 'id "x7" is not a valid integer'),
        ("auth_user", 3): ("type:is_active", 'is_active "maybe" is not a valid boolean'),
        (
            "auth_user",
            4,
        ): (
            "type:date_joined",
            'date_joined "2024-02-30 10:00" is not a valid timestamp with time zone',
        ),
        ("auth_user", 6): (
            "type:id",
            'id "9999999999" is not a valid integer; is_active "" is not a valid boolean; '
            'date_joined "soon" is not a valid timestamp with time zone',
        ),
        (PE, 2): ("type:program_uuid", 'program_uuid "not-a-uuid" is not a valid uuid'),
        (PCE, 2): (
            "programcourseenrollment_program_enrollment_fk",
            "program_enrollments_programenrollment id=6 is refused",
        ),
        (PCE, 3): (
            "type:created",
            'created "yesterday-ish" is not a valid timestamp with time zone; '
            'course_enrollment_id "70.0" is not a valid integer',
        ),
    }
    counts = {t["table"]: t for t in json.loads(run.stdout)["tables"]}
    assert (counts["auth_user"]["read"], counts["auth_user"]["imported"]) == (7, 3)
    assert counts["auth_user"]["refused"] == 4
    assert db.execute(
        "SELECT id, username, is_active, date_joined::text FROM enrolldb.auth_user ORDER BY id"
    ).fetchall() == [
        (3, "ann", True, "2024-01-08 09:00:00+00"),
        (8, "eve", True, "2024-02-29 10:00:00+00"),
        (10, "gus", True, "2024-01-08 09:00:00+00"),
    ]
    assert db.execute(f"SELECT id FROM enrolldb.{PE}").fetchall() == [(5,)]
    assert db.execute(f"SELECT id FROM enrolldb.{PCE}").fetchall() == [(50,)]
    assert integrity(db) == []


def test_a_file_of_text_columns_only_and_an_empty_file_stage(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    # course_overviews_courseoverview has no typed column: nothing to check, nothing refused.
    export = minimal_export(tmp_path / "x")
    run = enrolldb_cli("import", str(export), "--format", "json", dsn=db_dsn)
    assert run.returncode == 0, run.stderr
    counts = {t["table"]: t for t in json.loads(run.stdout)["tables"]}
    assert counts["course_overviews_courseoverview"]["imported"] == 1
    assert counts["auth_user"]["read"] == 0
    assert db.execute("SELECT count(*) FROM enrolldb_import.auth_user_raw").fetchone() == (0,)
