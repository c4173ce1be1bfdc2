"""``enrolldb link`` run as a subprocess against a real database.

Why subprocesses: support staff run the console script, and what they rely on is the whole
of it: exit codes, the line-numbered refusals on stderr, the summary on stdout, nothing on
stderr when piped, commits per chunk. Only a real process shows all of that.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builders import LINK_COURSE as COURSE
from builders import LINK_PROGRAM as PROGRAM
from builders import link_tables_snapshot as snapshot
from builders import links, write_csv
from builders import seed_link_learners as seed
from pgtypes import Conn

REPO = Path(__file__).resolve().parents[1]

UNKNOWN_PROGRAM = "99999999-9999-4999-8999-999999999999"


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO / "python"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("COLUMNS", None)
    return env


def enrolldb(
    db_dsn: str, *args: str, stdin: str | bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m enrolldb --dsn db_dsn args...``; stdout and stderr captured (piped)."""
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "enrolldb", "--dsn", db_dsn, *args],
        input=data,
        stdin=subprocess.DEVNULL if data is None else None,
        capture_output=True,
        env=cli_env(),
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8"),
        proc.stderr.decode("utf-8"),
    )


# Exit 0 ------------------------------------------------------------------------------------


def test_csv_with_header_comments_blank_lines_crlf_and_bom_links_all(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 3)
    csv_file = write_csv(
        tmp_path,
        "\ufeffexternal_user_key,lms_username\r\n"
        "# registrar export, spring term\r\n"
        "\r\n"
        "key1,user1\r\n"
        "  # indented comment\n"
        "KEY2,user2\n"  # keys compare case-insensitively
        '"key3",user3',  # quoted field, no final newline
    )
    proc = enrolldb(db_dsn, "link", PROGRAM, csv_file)
    assert proc.returncode == 0, proc
    assert "linked:         3" in proc.stdout
    assert "relinked:       0" in proc.stdout
    assert "failed:         0" in proc.stdout
    assert proc.stderr == "", "no progress bar and no noise on stderr when piped"
    assert links(db) == {"key1": "user1", "key2": "user2", "key3": "user3"}
    enrollments = db.execute(
        "SELECT count(*) FROM enrolldb.student_courseenrollment"
        " WHERE course_id = %s AND is_active AND mode = 'masters'",
        (COURSE,),
    ).fetchone()
    assert enrollments == (3,)


def test_pair_arguments_link(db: Conn, db_dsn: str) -> None:
    seed(db, 2)
    proc = enrolldb(db_dsn, "link", PROGRAM, "--pair", "key1:user1", "--pair", "key2:user2")
    assert proc.returncode == 0, proc
    assert "linked:         2" in proc.stdout
    assert links(db) == {"key1": "user1", "key2": "user2"}


def test_stdin_input(db: Conn, db_dsn: str) -> None:
    seed(db, 2)
    proc = enrolldb(db_dsn, "link", PROGRAM, "-", stdin="key1,user1\nkey2,user2\n")
    assert proc.returncode == 0, proc
    assert "2 of 2 pairs from stdin" in proc.stdout
    assert links(db) == {"key1": "user1", "key2": "user2"}


