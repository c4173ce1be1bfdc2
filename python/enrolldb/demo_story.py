"""The story `enrolldb demo` tells: the two-program learner of docs/reference.md, What it is, end to
end.

Why a story rather than a feature tour: the one thing a new user must see is the defect this
project exists for, made impossible. Everything runs through the public API as the
application role would (the LMS catalog rows are inserted directly, as the LMS owns them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from rich.console import Console
from rich.table import Table

from enrolldb.integrity import check_integrity
from enrolldb.linking import link, matriculate_learner
from enrolldb.registrar import write_program_course_enrollments, write_program_enrollments

ORG = "GTx"
PROGRAM_A = UUID("a0000000-0000-4000-8000-00000000000a")  # Cybersecurity
PROGRAM_B = UUID("b0000000-0000-4000-8000-00000000000b")  # Analytics
CURRICULUM_A = UUID("a0000000-0000-4000-8000-0000000000c1")
CURRICULUM_B = UUID("b0000000-0000-4000-8000-0000000000c1")
SHARED_COURSE = "course-v1:GTx+CS6035+2026_T1"
LEARNER_KEY = "GT-900100"

Say = Callable[[str], None]


def _table(
    console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)


def _state(conn: psycopg.Connection[Any], console: Console, title: str) -> None:
    rows = conn.execute(
        """
        SELECT p.title, pe.external_user_key, pe.status, u.username, pce.course_key,
               pce.status, pce.course_enrollment_id,
               CASE WHEN ce.id IS NULL THEN NULL
                    ELSE ce.mode || CASE WHEN ce.is_active THEN ', active' ELSE ', inactive' END
               END
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        JOIN enrolldb.program_enrollments_programenrollment AS pe
            ON pe.id = pce.program_enrollment_id
        JOIN enrolldb.program_enrollments_program AS p ON p.program_uuid = pe.program_uuid
        LEFT JOIN enrolldb.auth_user AS u ON u.id = pe.user_id
        LEFT JOIN enrolldb.student_courseenrollment AS ce ON ce.id = pce.course_enrollment_id
        WHERE lower(pe.external_user_key) = lower(%s)
        ORDER BY p.title
        """,
        (LEARNER_KEY,),
    ).fetchall()
    _table(
        console,
        title,
        [
            "program",
            "key",
            "program status",
            "user",
            "course",
            "course row",
            "course enr.",
            "course enrollment",
        ],
        rows,
    )


def run_story(conn: psycopg.Connection[Any], console: Console) -> None:
    """Replay docs/reference.md, What it is on a migrated scratch database (``conn`` is
    autocommit)."""
    say: Say = console.print
    say("\n[bold]1. The catalog[/]: two programs of one university share a course.")
    conn.execute(
        "INSERT INTO enrolldb.course_overviews_courseoverview (id, org, display_name) VALUES"
        " (%s, 'GTx', 'Introduction to Information Security'),"
        " ('course-v1:GTx+CSE6040+2026_T1', 'GTx', 'Computing for Data Analysis')",
        (SHARED_COURSE,),
    )
    conn.execute(
        "INSERT INTO enrolldb.program_enrollments_program"
        " (program_uuid, authoring_organization_key, title) VALUES"
        " (%s, %s, 'A: Cybersecurity'), (%s, %s, 'B: Analytics')",
        (PROGRAM_A, ORG, PROGRAM_B, ORG),
    )
    app = _as_app_role(conn)

    say(
        f"\n[bold]2. The registrar[/] enrolls learner {LEARNER_KEY} into program A and its "
        f"course {SHARED_COURSE}, before the learner has an LMS account."
    )
    say(
        str(
            write_program_enrollments(
                conn,
                PROGRAM_A,
                [
                    {
                        "external_user_key": LEARNER_KEY,
                        "status": "enrolled",
                        "curriculum_uuid": str(CURRICULUM_A),
                    }
                ],
                create=True,
                update=False,
            )
        )
    )
    say(
        str(
            write_program_course_enrollments(
                conn,
                PROGRAM_A,
                SHARED_COURSE,
                [{"external_user_key": LEARNER_KEY, "status": "active", "course_staff": None}],
                create=True,
                update=False,
            )
        )
    )

    say(
        "\n[bold]3. The learner transfers to program B[/]: canceled out of A (A's course row "
        "made inactive), enrolled into B and B's same course (active)."
    )
    say(
        str(
            write_program_enrollments(
                conn,
                PROGRAM_A,
                [{"external_user_key": LEARNER_KEY, "status": "canceled"}],
                create=False,
                update=True,
            )
        )
    )
    say(
        str(
            write_program_course_enrollments(
                conn,
                PROGRAM_A,
                SHARED_COURSE,
                [{"external_user_key": LEARNER_KEY, "status": "inactive", "course_staff": None}],
                create=False,
                update=True,
            )
        )
    )
    say(
        str(
            write_program_enrollments(
                conn,
                PROGRAM_B,
                [
                    {
                        "external_user_key": LEARNER_KEY.lower(),
                        "status": "enrolled",
                        "curriculum_uuid": str(CURRICULUM_B),
                    }
                ],
                create=True,
                update=False,
            )
        )
    )
    say(
        str(
            write_program_course_enrollments(
                conn,
                PROGRAM_B,
                SHARED_COURSE,
                [{"external_user_key": LEARNER_KEY, "status": "active", "course_staff": None}],
                create=True,
                update=False,
            )
        )
    )
    _state(conn, console, "Waiting enrollments: A's course row inactive, B's active")

    say(
        "\n[bold]4. First SSO sign-in[/]: the LMS account 'ada' signs in through GTx's SAML "
        "with key gt-900100. Django's link revived A's inactive row onto the shared course "
        "enrollment (IntegrityError, sign-in failed silently) or, in its newest version, "
        "deactivated it when A was processed last."
    )
    _reset(conn, app)
    ada = conn.execute(
        "INSERT INTO enrolldb.auth_user (username, email) VALUES ('ada', 'ada@example.edu')"
        " RETURNING id"
    ).fetchone()
    assert ada is not None
    _as_app_role(conn)
    results = matriculate_learner(conn, int(ada[0]), ORG, "gt-900100")
    _table(
        console,
        "matriculate_learner",
        ["program enrollment", "program", "error"],
        [(r.program_enrollment_id, r.program_uuid, r.error or "-") for r in results],
    )
    _state(conn, console, "Linked: one course enrollment, active in masters; A still inactive")

    say("\n[bold]5. The schema itself refuses[/] a second active row on that course enrollment:")
    _reset(conn, app)
    try:
        with conn.transaction():
            conn.execute(
                "UPDATE enrolldb.program_enrollments_programcourseenrollment SET status = 'active'"
                " WHERE status = 'inactive'"
            )
    except psycopg.errors.UniqueViolation as exc:
        say(f"  refused: {exc.diag.message_primary}")
    _as_app_role(conn)

    say("\n[bold]6. Support staff bulk-link[/] program B's other learners from a CSV:")
    _reset(conn, app)
    conn.execute(
        "INSERT INTO enrolldb.auth_user (username) VALUES ('grace'), ('alan'), ('barbara')"
    )
    _as_app_role(conn)
    write_program_enrollments(
        conn,
        PROGRAM_B,
        [
            {"external_user_key": key, "status": "enrolled", "curriculum_uuid": str(CURRICULUM_B)}
            for key in ("GT-900200", "GT-900300", "GT-900400")
        ],
        create=True,
        update=False,
    )
    pairs = [
        ("GT-900200", "grace"),
        ("GT-900300", "alan"),
        ("GT-900400", "nobody"),
        ("GT-999999", "barbara"),
        ("gt-900200 ", "barbara"),
    ]
    _table(
        console,
        "link (array form)",
        ["key", "username", "result", "error"],
        [
            (r.external_user_key, r.username, r.result, r.error or "-")
            for r in link(conn, PROGRAM_B, pairs)
        ],
    )

    violations = check_integrity(conn)
    say(
        "\n[bold]7. check_integrity()[/]: "
        + ("no violations: healthy." if not violations else f"{len(violations)} violations!")
    )
    _reset(conn, app)


def _as_app_role(conn: psycopg.Connection[Any]) -> bool:
    """Act as ``enrolldb_app`` when the connecting user may; the story then proves that the
    application role needs nothing but the API functions."""
    try:
        conn.execute("SET ROLE enrolldb_app")
    except psycopg.Error:
        return False
    return True


def _reset(conn: psycopg.Connection[Any], was_app: bool) -> None:
    if was_app:
        conn.execute("RESET ROLE")
