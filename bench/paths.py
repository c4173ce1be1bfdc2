"""The three ways of linking one program that the benchmark compares.

* ``enrolldb``: the client's ``enrolldb.link`` (chunks of 10,000, one committed SQL call each).
* ``upstream``: the Django sequence of ``link_program_enrollments`` re-enacted row by row over
  psycopg (three bulk reads per call, then one transaction per learner: 28 round trips for a
  learner with two course rows and no course enrollment yet, 24 when one of them is an active
  audit enrollment; see :func:`link_upstream` and docs/scaling.md, Measured: the upstream
  re-enactment).
* ``floor``: the fewest set-based statements that write the same final rows, with the same
  triggers, in one transaction: no checks, no locks, no error reporting. Nothing correct can
  be faster; the ratio to it is the price of the rules.

Each returns the number of learners linked. The benchmark checks that all three leave
identical rows (``world.final_state``).
"""

from __future__ import annotations

from typing import Any

import psycopg

import enrolldb

Conn = psycopg.Connection[tuple[Any, ...]]


def link_enrolldb(conn: Conn, program: str, pairs: list[tuple[str, str]]) -> int:
    results = enrolldb.link(conn, program, pairs)
    return sum(1 for r in results if r.result in ("linked", "relinked"))


def link_floor(conn: Conn, program: str, pairs: list[tuple[str, str]]) -> int:
    keys = [k for k, _ in pairs]
    usernames = [u for _, u in pairs]
    with conn.transaction():
        cur = conn.execute(
            "UPDATE enrolldb.program_enrollments_programenrollment AS pe SET user_id = u.id "
            "FROM unnest(%s::text[], %s::text[]) AS i (k, username) "
            "JOIN enrolldb.auth_user AS u ON u.username = i.username "
            "WHERE pe.program_uuid = %s AND lower(pe.external_user_key) = lower(i.k)",
            (keys, usernames, program),
        )
        linked = cur.rowcount
        conn.execute(
            "INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active) "
            "SELECT pe.user_id, pce.course_key, 'masters', bool_or(pce.status = 'active') "
            "FROM enrolldb.program_enrollments_programcourseenrollment AS pce "
            "JOIN enrolldb.program_enrollments_programenrollment AS pe "
            "ON pe.id = pce.program_enrollment_id "
            "WHERE pe.program_uuid = %s AND pe.user_id IS NOT NULL "
            "AND pce.course_enrollment_id IS NULL "
            "GROUP BY pe.user_id, pce.course_key "
            "ON CONFLICT ON CONSTRAINT courseenrollment_user_course_uq DO NOTHING",
            (program,),
        )
        conn.execute(
            "UPDATE enrolldb.student_courseenrollment AS ce SET is_active = true, "
            "mode = 'masters' "
            "FROM enrolldb.program_enrollments_programcourseenrollment AS pce "
            "JOIN enrolldb.program_enrollments_programenrollment AS pe "
            "ON pe.id = pce.program_enrollment_id "
            "WHERE pe.program_uuid = %s AND pce.status = 'active' "
            "AND pce.course_enrollment_id IS NULL "
            "AND ce.user_id = pe.user_id AND ce.course_id = pce.course_key "
            "AND (NOT ce.is_active OR ce.mode IN ('audit', 'honor'))",
            (program,),
        )
        conn.execute(
            "UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce "
            "SET course_enrollment_id = ce.id "
            "FROM enrolldb.program_enrollments_programenrollment AS pe, "
            "enrolldb.student_courseenrollment AS ce "
            "WHERE pe.id = pce.program_enrollment_id AND pe.program_uuid = %s "
            "AND pce.course_enrollment_id IS NULL "
            "AND ce.user_id = pe.user_id AND ce.course_id = pce.course_key",
            (program,),
        )
    return linked


