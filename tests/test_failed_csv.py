"""``--failed-csv PATH`` of ``link`` and ``enroll``: a bad path refuses the run before anything
is written, and a list that cannot be written at the end never hides what was committed.

Why: the list used to be opened after the run. ``link ... --failed-csv /nonexistent/dir/f.csv``
committed the relink, then printed only ``[Errno 2] No such file or directory`` (JSON: only
an error) and exited 2: the operator could not tell the links had been made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from builders import (
    CURRICULUM_A,
    LINK_PROGRAM,
    PROGRAM_A,
    catalog,
    link_tables_snapshot,
    links,
    program_enrollments,
    seed_link_learners,
    write_csv,
)
from cli_run import enrolldb_cli
from pgtypes import Conn

# key1 moves from user1 to user5 (a relink), key9 has no enrollment (a failure).
PAIRS = "key1,user5\nkey9,user1\n"
NO_DIR = "/nonexistent/dir/f.csv"
FULL = "/dev/full"  # opens, and every write fails with ENOSPC


def linked_key1(db: Conn) -> None:
    seed_link_learners(db, 5)
    db.execute(
        "SELECT FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['key1'], ARRAY['user1'])",
        (LINK_PROGRAM,),
    )


@pytest.mark.parametrize("output", ["text", "json"])
def test_link_to_an_unwritable_path_is_refused_before_anything_is_linked(
    db: Conn, db_dsn: str, tmp_path: Path, output: str
) -> None:
    linked_key1(db)
    before = link_tables_snapshot(db)
    proc = enrolldb_cli(
        "link",
        LINK_PROGRAM,
        write_csv(tmp_path, PAIRS),
        "--failed-csv",
        NO_DIR,
        "--format",
        output,
        dsn=db_dsn,
    )
    assert proc.returncode == 2, proc
    assert f"cannot write --failed-csv {NO_DIR}: No such file or directory" in proc.stderr
    assert "nothing was linked" in proc.stderr
    assert link_tables_snapshot(db) == before
    if output == "json":
        document = json.loads(proc.stdout)
        assert document["complete"] is False
        assert document["error"].startswith("cannot write --failed-csv")


@pytest.mark.skipif(not os.path.exists(FULL), reason="needs /dev/full")
def test_link_report_is_printed_when_the_failed_list_cannot_be_written(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    linked_key1(db)
    csv_file = write_csv(tmp_path, PAIRS)
    proc = enrolldb_cli("link", LINK_PROGRAM, csv_file, "--failed-csv", FULL, dsn=db_dsn)
    assert proc.returncode == 2, proc
    assert "relinked:       1" in proc.stdout
    assert "failed:         1" in proc.stdout
    assert "line 2: key9,user1" in proc.stdout
    assert f"could not write the failed lines to {FULL}" in proc.stderr
    assert links(db)["key1"] == "user5"  # committed, and the report says so

    db.execute(
        "SELECT FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['key1'], ARRAY['user1'])",
        (LINK_PROGRAM,),
    )
    proc = enrolldb_cli(
        "link", LINK_PROGRAM, csv_file, "--failed-csv", FULL, "--format", "json", dsn=db_dsn
    )
    assert proc.returncode == 2, proc
    document = json.loads(proc.stdout)
    assert (document["relinked"], document["failed"]) == (1, 1)
    assert [r["result"] for r in document["results"]] == ["relinked", "failed"]
    assert document["failed_csv_error"].startswith(f"could not write the failed lines to {FULL}")


def test_a_refused_run_leaves_an_earlier_failed_list_as_it_was(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    linked_key1(db)
    earlier = tmp_path / "failed.csv"
    earlier.write_text("external_user_key,lms_username\nkeyX,userX\n", encoding="utf-8")
    proc = enrolldb_cli(
        "link",
        LINK_PROGRAM,
        write_csv(tmp_path, "key1\n"),
        "--failed-csv",
        str(earlier),
        dsn=db_dsn,
    )
    assert proc.returncode == 2, proc
    assert earlier.read_text(encoding="utf-8") == "external_user_key,lms_username\nkeyX,userX\n"


def enroll(db: Conn, db_dsn: str, tmp_path: Path, failed_csv: str) -> CompletedProcess[str]:
    """``enroll --create`` of one good line and one bad (line 2) into program A."""
    catalog(db)
    requests = tmp_path / "enroll.csv"
    requests.write_text(f"ann,enrolled,{CURRICULUM_A}\nbea,bogus\n", encoding="utf-8")
    return enrolldb_cli(
        "enroll", str(PROGRAM_A), str(requests), "--create", "--failed-csv", failed_csv, dsn=db_dsn
    )


def test_enroll_to_an_unwritable_path_is_refused_before_anything_is_written(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    proc = enroll(db, db_dsn, tmp_path, NO_DIR)
    assert proc.returncode == 2, proc
    assert f"cannot write --failed-csv {NO_DIR}" in proc.stderr
    assert program_enrollments(db, PROGRAM_A) == []


@pytest.mark.skipif(not os.path.exists(FULL), reason="needs /dev/full")
def test_enroll_report_is_printed_when_the_failed_list_cannot_be_written(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    proc = enroll(db, db_dsn, tmp_path, FULL)
    requests = tmp_path / "enroll.csv"
    assert proc.returncode == 2, proc
    assert "enrolled: 1" in proc.stdout
    assert "line 2: bea,bogus: invalid-status" in proc.stdout
    assert f"could not write the failed lines to {FULL}" in proc.stderr
    assert program_enrollments(db, PROGRAM_A) == [("ann", None, CURRICULUM_A, "enrolled")]

    proc = enrolldb_cli(
        "enroll",
        str(PROGRAM_A),
        str(requests),
        "--create",
        "--update",
        "--failed-csv",
        FULL,
        "--format",
        "json",
        dsn=db_dsn,
    )
    assert proc.returncode == 2, proc
    document = json.loads(proc.stdout)
    assert document["failures"] == [
        {"line": 2, "external_user_key": "bea", "outcome": "invalid-status"}
    ]
    assert document["failed_csv_error"].startswith(f"could not write the failed lines to {FULL}")
