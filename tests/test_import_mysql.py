"""The documented MySQL/MariaDB export (docs/operators.md, "Adopting an existing deployment")
runs as written and gives the rows the documented PostgreSQL export gives.

The Django tables are created in a scratch MariaDB database the way Django lays them out on
MySQL (``char(32)`` UUIDs, ``tinyint(1)`` booleans, ``datetime(6)`` in UTC, the unique keys;
the external key column case-sensitive, as it must be for the keys differing only in case
to exist), a demo export with every defect kind is loaded into them, and the documented
``mysql`` block writes the files ``enrolldb import`` reads. The PostgreSQL side: the demo
export imported directly, then exported with the documented ``psql`` block and imported
again (the round trip). Both imports must give the same rows and the same summary.

MariaDB: ``ENROLLDB_TEST_MARIADB`` (client options; default ``--host=127.0.0.1 --port=3306
--user=root``). The test skips when MariaDB is unreachable, unless ``CI`` is set: in CI an
unreachable MariaDB fails it, so it cannot silently stop running.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from cli_run import enrolldb_cli
from docblocks import REPO, blocks
from enrolldb.demo_export import COLUMNS, write_export
from enrolldb.dsn import scratch_database
from enrolldb.migrate import migrate

MARIADB_OPTIONS = shlex.split(
    os.environ.get("ENROLLDB_TEST_MARIADB", "--host=127.0.0.1 --port=3306 --user=root")
)
MYSQL_BLOCK = "# on a host that reaches the Django database; DJANGO_MYSQL holds"
POSTGRESQL_BLOCK = "# on the Django database; DJANGO_DATABASE_URL is its connection string"

#: The Django tables as Django creates them on MySQL (the columns enrolldb reads, plus
#: ``password``, which the export must leave out), parents first.
DJANGO_TABLES = """
CREATE TABLE auth_user (
    id int AUTO_INCREMENT PRIMARY KEY, password varchar(128) NOT NULL DEFAULT '!',
    username varchar(150) NOT NULL UNIQUE, email varchar(254) NOT NULL,
    is_active tinyint(1) NOT NULL, date_joined datetime(6) NOT NULL
);
CREATE TABLE course_overviews_courseoverview (
    id varchar(255) PRIMARY KEY, org longtext NOT NULL, display_name longtext NULL
);
CREATE TABLE course_modes_coursemode (
    id int AUTO_INCREMENT PRIMARY KEY, course_id varchar(255) NOT NULL,
    mode_slug varchar(100) NOT NULL, mode_display_name varchar(255) NOT NULL,
    min_price int NOT NULL DEFAULT 0, currency varchar(8) NOT NULL DEFAULT 'usd',
    expiration_datetime datetime(6) NULL, UNIQUE (course_id, mode_slug, currency),
    FOREIGN KEY (course_id) REFERENCES course_overviews_courseoverview (id)
);
CREATE TABLE student_courseenrollment (
    id int AUTO_INCREMENT PRIMARY KEY, user_id int NOT NULL, course_id varchar(255) NOT NULL,
    created datetime(6) NULL, is_active tinyint(1) NOT NULL, mode varchar(100) NOT NULL,
    UNIQUE (user_id, course_id), FOREIGN KEY (user_id) REFERENCES auth_user (id),
    FOREIGN KEY (course_id) REFERENCES course_overviews_courseoverview (id)
);
CREATE TABLE student_courseaccessrole (
    id int AUTO_INCREMENT PRIMARY KEY, user_id int NOT NULL, org varchar(64) NOT NULL,
    course_id varchar(255) NOT NULL, role varchar(64) NOT NULL,
    UNIQUE (user_id, org, course_id, role), FOREIGN KEY (user_id) REFERENCES auth_user (id)
);
CREATE TABLE program_enrollments_program (
    program_uuid char(32) PRIMARY KEY, authoring_organization_key varchar(255) NOT NULL,
    title varchar(255) NOT NULL
);
CREATE TABLE program_enrollments_programenrollment (
    id int AUTO_INCREMENT PRIMARY KEY, created datetime(6) NOT NULL,
    modified datetime(6) NOT NULL, user_id int NULL,
    external_user_key varchar(255) COLLATE utf8mb4_bin NULL, program_uuid char(32) NOT NULL,
    curriculum_uuid char(32) NULL, status varchar(9) NOT NULL,
    UNIQUE (user_id, program_uuid, curriculum_uuid),
    UNIQUE (external_user_key, program_uuid, curriculum_uuid),
    FOREIGN KEY (user_id) REFERENCES auth_user (id)
);
CREATE TABLE program_enrollments_programcourseenrollment (
    id int AUTO_INCREMENT PRIMARY KEY, created datetime(6) NOT NULL,
    modified datetime(6) NOT NULL, program_enrollment_id int NOT NULL,
    course_enrollment_id int NULL, course_key varchar(255) NOT NULL,
    status varchar(9) NOT NULL, UNIQUE (program_enrollment_id, course_key),
    FOREIGN KEY (program_enrollment_id) REFERENCES program_enrollments_programenrollment (id),
    FOREIGN KEY (course_enrollment_id) REFERENCES student_courseenrollment (id)
);
CREATE TABLE program_enrollments_courseaccessroleassignment (
    id int AUTO_INCREMENT PRIMARY KEY, created datetime(6) NOT NULL,
    modified datetime(6) NOT NULL, role varchar(64) NOT NULL, enrollment_id int NOT NULL,
    UNIQUE (role, enrollment_id),
    FOREIGN KEY (enrollment_id) REFERENCES program_enrollments_programcourseenrollment (id)
);
CREATE TABLE program_enrollments_learneridentity (
    id int AUTO_INCREMENT PRIMARY KEY, organization_key varchar(255) NOT NULL,
    external_user_key varchar(255) COLLATE utf8mb4_bin NOT NULL, user_id int NOT NULL,
    created datetime(6) NOT NULL, modified datetime(6) NOT NULL,
    FOREIGN KEY (user_id) REFERENCES auth_user (id)
);
CREATE TABLE program_enrollments_historicalprogramenrollment (
    id int NOT NULL, created datetime(6) NOT NULL, modified datetime(6) NOT NULL,
    user_id int NULL, external_user_key varchar(255) NULL, program_uuid char(32) NOT NULL,
    curriculum_uuid char(32) NULL, status varchar(9) NOT NULL,
    history_id int AUTO_INCREMENT PRIMARY KEY, history_date datetime(6) NOT NULL,
    history_change_reason varchar(100) NULL, history_type varchar(1) NOT NULL,
    history_user_id int NULL
);
CREATE TABLE program_enrollments_historicalprogramcourseenrollment (
    id int NOT NULL, created datetime(6) NOT NULL, modified datetime(6) NOT NULL,
    program_enrollment_id int NULL, course_enrollment_id int NULL,
    course_key varchar(255) NOT NULL, status varchar(9) NOT NULL,
    history_id int AUTO_INCREMENT PRIMARY KEY, history_date datetime(6) NOT NULL,
    history_change_reason varchar(100) NULL, history_type varchar(1) NOT NULL,
    history_user_id int NULL
);
CREATE TABLE student_courseenrollment_history (
    id int NOT NULL, user_id int NULL, course_id varchar(255) NOT NULL,
    created datetime(6) NULL, is_active tinyint(1) NOT NULL, mode varchar(100) NOT NULL,
    history_id int AUTO_INCREMENT PRIMARY KEY, history_date datetime(6) NOT NULL,
    history_change_reason varchar(100) NULL, history_type varchar(1) NOT NULL,
    history_user_id int NULL
);
"""

BOOLEAN = {"is_active"}
UUID = {"program_uuid", "curriculum_uuid"}
TIMESTAMP = {"date_joined", "created", "modified", "expiration_datetime", "history_date"}


def client() -> str | None:
    return shutil.which("mariadb") or shutil.which("mysql")


def mariadb(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = client()
    assert binary is not None
    return subprocess.run(
        [binary, *MARIADB_OPTIONS, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    """A scratch MariaDB database, dropped afterwards."""
    reason = "no mariadb/mysql client on PATH"
    if client() is not None:
        probe = mariadb("--connect-timeout=5", "-e", "SELECT 1")
        reason = f"MariaDB unreachable ({' '.join(MARIADB_OPTIONS)}): {probe.stderr.strip()}"
        if probe.returncode == 0:
            reason = ""
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so this test must run")
        pytest.skip(reason)
    name = f"enrolldb_test_{os.getpid()}_{secrets.token_hex(3)}"
    created = mariadb("-e", f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        mariadb("-e", f"DROP DATABASE IF EXISTS {name}")


def load_statement(path: Path, table: str) -> str:
    """LOAD DATA of one demo export file: its ``t``/``f``, dashed UUIDs and ``+00`` made
    what Django stores on MySQL; no escape character (a backslash is data), ``\\N`` NULL."""
    columns = list(COLUMNS[table])
    sets = []
    for column in columns:
        value = f"NULLIF(@{column}, '\\\\N')"
        if column in BOOLEAN:
            value = f"{value} = 't'"
        elif column in UUID:
            value = f"REPLACE({value}, '-', '')"
        elif column in TIMESTAMP:
            value = f"REPLACE({value}, '+00', '')"
        sets.append(f"{column} = {value}")
    return (
        f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} CHARACTER SET utf8mb4"
        " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY ''"
        " LINES TERMINATED BY '\\n' IGNORE 1 LINES"
        f" ({', '.join('@' + c for c in columns)}) SET {', '.join(sets)};"
    )


#: Values the documented quoting must carry through: quotes, commas, a newline, a
#: backslash, a tab, non-ASCII, NULL, the text \N (not NULL) and an empty string.
AWKWARD_COURSES = [
    ["course-v1:uni+Q1+2024", "uni", 'Quotes "and", commas,\nnewline \\ back\tslash, ünïcödé'],
    ["course-v1:uni+Q2+2024", "uni", "\\N"],
    ["course-v1:uni+Q3+2024", "uni", ""],
]


def add_awkward_courses(export: Path) -> None:
    with (export / "course_overviews_courseoverview.csv").open("a", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows(c for c in AWKWARD_COURSES if c[2] != "\\N")
        out.write('course-v1:uni+Q2+2024,uni,"\\N"\n')  # quoted: the text, not NULL
        out.write("course-v1:uni+Q4+2024,uni,\\N\n")  # NULL


#: LOAD DATA cannot tell the quoted \N from NULL: the text goes in afterwards.
AWKWARD_UPDATE = (
    "UPDATE course_overviews_courseoverview SET display_name = '\\\\N'"
    " WHERE id = 'course-v1:uni+Q2+2024';"
)


def run_block(first_line: str, directory: Path, env: dict[str, str]) -> None:
    """Run the sh block of docs/operators.md that starts with ``first_line``, as written."""
    (block,) = [
        b
        for b in blocks(REPO / "docs" / "operators.md")
        if b.lang == "sh" and b.first_line.startswith(first_line)
    ]
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.text],
        cwd=directory,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"operators.md:{block.line}\n{proc.stdout}\n{proc.stderr}"


def import_into(dsn: str, export: Path) -> dict[str, Any]:
    run = enrolldb_cli("import", str(export), "--format", "json", dsn=dsn)
    assert run.returncode in (0, 1), run.stderr
    return {t["table"]: t for t in json.loads(run.stdout)["tables"]}


def rows(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(f"SELECT * FROM enrolldb.{table} ORDER BY 1").fetchall()
            for table in COLUMNS
        }


def test_the_documented_mysql_export_gives_the_postgresql_rows(
    mariadb_database: str, db_dsn: str, empty_db_dsn: str, tmp_path: Path
) -> None:
    demo = tmp_path / "demo"
    write_export(demo, 60)
    add_awkward_courses(demo)

    # PostgreSQL: the demo export imported, exported as documented, imported again.
    direct = import_into(db_dsn, demo)
    (tmp_path / "pg").mkdir()
    django_url = make_conninfo(db_dsn, options="-c search_path=enrolldb")
    run_block(POSTGRESQL_BLOCK, tmp_path / "pg", {"DJANGO_DATABASE_URL": django_url})
    migrate(empty_db_dsn)
    round_trip = import_into(empty_db_dsn, tmp_path / "pg" / "django-export")
    assert all(t["changed"] == t["refused"] == 0 for t in round_trip.values())
    expected = rows(db_dsn)
    assert [r for r in expected["course_overviews_courseoverview"] if "+Q" in r[0]] == [
        (*c,) for c in AWKWARD_COURSES
    ] + [("course-v1:uni+Q4+2024", "uni", None)]
    assert rows(empty_db_dsn) == expected

    # MariaDB: the Django tables holding the demo export, exported as documented.
    load = "".join(load_statement(demo / f"{t}.csv", t) for t in COLUMNS)
    loaded = mariadb(
        "--local-infile=1", mariadb_database, stdin=DJANGO_TABLES + load + AWKWARD_UPDATE
    )
    assert loaded.returncode == 0, loaded.stderr
    counts = mariadb(
        "--batch",
        "--skip-column-names",
        mariadb_database,
        "-e",
        " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {t}" for t in COLUMNS),
    )
    in_mariadb = dict(line.split("\t") for line in counts.stdout.splitlines())
    assert {t: int(n) for t, n in in_mariadb.items()} == {t: direct[t]["read"] for t in COLUMNS}
    (tmp_path / "my").mkdir()
    options = " ".join([*MARIADB_OPTIONS, mariadb_database])
    run_block(MYSQL_BLOCK, tmp_path / "my", {"DJANGO_MYSQL": options})
    export = tmp_path / "my" / "django-export"
    assert (
        (export / "auth_user.csv")
        .read_text()
        .startswith("id,username,email,is_active,date_joined\n")
    )

    with scratch_database(db_dsn, "enrolldb_test_mysql") as from_mysql:
        migrate(from_mysql)
        # The same fates row for row as the direct import, and the same rows.
        assert import_into(from_mysql, export) == direct
        assert rows(from_mysql) == expected