#: Our history triggers (docs/reference.md, history) write one history row inside each
#: UPDATE or INSERT. Django has no such triggers: simple_history writes the history row with a
#: separate INSERT after each save() (reference notes, section 1.4). For the re-enactment these
#: triggers are disabled and the INSERTs are issued as Django issues them; every other
#: trigger (integrity, waiting learners) stays, so the final rows stay comparable.
_HISTORY_TRIGGERS = [
    ("enrolldb.program_enrollments_programenrollment", "programenrollment_history_update"),
    (
        "enrolldb.program_enrollments_programcourseenrollment",
        "programcourseenrollment_history_update",
    ),
    ("enrolldb.student_courseenrollment", "courseenrollment_history_insert"),
    ("enrolldb.student_courseenrollment", "courseenrollment_history_update"),
]

_PE_HISTORY = (
    "INSERT INTO enrolldb.program_enrollments_historicalprogramenrollment "
    "(id, created, modified, user_id, external_user_key, program_uuid, curriculum_uuid, status, "
    "history_date, history_type) "
    "SELECT id, created, modified, user_id, external_user_key, program_uuid, curriculum_uuid, "
    "status, now(), '~' FROM enrolldb.program_enrollments_programenrollment WHERE id = %s"
)
_PCE_HISTORY = (
    "INSERT INTO enrolldb.program_enrollments_historicalprogramcourseenrollment "
    "(id, created, modified, program_enrollment_id, course_enrollment_id, course_key, status, "
    "history_date, history_type) "
    "SELECT id, created, modified, program_enrollment_id, course_enrollment_id, course_key, "
    "status, now(), '~' FROM enrolldb.program_enrollments_programcourseenrollment WHERE id = %s"
)
_CE_HISTORY = (
    "INSERT INTO enrolldb.student_courseenrollment_history "
    "(id, user_id, course_id, created, is_active, mode, history_date, history_type) "
    "SELECT id, user_id, course_id, created, is_active, mode, now(), '~' "
    "FROM enrolldb.student_courseenrollment WHERE id = %s"
)


def link_upstream(conn: Conn, program: str, pairs: list[tuple[str, str]]) -> int:
    """Django's ``link_program_enrollments``, one learner at a time (no relinks in the data).

    The statements are those the reference notes (research notes on the newest Django code
    of ``program_enrollments``) list in sections 2.2-2.7 and count in section 6, one statement
    per round trip, on an autocommit connection with one atomic block (BEGIN ... COMMIT) per
    learner and a savepoint around each ``get_or_create`` INSERT. Values Django sends from
    Python memory (the history rows) are read from the live row by the same INSERT. No
    server-side prepared statements: Django's PostgreSQL backend binds parameters on the
    client by default. Left out, because this schema has no such table (which flatters
    upstream): the CourseEnrollmentAllowed UPDATE and the user-profile read per course
    enrollment (section 6), and every query of the LMS's enrollment signal receivers
    (section 6: about 5-15 more per course enrollment write).

    The one addition is :class:`AutoAnalyze`: autovacuum's ANALYZE, which a Django
    deployment on PostgreSQL relies on and which this path issues itself, counted in its time.
    """
    saved_threshold = conn.prepare_threshold
    conn.prepare_threshold = None
    for table, trigger in _HISTORY_TRIGGERS:
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    try:
        return _link_upstream(conn, program, pairs, AutoAnalyze(conn))
    finally:
        for table, trigger in _HISTORY_TRIGGERS:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
        conn.prepare_threshold = saved_threshold


