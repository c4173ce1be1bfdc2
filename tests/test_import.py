"""``enrolldb import``: every row of a Django export gets one fate, the kept rows are written
with their ids, and nothing is written unless the run completes.

The exports come from ``enrolldb.demo_export`` (every defect kind, deterministic) or are
written row by row here; each test asserts the rows' fates in the report and the rows that
reach (or do not reach) the tables.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psycopg
import pytest

from builders import (
    ORG_COURSE,
    T0,
    add_user,
    integrity,
    minimal_export,
    read_report,
    state,
    write_table,
)
from cli_run import enrolldb_cli
from enrolldb.demo_export import COLUMNS, P1, P2, key_of, write_export
from enrolldb.migrate import migrate
from pgtypes import Conn

TABLES = list(COLUMNS)


def summary(stdout: str) -> dict[str, dict[str, int]]:
    document = json.loads(stdout)
    return {t["table"]: t for t in document["tables"]}


def data_rows(path: Path) -> int:
    with path.open(newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


# --- the demo export: every defect kind --------------------------------------------------------


@pytest.fixture
def demo_export(tmp_path: Path) -> Path:
    write_export(tmp_path / "export", 60)
    return tmp_path / "export"


def test_every_row_of_the_demo_export_gets_one_fate(
    db: Conn, db_dsn: str, demo_export: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    run = enrolldb_cli(
        "import", str(demo_export), "--report", str(report), "--format", "json", dsn=db_dsn
    )
    assert run.returncode == 1, run.stderr
    counts = summary(run.stdout)
    fates = read_report(report)
    for table in TABLES:
        c = counts[table]
        read = data_rows(demo_export / f"{table}.csv")
        assert c["read"] == read == c["imported"] + c["changed"] + c["refused"], table
        (in_db,) = db.execute(f"SELECT count(*) FROM enrolldb.{table}").fetchone() or (0,)
        assert in_db == c["imported"] + c["changed"], table
        in_report = [f for (t, _), f in fates.items() if t == table]
        assert len(in_report) == c["changed"] + c["refused"], table
        assert sum(f["fate"] == "refused" for f in in_report) == c["refused"], table

    pe = "program_enrollments_programenrollment"
    pce = "program_enrollments_programcourseenrollment"
    # 1: trailing space -> changed, stored canonical.
    assert fates[(pe, 1)]["fate"] == "changed"
    assert fates[(pe, 1)]["changes"] == 'external_user_key "uni-0000001 " -> "uni-0000001"'
    assert db.execute(f"SELECT external_user_key FROM enrolldb.{pe} WHERE id = 1").fetchone() == (
        "uni-0000001",
    )
    # 2: the key differing only in case (id 3) is refused, naming the kept row (id 2) ...
    assert fates[(pe, 3)]["rule"] == "programenrollment_key_program_curriculum_uq"
    assert fates[(pe, 3)]["detail"].endswith("with the row kept: line 2, id 2")
    # ... and so is its course row, by the foreign key.
    refused_children = {
        r["rule"]
        for (t, _), r in fates.items()
        if t == pce and "programenrollment id=3 " in r["detail"]
    }
    assert refused_children == {"programcourseenrollment_program_enrollment_fk"}
    # 3: a course row on another user's course enrollment.
    match = [
        r
        for (t, _), r in fates.items()
        if r["rule"] == "programcourseenrollment_course_enrollment_match_ck"
    ]
    assert [m["line"] for m in match][:1] == ["8"]
    assert "belongs to user 2" in match[0]["detail"]
    # 4: two active rows on one course enrollment: the higher id is refused.
    shared = [
        r
        for r in fates.values()
        if r["rule"] == "programcourseenrollment_active_course_enrollment_uq"
    ]
    assert shared and shared[0]["id"] == "12" and shared[0]["detail"].endswith("line 11, id 11")
    # 5: a waiting key active in two programs of one organization.
    waiting = [
        r for r in fates.values() if r["rule"] == "waitinglearneractivecourse_learner_course_uq"
    ]
    assert waiting and waiting[0]["id"] == "18" and waiting[0]["detail"].endswith("line 16, id 16")
    # 6, 7: statuses outside the sets.
    statuses = {r["rule"]: r["detail"] for r in fates.values() if r["rule"].endswith("status_ck")}
    assert "'withdrawn'" in statuses["programenrollment_status_ck"]
    assert "'unenrolled'" in statuses["programcourseenrollment_status_ck"]
    assert all(r["rule"] for r in fates.values() if r["fate"] == "refused")
    assert all(r["changes"] and not r["rule"] for r in fates.values() if r["fate"] == "changed")

    # The two-program learner (9): canceled/inactive in P1, enrolled/active in P2, one course
    # enrollment: imported as is.
    rows = db.execute(
        f"SELECT pe.program_uuid, pe.status, pce.status, pce.course_enrollment_id"
        f" FROM enrolldb.{pce} AS pce JOIN enrolldb.{pe} AS pe ON pe.id = pce.program_enrollment_id"
        f" WHERE pe.external_user_key = %s AND pce.course_key = %s ORDER BY pce.id",
        (key_of(9), ORG_COURSE),
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (P1, "canceled", "inactive"),
        (P2, "enrolled", "active"),
    ]
    assert rows[0][3] == rows[1][3] is not None
    assert not any(f"id {rows[0][3]}" in r["detail"] for r in fates.values() if r["detail"])

    assert integrity(db) == []
    doctor = enrolldb_cli("doctor", dsn=db_dsn)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_ids_are_kept_sequences_move_past_them_and_history_says_import(
    db: Conn, db_dsn: str, demo_export: Path
) -> None:
    assert enrolldb_cli("import", str(demo_export), dsn=db_dsn).returncode == 1
    with (demo_export / "auth_user.csv").open(newline="") as f:
        ids = sorted(int(r["id"]) for r in csv.DictReader(f))
    assert [r[0] for r in db.execute("SELECT id FROM enrolldb.auth_user ORDER BY id")] == ids
    assert add_user(db, "newcomer") == max(ids) + 1
    for table, history in (
        (
            "program_enrollments_programenrollment",
            "program_enrollments_historicalprogramenrollment",
        ),
        (
            "program_enrollments_programcourseenrollment",
            "program_enrollments_historicalprogramcourseenrollment",
        ),
        ("student_courseenrollment", "student_courseenrollment_history"),
    ):
        rows = db.execute(
            f"SELECT h.history_type, h.history_change_reason, count(*) FROM enrolldb.{history} AS h"
            " GROUP BY 1, 2"
        ).fetchall()
        (live,) = db.execute(f"SELECT count(*) FROM enrolldb.{table}").fetchone() or (0,)
        assert rows == [("+", "import", live)], table


def test_report_as_json(db_dsn: str, demo_export: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run = enrolldb_cli(
        "import", str(demo_export), "--report", str(report), "--format", "json", dsn=db_dsn
    )
    assert run.returncode == 1
    rows = json.loads(report.read_text())
    first = rows[0]
    assert set(first) == {"table_name", "line", "id", "fate", "rule", "detail", "changes", "input"}
    assert isinstance(first["input"], dict)
    assert len(rows) == sum(t["changed"] + t["refused"] for t in json.loads(run.stdout)["tables"])


# --- small exports -------------------------------------------------------------------------------


def test_the_two_program_learner_imports_cleanly(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    export = minimal_export(
        tmp_path / "x",
        auth_user=[[7, "learner", "l@example.edu", "t", T0]],
        student_courseenrollment=[[70, 7, ORG_COURSE, T0, "t", "masters"]],
        program_enrollments_programenrollment=[
            [5, T0, T0, 7, "GT-000123", P1, "aaaaaaaa-1111-4111-8111-111111111111", "canceled"],
            [6, T0, T0, 7, "GT-000123", P2, "aaaaaaaa-2222-4222-8222-222222222222", "enrolled"],
        ],
        program_enrollments_programcourseenrollment=[
            [50, T0, T0, 5, 70, ORG_COURSE, "inactive"],
            [60, T0, T0, 6, 70, ORG_COURSE, "active"],
        ],
    )
    report = tmp_path / "report.csv"
    run = enrolldb_cli("import", str(export), "--report", str(report), dsn=db_dsn)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["table", "read", "imported", "changed", "refused"]
    assert "program_enrollments_programcourseenrollment 2 2 0 0" in [
        " ".join(x.split()) for x in lines
    ]
    assert "committed; refused rows: 0" in run.stderr
    assert read_report(report) == {}
    assert db.execute(
        "SELECT id, program_enrollment_id, course_enrollment_id, status"
        " FROM enrolldb.program_enrollments_programcourseenrollment ORDER BY id"
    ).fetchall() == [(50, 5, 70, "inactive"), (60, 6, 70, "active")]
    assert integrity(db) == []


def test_missing_optional_columns_take_their_defaults(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    export = minimal_export(tmp_path / "x")
    write_table(export, "auth_user", ["id", "username"], [[3, "ann"]])
    assert enrolldb_cli("import", str(export), dsn=db_dsn).returncode == 0
    assert db.execute(
        "SELECT id, username, email, is_active FROM enrolldb.auth_user"
    ).fetchall() == [(3, "ann", "", True)]


def test_a_null_where_the_schema_forbids_it_is_refused_by_name(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    export = minimal_export(
        tmp_path / "x", auth_user=[[3, None, "a@x", "t", T0], [4, "bob", "b@x", "t", T0]]
    )
    report = tmp_path / "r.csv"
    assert enrolldb_cli("import", str(export), "--report", str(report), dsn=db_dsn).returncode == 1
    fate = read_report(report)[("auth_user", 1)]
    assert (fate["rule"], fate["detail"]) == ("not_null", "username is NULL")
    assert db.execute("SELECT id FROM enrolldb.auth_user").fetchall() == [(4,)]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["id", "username", "password"], "auth_user.csv: unknown columns password"),
        (["username"], "auth_user.csv: required columns missing: id"),
    ],
)
def test_bad_headers_refuse_the_run(
    db: Conn, db_dsn: str, tmp_path: Path, header: list[str], message: str
) -> None:
    export = minimal_export(tmp_path / "x")
    write_table(export, "auth_user", header, [])
    before = state(db)
    run = enrolldb_cli("import", str(export), dsn=db_dsn)
    assert run.returncode == 2
    assert message in run.stderr
    assert state(db) == before


def test_missing_and_unknown_files_refuse_the_run(db_dsn: str, tmp_path: Path) -> None:
    export = minimal_export(tmp_path / "x")
    (export / "student_courseaccessrole.csv").unlink()
    (export / "auth_group.csv").write_text("id\n")
    run = enrolldb_cli("import", str(export), dsn=db_dsn)
    assert run.returncode == 2
    assert "student_courseaccessrole.csv: missing (required)" in run.stderr
    assert "auth_group.csv: not a table of the export" in run.stderr


def test_given_history_rows_are_kept_before_the_import_row(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    c1 = "aaaaaaaa-1111-4111-8111-111111111111"
    export = minimal_export(
        tmp_path / "x",
        program_enrollments_programenrollment=[
            [5, T0, T0, None, "GT-5 ", P1, c1, "enrolled"],
            [6, T0, T0, None, "GT-6", P1, c1, "withdrawn"],
        ],
    )
    history = "program_enrollments_historicalprogramenrollment"
    header = [*COLUMNS["program_enrollments_programenrollment"], "history_id", "history_date"]
    header += ["history_type", "history_change_reason"]
    write_table(
        export,
        history,
        header,
        [
            [5, T0, T0, None, "GT-5 ", P1, c1, "pending", 40, T0, "+", None],
            [5, T0, T0, None, "GT-5 ", P1, c1, "enrolled", 41, T0, "~", "registrar"],
            [6, T0, T0, None, "GT-6", P1, c1, "withdrawn", 42, T0, "+", None],
            [99, T0, T0, None, "GT-99", P1, c1, "enrolled", 43, T0, "-", None],
            [5, T0, T0, None, "GT-5", P1, c1, "enrolled", 44, T0, "?", None],
        ],
    )
    report = tmp_path / "r.csv"
    assert enrolldb_cli("import", str(export), "--report", str(report), dsn=db_dsn).returncode == 1
    fates = read_report(report)
    assert fates[(history, 3)]["rule"] == "history_of_refused_row"
    assert fates[(history, 5)]["rule"] == "historicalprogramenrollment_type_ck"
    rows = db.execute(
        f"SELECT id, external_user_key, status, history_id, history_type, history_change_reason"
        f" FROM enrolldb.{history} ORDER BY history_id"
    ).fetchall()
    assert rows == [
        (5, "GT-5 ", "pending", 40, "+", None),
        (5, "GT-5 ", "enrolled", 41, "~", "registrar"),
        (99, "GT-99", "enrolled", 43, "-", None),
        (5, "GT-5", "enrolled", 44, "+", "import"),
    ]
    # The identity of program enrollments continues after the deleted row's id too.
    assert db.execute(
        "SELECT nextval(pg_get_serial_sequence('enrolldb.program_enrollments_programenrollment',"
        " 'id'))"
    ).fetchone() == (100,)
    assert integrity(db) == []


def test_dry_run_changes_nothing_and_reports_the_same(
    db: Conn, db_dsn: str, demo_export: Path, tmp_path: Path
) -> None:
    before = state(db)
    dry = enrolldb_cli(
        "import",
        str(demo_export),
        "--dry-run",
        "--report",
        str(tmp_path / "dry.csv"),
        "--format",
        "json",
        dsn=db_dsn,
    )
    assert dry.returncode == 1
    assert json.loads(dry.stdout)["dry_run"] is True
    assert state(db) == before
    assert db.execute(
        "SELECT count(*) FROM enrolldb_import.program_enrollments_programenrollment"
    ).fetchone() == (0,)
    real = enrolldb_cli(
        "import",
        str(demo_export),
        "--report",
        str(tmp_path / "real.csv"),
        "--format",
        "json",
        dsn=db_dsn,
    )
    assert json.loads(real.stdout)["tables"] == json.loads(dry.stdout)["tables"]
    assert (tmp_path / "dry.csv").read_text() == (tmp_path / "real.csv").read_text()


def test_a_failed_run_leaves_nothing(db: Conn, db_dsn: str, demo_export: Path) -> None:
    # A row with one field more than the header is not CSV the import can read: the run
    # stops (a value of the wrong type only refuses its row: test_import_types.py).
    path = demo_export / "program_enrollments_programcourseenrollment.csv"
    lines = path.read_text().splitlines()
    lines.append(lines[-1] + ",surplus")
    path.write_text("\n".join(lines) + "\n")
    before = state(db)
    run = enrolldb_cli("import", str(demo_export), dsn=db_dsn)
    assert run.returncode == 2
    assert (
        "program_enrollments_programcourseenrollment.csv: extra data after last expected column"
        in run.stderr
    )
    assert f"line {len(lines) - 1}" in run.stderr
    assert state(db) == before
    assert db.execute("SELECT count(*) FROM enrolldb.auth_user").fetchone() == (0,)


def test_a_database_with_rows_is_refused(db: Conn, db_dsn: str, demo_export: Path) -> None:
    add_user(db, "already-here")
    run = enrolldb_cli("import", str(demo_export), dsn=db_dsn)
    assert run.returncode == 2
    assert "the database already holds rows in auth_user" in run.stderr
    assert "--merge" in run.stderr
    assert db.execute(
        "SELECT count(*) FROM enrolldb.program_enrollments_programenrollment"
    ).fetchone() == (0,)


# --- round trip ---------------------------------------------------------------------------------


def test_round_trip_of_our_own_tables(
    db: Conn, db_dsn: str, empty_db_dsn: str, demo_export: Path, tmp_path: Path
) -> None:
    assert enrolldb_cli("import", str(demo_export), dsn=db_dsn).returncode == 1
    ours = tmp_path / "ours"
    ours.mkdir()
    for table in TABLES:
        with (
            (ours / f"{table}.csv").open("wb") as out,
            db.cursor().copy(
                f"COPY enrolldb.{table} TO STDOUT WITH (FORMAT csv, HEADER, NULL '\\N')"
            ) as copy,
        ):
            for chunk in copy:
                out.write(chunk)
    migrate(empty_db_dsn)
    run = enrolldb_cli("import", str(ours), "--format", "json", dsn=empty_db_dsn)
    assert run.returncode == 0, run.stderr
    assert all(t["changed"] == t["refused"] == 0 for t in json.loads(run.stdout)["tables"])
    with psycopg.connect(empty_db_dsn) as copy_db:
        for table in TABLES:
            query = f"SELECT * FROM enrolldb.{table} ORDER BY 1"
            assert copy_db.execute(query).fetchall() == db.execute(query).fetchall(), table