def test_relink_is_counted_as_relinked(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    seed(db, 2)
    db.execute(
        "SELECT FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['key1'], ARRAY['user1'])",
        (PROGRAM,),
    )
    proc = enrolldb(db_dsn, "link", PROGRAM, write_csv(tmp_path, "key1,user2\nkey2,user1\n"))
    # user1 already holds key1's enrollment in this curriculum, key1 moves to user2 in the
    # same call: both succeed (the database plans the call as a whole).
    assert proc.returncode == 0, proc
    assert "linked:         1" in proc.stdout
    assert "relinked:       1" in proc.stdout
    assert links(db) == {"key1": "user2", "key2": "user1"}


# Exit 1 ------------------------------------------------------------------------------------


def test_failures_are_listed_with_line_numbers_and_exit_1(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 3)
    csv_file = write_csv(
        tmp_path,
        "external_user_key,lms_username\nkey1,user1\nkey2,nobody\nkey9,user3\n",
    )
    proc = enrolldb(db_dsn, "link", PROGRAM, csv_file)
    assert proc.returncode == 1, proc
    assert "linked:         1" in proc.stdout
    assert "failed:         2" in proc.stdout
    assert "line 3: key2,nobody: No user found with username nobody" in proc.stdout
    assert (
        f"line 4: key9,user3: No program enrollment found for program uuid={PROGRAM} "
        "and external student key=key9"
    ) in proc.stdout
    assert links(db)["key1"] == "user1"
    assert links(db)["key2"] is None


def test_key_with_comma_is_quoted_in_failure_list(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    # Printed CSV-quoted, so a failure list can be fixed and fed back to `enrolldb link`.
    seed(db, 1)
    proc = enrolldb(db_dsn, "link", PROGRAM, write_csv(tmp_path, '"a,b",user1\n'))
    assert proc.returncode == 1, proc
    assert 'line 1: "a,b",user1: No program enrollment found' in proc.stdout


def test_keys_are_sent_as_written_and_reported_by_the_database(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 2)
    # Surrounding spaces are canonicalised away by the database; a key of 256 characters is
    # reported per learner, with the caller's spelling.
    long_key = "k" * 256
    proc = enrolldb(
        db_dsn, "link", PROGRAM, write_csv(tmp_path, f" key1 ,user1\n{long_key},user2\n")
    )
    assert proc.returncode == 1, proc
    assert f"line 2: {long_key},user2: Invalid external user key {long_key}" in proc.stdout
    assert links(db)["key1"] == "user1"


def test_duplicate_keys_are_reported_by_the_database(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    seed(db, 2)
    proc = enrolldb(
        db_dsn,
        "link",
        PROGRAM,
        "--chunk-size",
        "1",
        write_csv(tmp_path, "key1,user1\nkey2,user2\nKEY1,user2\n"),
    )
    assert proc.returncode == 1, proc
    assert "line 1: key1,user1: external user key key1 provided multiple times" in proc.stdout
    assert "line 3: KEY1,user2: external user key KEY1 provided multiple times" in proc.stdout
    assert links(db) == {"key1": None, "key2": "user2"}


# Exit 2: refused before the database is touched ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("key1,user1\nkey2\n", "line 2: expected 2 fields 'external_user_key,lms_username', got 1"),
        ("# c\nkey1,user1,extra\n", "line 2: expected 2 fields"),
        ("key1,\n", "line 1: empty lms_username"),
        (",user1\n", "line 1: empty external_user_key"),
        ('key1,user1\n"key2,user2\n', "line 2: malformed CSV"),
        (b"key1,user1\n\xff\xfe,user2\n", "line 2: not valid UTF-8"),
        ("# nothing but comments\n\n", "no pairs to link in"),
    ],
)
def test_malformed_input_is_refused_with_its_line_number(
    db: Conn, db_dsn: str, tmp_path: Path, content: str | bytes, expected: str
) -> None:
    seed(db, 2)
    before = snapshot(db)
    proc = enrolldb(db_dsn, "link", PROGRAM, write_csv(tmp_path, content))
    assert proc.returncode == 2, proc
    assert expected in proc.stderr
    assert "nothing was linked" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert snapshot(db) == before


def test_every_malformed_line_is_reported(db_dsn: str, tmp_path: Path) -> None:
    proc = enrolldb(db_dsn, "link", PROGRAM, write_csv(tmp_path, "a\nb,c\nd,e,f\n,\n"))
    assert proc.returncode == 2, proc
    assert "line 1: expected 2 fields" in proc.stderr
    assert "line 3: expected 2 fields" in proc.stderr
    assert "line 4: empty external_user_key" in proc.stderr
    assert "line 2" not in proc.stderr


@pytest.mark.parametrize("key", [" ", "\t", "\u00a0", "\u200b", "\x1f"])
def test_a_key_of_blanks_is_the_databases_to_judge(
    db: Conn, db_dsn: str, tmp_path: Path, key: str
) -> None:
    """Only a field with no character is refused before the run. Whether blanks or invisible
    characters make a key is canonical_external_key's rule: the line is sent and answered on
    its own (U+001F is not white space there, so it is a key that simply is not enrolled),
    and the other lines are linked."""
    seed(db, 2)
    proc = enrolldb(
        db_dsn,
        "link",
        PROGRAM,
        write_csv(tmp_path, f"key1,user1\n{key},user2\n"),
        "--format",
        "json",
    )
    assert proc.returncode == 1, proc
    report = json.loads(proc.stdout)
    second = report["results"][1]
    assert (second["line"], second["external_user_key"], second["result"]) == (2, key, "failed")
    expected = (
        "No program enrollment found for program" if key == "\x1f" else "Invalid external user key"
    )
    assert expected in second["error"]
    assert links(db) == {"key1": "user1", "key2": None}


def test_bad_program_uuid_is_refused(db_dsn: str, tmp_path: Path) -> None:
    proc = enrolldb(db_dsn, "link", "not-a-uuid", write_csv(tmp_path, "key1,user1\n"))
    assert proc.returncode == 2, proc
    assert "supplied program_uuid 'not-a-uuid' is not a valid UUID" in proc.stderr


def test_malformed_pair_argument_is_refused_with_upstream_text(db: Conn, db_dsn: str) -> None:
    seed(db, 2)
    proc = enrolldb(db_dsn, "link", PROGRAM, "--pair", "key1:user1", "--pair", "key2:us:er2")
    assert proc.returncode == 2, proc
    assert (
        "incorrectly formatted argument 'key2:us:er2', "
        "must be in form <external user key>:<lms username>"
    ) in proc.stderr
    assert links(db) == {"key1": None, "key2": None}


def test_file_and_pairs_together_are_refused(db_dsn: str, tmp_path: Path) -> None:
    proc = enrolldb(db_dsn, "link", PROGRAM, write_csv(tmp_path, "a,b\n"), "--pair", "a:b")
    assert proc.returncode == 2, proc
    assert "not both" in proc.stderr


def test_missing_file_is_refused(db_dsn: str, tmp_path: Path) -> None:
    proc = enrolldb(db_dsn, "link", PROGRAM, str(tmp_path / "nope.csv"))
    assert proc.returncode == 2, proc
    assert "cannot read" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_chunk_size_is_a_usage_error(db_dsn: str) -> None:
    proc = enrolldb(db_dsn, "link", PROGRAM, "--pair", "a:b", "--chunk-size", "0")
    assert proc.returncode == 2, proc
    assert "--chunk-size" in proc.stderr


# Exit 2: whole-call errors from the database -------------------------------------------------


def test_unknown_program_is_one_line_without_traceback(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 1)
    proc = enrolldb(db_dsn, "link", UNKNOWN_PROGRAM, write_csv(tmp_path, "key1,user1\n"))
    assert proc.returncode == 2, proc
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"unknown program uuid={UNKNOWN_PROGRAM}" in proc.stderr
    assert "nothing was linked" in proc.stderr
    assert proc.stdout == ""


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    dsn = "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2"
    proc = enrolldb(dsn, "link", PROGRAM, write_csv(tmp_path, "key1,user1\n"))
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


# Chunks ---------------------------------------------------------------------------------------


def test_chunks_are_separate_transactions_and_a_failure_in_one_undoes_no_other(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 5)
    csv_file = write_csv(tmp_path, "key1,user1\nkey2,user2\nkey3,nobody\nkey4,user4\nkey5,user5\n")
    proc = enrolldb(db_dsn, "link", PROGRAM, "--chunk-size", "2", csv_file)
    assert proc.returncode == 1, proc
    assert "3 chunk(s)" in proc.stdout
    assert "linked:         4" in proc.stdout and "failed:         1" in proc.stdout
    assert links(db) == {
        "key1": "user1",
        "key2": "user2",
        "key3": None,
        "key4": "user4",
        "key5": "user5",
    }
    # One committed transaction per chunk: the linked rows were written by three transactions.
    xids = db.execute(
        "SELECT count(DISTINCT xmin::text) FROM enrolldb.program_enrollments_programenrollment"
        " WHERE user_id IS NOT NULL"
    ).fetchone()
    assert xids == (3,)


def test_whole_call_error_in_a_later_chunk_keeps_the_committed_chunks(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 5)
    # Plant a failure that aborts the whole third call (as a lost connection or a statement
    # timeout would): a trigger raising for key5.
    db.execute(
        """
        CREATE FUNCTION public.fail_key5() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.external_user_key = 'key5' THEN
                RAISE EXCEPTION 'planted failure for key5';
            END IF;
            RETURN NEW;
        END;
        $$;
        CREATE TRIGGER fail_key5 BEFORE UPDATE ON enrolldb.program_enrollments_programenrollment
        FOR EACH ROW EXECUTE FUNCTION public.fail_key5();
        """
    )
    csv_file = write_csv(tmp_path, "key1,user1\nkey2,user2\nkey3,user3\nkey4,user4\nkey5,user5\n")
    proc = enrolldb(db_dsn, "link", PROGRAM, "--chunk-size", "2", csv_file)
    assert proc.returncode == 2, proc
    assert "planted failure for key5" in proc.stderr
    assert "stopped after 2 chunk(s): 4 of 5 pairs done and committed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "linked:         4" in proc.stdout
    assert links(db) == {
        "key1": "user1",
        "key2": "user2",
        "key3": "user3",
        "key4": "user4",
        "key5": None,
    }


# Dry run --------------------------------------------------------------------------------------


def test_dry_run_changes_no_row(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    seed(db, 5)
    db.execute(
        "SELECT FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['key1'], ARRAY['user1'])",
        (PROGRAM,),
    )
    before = snapshot(db)
    csv_file = write_csv(tmp_path, "key1,user2\nkey2,user1\nkey3,nobody\nkey4,user4\nkey5,user5\n")
    proc = enrolldb(db_dsn, "link", PROGRAM, "--dry-run", "--chunk-size", "2", csv_file)
    assert proc.returncode == 1, proc
    assert proc.stdout.startswith("DRY RUN: every change was rolled back; nothing was committed.")
    assert proc.stdout.rstrip().endswith("nothing was committed.")
    assert "linked:         3" in proc.stdout
    assert "relinked:       1" in proc.stdout
    assert "failed:         1" in proc.stdout
    assert snapshot(db) == before


def test_dry_run_chunks_see_earlier_chunks(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    """A dry run answers what the real run would: the second chunk links user1, which only
    works once the first chunk has taken key1 away from user1 (same program and curriculum)."""
    seed(db, 2)
    db.execute(
        "SELECT FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['key1'], ARRAY['user1'])",
        (PROGRAM,),
    )
    before = snapshot(db)
    csv_file = write_csv(tmp_path, "key1,user2\nkey2,user1\n")
    dry = enrolldb(db_dsn, "link", PROGRAM, "--dry-run", "--chunk-size", "1", csv_file)
    assert dry.returncode == 0, dry
    assert "relinked:       1" in dry.stdout
    assert "linked:         1" in dry.stdout
    assert "failed:         0" in dry.stdout
    assert snapshot(db) == before

    real = enrolldb(db_dsn, "link", PROGRAM, "--chunk-size", "1", csv_file)
    assert real.returncode == 0, real
    assert links(db) == {"key1": "user2", "key2": "user1"}


def test_dry_run_json(db: Conn, db_dsn: str) -> None:
    seed(db, 1)
    before = snapshot(db)
    proc = enrolldb(
        db_dsn, "link", PROGRAM, "--dry-run", "--format", "json", "--pair", "key1:user1"
    )
    assert proc.returncode == 0, proc
    document = json.loads(proc.stdout)
    assert document["dry_run"] is True
    assert document["linked"] == 1
    assert snapshot(db) == before


# JSON -----------------------------------------------------------------------------------------


def test_json_output(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    seed(db, 3)
    db.execute(
        "SELECT FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['key3'], ARRAY['user2'])",
        (PROGRAM,),
    )
    csv_file = write_csv(tmp_path, "# header-less\nkey1,user1\nkey2,nobody\nkey3,user3\n")
    proc = enrolldb(db_dsn, "link", PROGRAM, "--format", "json", "--chunk-size", "2", csv_file)
    assert proc.returncode == 1, proc
    document = json.loads(proc.stdout)
    assert {k: document[k] for k in ("linked", "relinked", "failed")} == {
        "linked": 1,
        "relinked": 1,
        "failed": 1,
    }
    assert document["program_uuid"] == PROGRAM
    assert document["dry_run"] is False
    assert document["results"] == [
        {
            "line": 2,
            "external_user_key": "key1",
            "username": "user1",
            "result": "linked",
            "error": None,
        },
        {
            "line": 3,
            "external_user_key": "key2",
            "username": "nobody",
            "result": "failed",
            "error": "No user found with username nobody",
        },
        {
            "line": 4,
            "external_user_key": "key3",
            "username": "user3",
            "result": "relinked",
            "error": None,
        },
    ]


# Progress bar ---------------------------------------------------------------------------------


def test_progress_bar_on_a_terminal(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    seed(db, 4)
    csv_file = write_csv(tmp_path, "key1,user1\nkey2,user2\nkey3,user3\nkey4,user4\n")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "enrolldb",
            "--dsn",
            db_dsn,
            "link",
            PROGRAM,
            csv_file,
            "--chunk-size",
            "2",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**cli_env(), "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    stdout = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, (stdout, seen)
    assert b"linking" in seen and b"4/4" in seen, seen
    assert "linked:         4" in stdout


# Scale ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fifty_thousand_lines(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    n = 50_000
    seed(db, n)
    lines = ["external_user_key,lms_username"]
    lines += [f"key{i},user{i}" for i in range(1, n + 1)]
    lines.append("key-missing,user1")
    csv_file = write_csv(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    proc = enrolldb(db_dsn, "link", PROGRAM, "--format", "json", csv_file, timeout=900)
    elapsed = time.monotonic() - started
    print(f"\nlinked {n} learners in {elapsed:.1f} s ({elapsed / n * 1000:.3f} ms per learner)")
    assert proc.returncode == 1, proc.stderr
    document = json.loads(proc.stdout)
    assert (document["linked"], document["relinked"], document["failed"]) == (n, 0, 1)
    assert document["results"][-1]["line"] == n + 2
    assert document["results"][-1]["error"].startswith("No program enrollment found")
    counts = db.execute(
        "SELECT"
        " (SELECT count(*) FROM enrolldb.program_enrollments_programenrollment"
        "   AS pe JOIN enrolldb.auth_user AS u ON u.id = pe.user_id"
        "   WHERE pe.external_user_key = 'key' || substr(u.username, 5)),"
        " (SELECT count(*) FROM enrolldb.student_courseenrollment WHERE is_active),"
        " (SELECT count(DISTINCT xmin::text) FROM enrolldb.program_enrollments_programenrollment)"
    ).fetchone()
    assert counts == (n, n, 5), "every learner linked to its own user, in 5 committed chunks"


# Headers, failure lists and re-runs -----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["key,username", "lms_username,external_user_key", "Username,Key"],
)
def test_a_header_that_is_not_the_expected_one_is_refused(
    db: Conn, db_dsn: str, tmp_path: Path, header: str
) -> None:
    seed(db, 1)
    before = snapshot(db)
    proc = enrolldb(db_dsn, "link", PROGRAM, write_csv(tmp_path, f"{header}\nkey1,user1\n"))
    assert proc.returncode == 2, proc
    assert "line 1: a header line that is not the expected one" in proc.stderr
    assert "expected 'external_user_key,lms_username' (or no header;" in proc.stderr
    assert snapshot(db) == before


def test_the_expected_header_in_any_case_is_skipped(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    seed(db, 1)
    csv_file = write_csv(tmp_path, " External User Key , LMS-Username \nkey1,user1\n")
    proc = enrolldb(db_dsn, "link", PROGRAM, csv_file)
    assert proc.returncode == 0, proc
    assert links(db) == {"key1": "user1"}


def test_rerunning_an_applied_file_reports_already_linked_and_exits_0(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 3)
    csv_file = write_csv(tmp_path, "key1,user1\nkey2,user2\nKEY3,user3\n")
    first = enrolldb(db_dsn, "link", PROGRAM, "--chunk-size", "2", csv_file)
    assert first.returncode == 0, first
    again = enrolldb(db_dsn, "link", PROGRAM, "--chunk-size", "2", csv_file)
    assert again.returncode == 0, again
    assert "already linked: 3" in again.stdout
    assert "failed:         0" in again.stdout
    assert "failures:" not in again.stdout
    document = json.loads(enrolldb(db_dsn, "link", PROGRAM, "--format", "json", csv_file).stdout)
    assert (document["already_linked"], document["failed"]) == (3, 0)
    assert [r["result"] for r in document["results"]] == ["already_linked"] * 3
    assert document["results"][2]["error"] == (
        "Program enrollment with external_student_key=key3 is already linked to target "
        "account username=user3"
    ), "the stored key in the message, the line as written in the results"
    assert document["results"][2]["external_user_key"] == "KEY3"


def test_already_linked_next_to_a_failure_still_exits_1(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 2)
    db.execute(
        "SELECT FROM enrolldb.link_program_enrollments(%s::uuid, ARRAY['key1'], ARRAY['user1'])",
        (PROGRAM,),
    )
    proc = enrolldb(db_dsn, "link", PROGRAM, write_csv(tmp_path, "key1,user1\nkey2,nobody\n"))
    assert proc.returncode == 1, proc
    assert "already linked: 1" in proc.stdout and "failed:         1" in proc.stdout
    assert "line 2: key2,nobody: No user found with username nobody" in proc.stdout
    assert "line 1" not in proc.stdout


def test_failure_list_reads_back_as_the_same_pairs(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    """A key starting with '#' is quoted (else it would read as a comment), one with a comma
    or a quote is quoted as CSV does; --failed-csv writes them as a file to feed back."""
    seed(db, 1)
    failed_csv = tmp_path / "failed.csv"
    csv_file = write_csv(tmp_path, '"#1",user1\n" #2",user1\n"a,""b",user1\nkey1,user1\n')
    proc = enrolldb(db_dsn, "link", PROGRAM, csv_file, "--failed-csv", str(failed_csv))
    assert proc.returncode == 1, proc
    assert 'line 1: "#1",user1: No program enrollment found' in proc.stdout
    assert 'line 2: " #2",user1: No program enrollment found' in proc.stdout
    assert 'line 3: "a,""b",user1: No program enrollment found' in proc.stdout
    assert failed_csv.read_text(encoding="utf-8") == (
        'external_user_key,lms_username\n"#1",user1\n" #2",user1\n"a,""b",user1\n'
    )
    again = enrolldb(db_dsn, "link", PROGRAM, "--format", "json", str(failed_csv))
    assert again.returncode == 1, again
    keys = [r["external_user_key"] for r in json.loads(again.stdout)["results"]]
    assert keys == ["#1", " #2", 'a,"b']


# JSON on stdout for refused runs --------------------------------------------------------------


def test_refused_runs_print_a_json_error_object(db: Conn, db_dsn: str, tmp_path: Path) -> None:
    seed(db, 1)
    bad = enrolldb(db_dsn, "link", PROGRAM, "--format", "json", write_csv(tmp_path, "key1\n"))
    assert bad.returncode == 2, bad
    document = json.loads(bad.stdout)
    assert document["complete"] is False
    assert document["error"].startswith("line 1: expected 2 fields")
    assert document["program_uuid"] == PROGRAM

    unknown = enrolldb(
        db_dsn, "link", UNKNOWN_PROGRAM, "--format", "json", write_csv(tmp_path, "key1,user1\n")
    )
    assert unknown.returncode == 2, unknown
    document = json.loads(unknown.stdout)
    assert f"unknown program uuid={UNKNOWN_PROGRAM}" in document["error"]
    assert document["results"] == [] and document["complete"] is False

    dsn = "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2"
    down = enrolldb(dsn, "link", PROGRAM, "--format", "json", write_csv(tmp_path, "key1,user1\n"))
    assert down.returncode == 2, down
    assert "cannot connect" in json.loads(down.stdout)["error"]

    missing = enrolldb(db_dsn, "link", PROGRAM, "--format", "json", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2, missing
    assert "cannot read" in json.loads(missing.stdout)["error"]


def test_a_refused_input_never_connects(tmp_path: Path) -> None:
    dsn = "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2"
    proc = enrolldb(dsn, "link", PROGRAM, write_csv(tmp_path, "key1,user1\nkey2\n"))
    assert proc.returncode == 2, proc
    assert "line 2: expected 2 fields" in proc.stderr
    assert "cannot connect" not in proc.stderr


def test_dsn_after_the_command_and_options_between_arguments(
    db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    seed(db, 1)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "enrolldb",
            "link",
            PROGRAM,
            "--dry-run",
            write_csv(tmp_path, "key1,user1\n"),
            "--dsn",
            db_dsn,
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc
    assert "linked:         1" in proc.stdout and "DRY RUN" in proc.stdout
    assert links(db) == {"key1": None}


def test_stdin_is_read_twice_through_a_temporary_copy(db: Conn, db_dsn: str) -> None:
    seed(db, 5)
    proc = enrolldb(
        db_dsn,
        "link",
        PROGRAM,
        "-",
        "--chunk-size",
        "2",
        stdin="key1,user1\nkey2,user2\nkey3,user3\nKEY1,user4\nkey5,user5\n",
    )
    assert proc.returncode == 1, proc
    assert "3 chunk(s)" in proc.stdout  # key2,key3 | key1,KEY1 (with line 4) | key5
    assert "line 1: key1,user1: external user key key1 provided multiple times" in proc.stdout
    assert "line 4: KEY1,user4: external user key KEY1 provided multiple times" in proc.stdout
    assert links(db) == {
        "key1": None,
        "key2": "user2",
        "key3": "user3",
        "key4": None,
        "key5": "user5",
    }