class AutoAnalyze:
    """Autovacuum's ANALYZE rule, applied by the upstream path itself.

    Why: the path looks course enrollments up by ``(user_id, course_id)`` with the value in
    the statement, as Django does. Linking creates them by the hundred thousand for a course
    that held none when the tables were last analyzed, so with old statistics PostgreSQL
    estimates one row for that course and picks the index on ``course_id`` alone: every
    lookup then reads every course enrollment of the course, and the path goes quadratic
    (measured: 100 learners/s at the start of a 100,000 link, 29/s at 70,000). A Django
    deployment on PostgreSQL has autovacuum re-analyze a table once more than
    ``autovacuum_analyze_threshold`` (50) + ``autovacuum_analyze_scale_factor`` (0.1) x its
    rows have changed; the server ``make bench`` runs on may have autovacuum off (this
    project's CI machine does), and autovacuum's timing would make runs unrepeatable. So the
    path counts the rows it writes and runs that ANALYZE itself, at the same points, inside its
    timed work. enrolldb and the floor get no such help: their plans do not depend on it.
    """

    #: The tables whose statistics the path's lookups depend on.
    TABLES = (
        "enrolldb.student_courseenrollment",
        "enrolldb.program_enrollments_programcourseenrollment",
        "enrolldb.program_enrollments_programenrollment",
    )

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.changed = dict.fromkeys(self.TABLES, 0)
        self.rows = {table: self._rows(table) for table in self.TABLES}
        self.runs = 0

    def _rows(self, table: str) -> float:
        row = self.conn.execute(
            "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", (table,)
        ).fetchone()
        return float(row[0]) if row else 0.0

    def wrote(self, table: str, rows: int = 1) -> None:
        self.changed[table] += rows

    def check(self) -> None:
        """After a committed transaction: ANALYZE each table past autovacuum's threshold."""
        for table, changed in self.changed.items():
            if changed > 50 + 0.1 * self.rows[table]:
                self.conn.execute(f"ANALYZE {table}")
                self.changed[table] = 0
                self.rows[table] = self._rows(table)
                self.runs += 1


def _link_upstream(
    conn: Conn, program: str, pairs: list[tuple[str, str]], analyze: AutoAnalyze
) -> int:
    keys = {k.lower(): (k, u) for k, u in pairs}
    # Section 2.2 step 1: the program's enrollments of the keys, with their users
    # (select_related), then their course rows (prefetch_related): two queries per call.
    enrollments = {
        str(key).lower(): (pe_id, user_id)
        for pe_id, key, user_id in conn.execute(
            "SELECT pe.id, pe.external_user_key, pe.user_id "
            "FROM enrolldb.program_enrollments_programenrollment AS pe "
            "LEFT JOIN enrolldb.auth_user AS u ON u.id = pe.user_id "
            "WHERE pe.program_uuid = %s AND lower(pe.external_user_key) = ANY(%s)",
            (program, list(keys)),
        )
    }
    course_rows: dict[int, list[tuple[int, str, str]]] = {}
    for pce_id, pe_id, course, status in conn.execute(
        "SELECT id, program_enrollment_id, course_key, status "
        "FROM enrolldb.program_enrollments_programcourseenrollment "
        "WHERE program_enrollment_id = ANY(%s) ORDER BY id",
        ([pe_id for pe_id, _ in enrollments.values()],),
    ):
        course_rows.setdefault(pe_id, []).append((pce_id, course, status))
    # Section 2.2 step 2: the users by username, one query per call.
    users: dict[str, int] = dict(
        conn.execute(
            "SELECT username, id FROM enrolldb.auth_user WHERE username = ANY(%s)",
            ([u for _, u in pairs],),
        ).fetchall()
    )
    linked = 0
    for low, (_key, username) in keys.items():
        user_id = users.get(username)
        found = enrollments.get(low)
        if user_id is None or found is None or found[1] == user_id:
            continue  # section 2.2 step 3b: reported as an error, nothing written
        pe_id = found[0]
        # Section 2.2 step 3c, section 6 "transaction BEGIN/COMMIT": one atomic block.
        with conn.transaction():
            # Section 2.5 step 2, section 6 "PE.save: UPDATE + history INSERT".
            conn.execute(
                "UPDATE enrolldb.program_enrollments_programenrollment "
                "SET user_id = %s, modified = now() WHERE id = %s",
                (user_id, pe_id),
            )
            analyze.wrote("enrolldb.program_enrollments_programenrollment")
            conn.execute(_PE_HISTORY, (pe_id,))
            for pce_id, course, status in course_rows.get(pe_id, []):
                # Section 2.5 step 3a.
                ce_id, ce_writes = enroll_in_masters_track(conn, user_id, course, status)
                analyze.wrote("enrolldb.student_courseenrollment", ce_writes)
                # Section 2.5 step 3b, section 6 "PCE.save UPDATE + history INSERT".
                conn.execute(
                    "UPDATE enrolldb.program_enrollments_programcourseenrollment "
                    "SET course_enrollment_id = %s, modified = now() WHERE id = %s",
                    (ce_id, pce_id),
                )
                analyze.wrote("enrolldb.program_enrollments_programcourseenrollment")
                conn.execute(_PCE_HISTORY, (pce_id,))
                # Section 2.7, section 6 "role assignments SELECT" (none in the data).
                conn.execute(
                    "SELECT id, role FROM enrolldb.program_enrollments_courseaccessroleassignment "
                    "WHERE enrollment_id = %s",
                    (pce_id,),
                ).fetchall()
        linked += 1
        analyze.check()  # autovacuum works between transactions, never inside one
    return linked


