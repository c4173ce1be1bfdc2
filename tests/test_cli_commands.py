"""Every command's parser: ``--dsn`` after the command name, a ``--help`` that says what the
command does and where the server comes from, and ``migrate`` saying only what it did."""

from __future__ import annotations

import subprocess
import sys

import pytest

from enrolldb.cli import build_parser

COMMANDS = (
    "migrate",
    "rollback",
    "status",
    "link",
    "matriculate",
    "enroll",
    "enroll-courses",
    "doctor",
    "import",
    "demo",
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "enrolldb", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_command_is_tested_here() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices) == set(COMMANDS)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_where_and_how_it_ends(command: str) -> None:
    proc = run(command, "--help")
    assert proc.returncode == 0, proc
    text = " ".join(proc.stdout.split())
    assert "--dsn" in text
    assert "DATABASE_URL" in text and "PG*" in text and "127.0.0.1:5432" in text
    assert "Exit codes: 0" in text
    description = text.split("options:")[0]
    assert len(description) > 150, f"{command} --help describes too little: {description}"


@pytest.mark.parametrize("command", COMMANDS)
def test_dsn_is_accepted_after_the_command(command: str) -> None:
    args = build_parser().parse_args([*_required(command), "--dsn", "dbname=after"])
    assert args.dsn == "dbname=after"
    args = build_parser().parse_args(["--dsn", "dbname=before", *_required(command)])
    assert args.dsn == "dbname=before", "a command's --dsn does not hide the global one"


def _required(command: str) -> list[str]:
    return {
        "link": ["link", "11111111-1111-4111-8111-111111111111", "-"],
        "matriculate": ["matriculate", "1", "gtx", "key"],
        "enroll": ["enroll", "11111111-1111-4111-8111-111111111111", "-"],
        "enroll-courses": ["enroll-courses", "11111111-1111-4111-8111-111111111111", "c", "-"],
        "import": ["import", "export-dir"],
    }.get(command, [command])


def test_migrate_with_dsn_after_the_command_prints_only_what_it_did(empty_db_dsn: str) -> None:
    migrated = run("migrate", "--dsn", empty_db_dsn)
    assert migrated.returncode == 0, migrated
    lines = migrated.stdout.splitlines()
    assert lines[0] == "applied 0001_schema"
    assert lines[-1] == "functions re-applied"
    assert all(line.startswith("applied ") for line in lines[:-1]), migrated.stdout
    assert "(1 row)" not in migrated.stdout and "---" not in migrated.stdout

    status = run("status", "--dsn", empty_db_dsn)
    assert status.returncode == 0, status
    assert "functions: up to date" in status.stdout

    rolled_back = run("rollback", "--all", "--dsn", empty_db_dsn)
    assert rolled_back.returncode == 0, rolled_back
    assert all(line.startswith("rolled back ") for line in rolled_back.stdout.splitlines())
