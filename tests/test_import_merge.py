"""``enrolldb import --merge``: an export merged by id into a database that holds rows.

The policy (docs/reference.md, "Importing a Django export"; docs/operators.md, "Adopting an
existing deployment"): a row whose id the database holds with the same values is *present*
(not written); with other values it is refused by the primary key, naming the columns that
differ; a new row meets every rule against the database's rows as well as the export's, and
the database's row always stays; a reference names the export's row when the export holds
that id, else the database's. Every input row gets one fate; read = imported + changed +
present + refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builders import ORG_COURSE, T0, integrity, minimal_export, read_report, state, write_table
from cli_run import enrolldb_cli
from enrolldb.demo_export import COLUMNS, P1, P2, write_export
from pgtypes import Conn

C1 = "aaaaaaaa-1111-4111-8111-111111111111"
C2 = "aaaaaaaa-2222-4222-8222-222222222222"
PE = "program_enrollments_programenrollment"
PCE = "program_enrollments_programcourseenrollment"
CE = "student_courseenrollment"
HPE = "program_enrollments_historicalprogramenrollment"


def existing(directory: Path) -> Path:
    """What the database holds before the merge: learner 7 realized in P1 (course row 50 on
    course enrollment 70), user 11, a waiting key W-1 in P1 active for the course (200)."""
    return minimal_export(
        directory,
        auth_user=[[7, "learner", "l@example.edu", "t", T0], [11, "carol", "c@x", "t", T0]],
        student_courseenrollment=[[70, 7, ORG_COURSE, T0, "t", "masters"]],
        program_enrollments_programenrollment=[
            [5, T0, T0, 7, "GT-000123", P1, C1, "enrolled"],
            [20, T0, T0, None, "W-1", P1, C1, "pending"],
        ],
        program_enrollments_programcourseenrollment=[
            [50, T0, T0, 5, 70, ORG_COURSE, "active"],
            [200, T0, T0, 20, None, ORG_COURSE, "active"],
        ],
    )


def incoming(directory: Path) -> Path:
    """The export merged in; the comment on each row is its fate."""
    export = minimal_export(  # the catalog: present
        directory,
        auth_user=[
            [7, "learner", "l@example.edu", "t", T0],  # 1 present
            [8, "bob", "b@x", "t", T0],  # 2 imported
            [9, "learner", "x@x", "t", T0],  # 3 username of the database's user 7
            [11, "carol", "new@x", "t", T0],  # 4 id 11 with another email
        ],
        student_courseenrollment=[
            [70, 7, ORG_COURSE, T0, "t", "masters"],  # 1 present
            [80, 8, ORG_COURSE, T0, "t", "masters"],  # 2 imported
            [90, 11, ORG_COURSE, T0, "t", "audit"],  # 3 user 11 of the export is refused
        ],
        program_enrollments_programenrollment=[
            [5, T0, T0, 7, "GT-000123", P1, C1, "enrolled"],  # 1 present
            [6, T0, T0, 7, "GT-000123", P2, C2, "enrolled"],  # 2 imported
            [21, T0, T0, None, "w-1", P2, C2, "pending"],  # 3 imported
            [22, T0, T0, 8, "GT-8", P1, C1, "enrolled"],  # 4 imported
            [23, T0, T0, None, "gt-000123 ", P1, C1, "pending"],  # 5 the key of row 5
        ],
        program_enrollments_programcourseenrollment=[
            [50, T0, T0, 5, 70, ORG_COURSE, "active"],  # 1 present
            [60, T0, T0, 6, 70, ORG_COURSE, "active"],  # 2 course enrollment 70 has 50
            [210, T0, T0, 21, None, ORG_COURSE, "active"],  # 3 W-1 is active there (200)
            [220, T0, T0, 22, 80, ORG_COURSE, "active"],  # 4 imported
            [201, T0, T0, 20, None, ORG_COURSE, "inactive"],  # 5 20 has the course (200)
            [231, T0, T0, 23, None, ORG_COURSE, "active"],  # 6 program enrollment refused
            [232, T0, T0, 999, None, ORG_COURSE, "active"],  # 7 no program enrollment 999
        ],
    )
    header: Sequence[str] = [*COLUMNS[PE], "history_id", "history_date", "history_type"]
    write_table(
        export,
        HPE,
        header,
        [
            [5, T0, T0, 7, "GT-000123", P1, C1, "pending", 100, T0, "~"],  # 1 row 5 exists
            [6, T0, T0, 7, "GT-000123", P2, C2, "pending", 101, T0, "+"],  # 2 kept
        ],
    )
    return export


def sequence_heads(db: Conn) -> list[tuple[Any, ...]]:
    """Every identity sequence of the imported tables: (name, last_value, is_called)."""
    names = db.execute(
        "SELECT pg_get_serial_sequence(a.attrelid::regclass::text, a.attname)"
        " FROM pg_attribute AS a WHERE a.attidentity <> ''"
        " AND a.attrelid::regclass::text = ANY (SELECT 'enrolldb.' || t"
        " FROM unnest(enrolldb_import.tables()) AS t) ORDER BY 1"
    ).fetchall()
    assert len(names) == 11
    return [
        (name, *(db.execute(f"SELECT last_value, is_called FROM {name}").fetchone() or ()))
        for (name,) in names
    ]


def merge(db_dsn: str, export: Path, report: Path, *extra: str) -> dict[str, dict[str, int]]:
    run = enrolldb_cli(
        "import",
        str(export),
        "--merge",
        "--report",
        str(report),
        "--format",
        "json",
        *extra,
        dsn=db_dsn,
    )
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    assert document["merge"] is True
    return {t["table"]: t for t in document["tables"]}


EXPECTED_FATES = {
    ("auth_user", 3): (
        "auth_user_username_uq",
        "collides on (username) with the row in the database: id 7",
    ),
    ("auth_user", 4): (
        "auth_user_pk",
        'id 11 is in the database with other values: email "new@x" (database: "c@x")',
    ),
    (CE, 3): ("courseenrollment_user_fk", "auth_user id=11 is refused"),
    (PE, 5): (
        "programenrollment_key_program_curriculum_uq",
        "collides on (lower(external_user_key), program_uuid, curriculum_uuid) with the row in "
        "the database: id 5",
    ),
    (PCE, 2): (
        "programcourseenrollment_active_course_enrollment_uq",
        "collides on (course_enrollment_id) with the row in the database: id 50",
    ),
    (PCE, 3): (
        "waitinglearneractivecourse_learner_course_uq",
        "collides on (the waiting learner's organization, lower(external_user_key), course_key)"
        " with the row in the database: id 200",
    ),
    (PCE, 5): (
        "programcourseenrollment_enrollment_course_uq",
        "collides on (program_enrollment_id, course_key) with the row in the database: id 200",
    ),
    (PCE, 6): (
        "programcourseenrollment_program_enrollment_fk",
        "program_enrollments_programenrollment id=23 is refused",
    ),
    (PCE, 7): (
        "programcourseenrollment_program_enrollment_fk",
        "program_enrollments_programenrollment id=999 is neither in the export nor in the database",
    ),
    (HPE, 1): (
        "history_of_existing_row",
        "program_enrollments_programenrollment id=5 is in the database: its history is not "
        "added to",
    ),
}


def test_merge_by_id_gives_every_row_one_fate(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    first = enrolldb_cli("import", str(existing(tmp_path / "a")), dsn=db_dsn)
    assert first.returncode == 0, first.stderr
    refused = enrolldb_cli("import", str(incoming(tmp_path / "b")), dsn=db_dsn)
    assert refused.returncode == 2 and "--merge" in refused.stderr

    report = tmp_path / "report.json"
    counts = merge(db_dsn, tmp_path / "b", report)
    fates = {k: (r["rule"], r["detail"]) for k, r in read_report(report).items()}
    # The changed row (23's key canonicalised) was refused after: one fate, refused.
    assert fates == EXPECTED_FATES
    expected_counts = {  # read, imported, changed, present, refused
        "auth_user": (4, 1, 0, 1, 2),
        "course_overviews_courseoverview": (1, 0, 0, 1, 0),
        "course_modes_coursemode": (1, 0, 0, 1, 0),
        "program_enrollments_program": (2, 0, 0, 2, 0),
        CE: (3, 1, 0, 1, 1),
        PE: (5, 3, 0, 1, 1),
        PCE: (7, 1, 0, 1, 5),
        HPE: (2, 1, 0, 0, 1),
    }
    for table, (read, imported, changed, present, refused_rows) in expected_counts.items():
        c = counts[table]
        assert (c["read"], c["imported"], c["changed"], c["present"], c["refused"]) == (
            read,
            imported,
            changed,
            present,
            refused_rows,
        ), table
    for c in counts.values():
        assert c["read"] == c["imported"] + c["changed"] + c["present"] + c["refused"]

    # The database's rows are untouched (user 11 keeps its email); the new ones are there.
    assert db.execute(
        "SELECT id, username, email FROM enrolldb.auth_user ORDER BY id"
    ).fetchall() == [
        (7, "learner", "l@example.edu"),
        (8, "bob", "b@x"),
        (11, "carol", "c@x"),
    ]
    assert db.execute(f"SELECT id FROM enrolldb.{CE} ORDER BY id").fetchall() == [(70,), (80,)]
    assert db.execute(
        f"SELECT id, user_id, external_user_key, status FROM enrolldb.{PE} ORDER BY id"
    ).fetchall() == [
        (5, 7, "GT-000123", "enrolled"),
        (6, 7, "GT-000123", "enrolled"),
        (20, None, "W-1", "pending"),
        (21, None, "w-1", "pending"),
        (22, 8, "GT-8", "enrolled"),
    ]
    assert db.execute(
        f"SELECT id, program_enrollment_id, course_enrollment_id, status FROM enrolldb.{PCE}"
        " ORDER BY id"
    ).fetchall() == [(50, 5, 70, "active"), (200, 20, None, "active"), (220, 22, 80, "active")]
    # Present rows get no history row; new ones theirs, after the given one (101 for 6).
    assert db.execute(
        f"SELECT id, history_id, history_type, history_change_reason FROM enrolldb.{HPE}"
        " ORDER BY history_id"
    ).fetchall()[-4:] == [
        (6, 101, "+", None),
        (6, 102, "+", "import"),
        (21, 103, "+", "import"),
        (22, 104, "+", "import"),
    ]
    assert db.execute(f"SELECT count(*) FROM enrolldb.{HPE} WHERE id = 5").fetchone() == (1,)
    # Identities continue after the largest id, whatever side it came from.
    for table, after in (("auth_user", 12), (PE, 23), (PCE, 221), (CE, 81)):
        assert db.execute(
            f"SELECT nextval(pg_get_serial_sequence('enrolldb.{table}', 'id'))"
        ).fetchone() == (after,), table
    assert integrity(db) == []
    doctor = enrolldb_cli("doctor", dsn=db_dsn)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_a_dry_run_merge_changes_nothing_and_reports_the_same(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    assert enrolldb_cli("import", str(existing(tmp_path / "a")), dsn=db_dsn).returncode == 0
    before = state(db)
    next_ids = sequence_heads(db)
    dry = merge(db_dsn, incoming(tmp_path / "b"), tmp_path / "dry.json", "--dry-run")
    assert state(db) == before
    assert db.execute(f"SELECT count(*) FROM enrolldb.{HPE} WHERE id = 6").fetchone() == (0,)
    # Sequences ignore rollbacks; the dry run put them back where they were.
    assert sequence_heads(db) == next_ids
    real = merge(db_dsn, tmp_path / "b", tmp_path / "real.json")
    assert real == dry
    assert (tmp_path / "dry.json").read_text() == (tmp_path / "real.json").read_text()


def test_merging_the_same_export_twice_finds_every_row_present(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    demo_export_dir = tmp_path / "export"
    write_export(demo_export_dir, 60)
    assert enrolldb_cli("import", str(demo_export_dir), dsn=db_dsn).returncode == 1
    before = state(db)
    run = enrolldb_cli("import", str(demo_export_dir), "--merge", "--format", "json", dsn=db_dsn)
    # Every row imported the first time, as is or changed (a key canonicalised, a course
    # row or course enrollment made inactive), is present; the rows refused the first time
    # are refused again. Nothing is written.
    assert run.returncode == 1, run.stderr
    counts = {t["table"]: t for t in json.loads(run.stdout)["tables"]}
    for table in COLUMNS:
        t = counts[table]
        (in_db,) = db.execute(f"SELECT count(*) FROM enrolldb.{table}").fetchone() or (0,)
        assert t["imported"] == t["changed"] == 0, t
        assert t["present"] == in_db, t
        assert t["refused"] == t["read"] - in_db, t
    assert state(db) == before
    assert integrity(db) == []