def enroll_in_masters_track(conn: Conn, user_id: int, course: str, status: str) -> tuple[int, int]:
    """Upstream ``enroll_in_masters_track`` (reference notes, section 2.6), one query per step.

    Returns the course enrollment's id and how many row writes it took (for
    :class:`AutoAnalyze`)."""
    writes = 0
    # Step 1, section 6 "CourseOverview.course_exists".
    conn.execute(
        "SELECT 1 FROM enrolldb.course_overviews_courseoverview WHERE id = %s", (course,)
    ).fetchone()
    # Step 3, section 6 "is_enrolled (enrollment state)".
    enrolled = conn.execute(
        "SELECT id, is_active FROM enrolldb.student_courseenrollment "
        "WHERE user_id = %s AND course_id = %s",
        (user_id, course),
    ).fetchone()
    if enrolled is not None and enrolled[1]:
        # Step 3: fetch that course enrollment (section 6, cheaper variant: "1 get").
        row = conn.execute(
            "SELECT id, user_id, course_id, created, is_active, mode "
            "FROM enrolldb.student_courseenrollment WHERE user_id = %s AND course_id = %s",
            (user_id, course),
        ).fetchone()
        assert row is not None
        ce_id, mode = int(row[0]), str(row[5])
        if mode in ("audit", "honor"):
            # Step 3: mode masters, plain save() (section 6 cheaper variant: "2 save").
            conn.execute(
                "UPDATE enrolldb.student_courseenrollment SET mode = 'masters' WHERE id = %s",
                (ce_id,),
            )
            writes += 1
            conn.execute(_CE_HISTORY, (ce_id,))
    else:
        # Step 4, section 6 "CourseEnrollment.enroll -> CourseOverview.get_from_id".
        conn.execute(
            "SELECT id, org FROM enrolldb.course_overviews_courseoverview WHERE id = %s",
            (course,),
        ).fetchone()
        # Section 6 "get_or_create CE: SELECT + SAVEPOINT/INSERT/RELEASE".
        row = conn.execute(
            "SELECT id FROM enrolldb.student_courseenrollment "
            "WHERE user_id = %s AND course_id = %s",
            (user_id, course),
        ).fetchone()
        if row is None:
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO enrolldb.student_courseenrollment "
                    "(user_id, course_id, is_active, mode) VALUES (%s, %s, false, 'audit') "
                    "RETURNING id",
                    (user_id, course),
                ).fetchone()
                writes += 1
        assert row is not None
        ce_id = int(row[0])
        # Section 6 "update_enrollment(active, masters): UPDATE + history INSERT".
        conn.execute(
            "UPDATE enrolldb.student_courseenrollment SET is_active = true, mode = 'masters' "
            "WHERE id = %s",
            (ce_id,),
        )
        writes += 1
        conn.execute(_CE_HISTORY, (ce_id,))
        mode = "masters"
    if mode == "masters" and status == "inactive":
        # Step 5, section 6 "deactivate UPDATE + history INSERT".
        conn.execute(
            "UPDATE enrolldb.student_courseenrollment SET is_active = false WHERE id = %s",
            (ce_id,),
        )
        writes += 1
        conn.execute(_CE_HISTORY, (ce_id,))
    return ce_id, writes


PATHS = {"enrolldb": link_enrolldb, "floor": link_floor, "upstream": link_upstream}
