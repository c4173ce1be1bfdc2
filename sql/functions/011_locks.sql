-- Locks of linking, and the conventions every linking file (011-050) follows. The internals
-- of linking live in schema enrolldb_internal (migration 0011), shared by
-- link_program_enrollments, matriculate_learner, unlink_program_enrollment, retire_user and
-- the registrar writes. Never granted: only the SECURITY DEFINER API functions (same owner)
-- call them.
--
-- lock order: docs/design.md#lock-order (the one statement of it: learner keys,
-- program enrollments, users, program course enrollments, course enrollments; each by id).
--
-- Plans that do not depend on row estimates (docs/reference.md, Qualities: linear whatever the
-- statistics say).
-- Every lookup of a table is driven by the input: `FROM unnest(...) CROSS JOIN LATERAL
-- (SELECT ... WHERE <indexed key> = <input column> OFFSET 0)`, a nested loop whose inner
-- side is one index probe per input row (OFFSET 0 keeps the planner from flattening the
-- sub-select into a join it would then order by its estimates). Rows are locked the same
-- way, in the lock order: the ids are collected first, sorted, and each is locked by its own
-- probe. One table per probe (a join inside a probe is ordered by estimates again: a table
-- analyzed while empty was scanned in full for every row). Inside a probe only the columns
-- of the one index meant for it are compared (pk,
-- user_id, lower(key), ...); the rest (course, program, status) is tested outside: with
-- stale statistics a second, less selective index (courseenrollment_course_idx,
-- programenrollment_program_idx, the partial index on active rows) looked like one row
-- and each probe read a whole course or program. Never `IN (SELECT unnest(...))` or
-- `NOT IN (subquery)`: the first was planned as the inner side of a nested loop over a whole
-- table after a bulk load (quadratic), the second becomes a per-row rescan when the planner
-- expects too many rows to hash. tests/test_plans_stale_statistics.py holds all of this.
--
-- Plan caching: link_plan_errors (read-only, joins the call's own sets with each other) is
-- planned for each call (force_custom_plan: its arrays are then sized right). The functions
-- that write use plan_cache_mode = auto: their shapes need no estimate, and a forced custom
-- plan would also re-plan the foreign-key check of every row they write (measured: 10,000
-- learners spent 0.5 s re-planning 70,000 RI checks, a third of the floor's whole time).

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_users(p_user_ids integer[])
RETURNS void
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    -- Row locks on the users, in ascending id: two calls that touch one user's course
    -- enrollments serialise instead of both passing their checks on old snapshots. FOR NO
    -- KEY UPDATE does not block foreign-key checks (an LMS enrolling the user elsewhere) and,
    -- unlike advisory locks, needs no slot in the shared lock table however many users one
    -- call links.
    SELECT pg_catalog.count(*)
    FROM (
        SELECT DISTINCT t.user_id FROM unnest(p_user_ids) AS t (user_id) ORDER BY t.user_id
    ) AS t
    CROSS JOIN LATERAL (
        SELECT u.id
        FROM enrolldb.auth_user AS u
        WHERE u.id = t.user_id
        OFFSET 0
        FOR NO KEY UPDATE OF u
    ) AS locked;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_users(integer[]) IS
'Internal: locks the users'' auth_user rows FOR NO KEY UPDATE, in ascending id order.';


CREATE OR REPLACE FUNCTION enrolldb_internal.lock_link_rows(
    p_units enrolldb_internal.link_unit[],
    p_old_user_ids integer[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
DECLARE
    v_ids integer[];
BEGIN
    -- The rest of the lock order after the program enrollments (the caller's): the target
    -- and old users, the program course enrollments, then the course enrollments the rows
    -- point at now and the target users' ones for the same courses, each kind in id order,
    -- collected first and locked one probe each.
    PERFORM enrolldb_internal.lock_users(
        ARRAY(SELECT u.user_id FROM unnest(p_units) AS u) || p_old_user_ids
    );

    SELECT pg_catalog.array_agg(r.id ORDER BY r.id)
    INTO v_ids
    FROM unnest(p_units) AS u
    CROSS JOIN LATERAL (
        SELECT pce.id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.program_enrollment_id = u.program_enrollment_id
        OFFSET 0
    ) AS r;

    PERFORM 1
    FROM unnest(v_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT pce.id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.id = t.id
        OFFSET 0
        FOR UPDATE OF pce
    ) AS locked;

    SELECT pg_catalog.array_agg(DISTINCT c.id ORDER BY c.id)
    INTO v_ids
    FROM unnest(p_units) AS u
    CROSS JOIN LATERAL (
        SELECT pce.course_enrollment_id, pce.course_key
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.program_enrollment_id = u.program_enrollment_id
        OFFSET 0
    ) AS x
    LEFT JOIN LATERAL (
        SELECT target.id
        FROM (
            SELECT ce.id, ce.course_id
            FROM enrolldb.student_courseenrollment AS ce
            WHERE ce.user_id = u.user_id
            OFFSET 0
        ) AS target
        WHERE target.course_id = x.course_key
    ) AS tgt ON TRUE
    CROSS JOIN LATERAL unnest(ARRAY[x.course_enrollment_id, tgt.id]) AS c (id)
    WHERE c.id IS NOT NULL;

    PERFORM 1
    FROM unnest(v_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT ce.id
        FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.id = t.id
        OFFSET 0
        FOR UPDATE OF ce
    ) AS locked;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_link_rows(enrolldb_internal.link_unit[], integer[]) IS
'Internal: for link_locked, whose caller holds the program enrollments'' locks: locks the '
'target and old users (lock_users), the enrollments'' program course enrollments and the '
'course enrollments they or the target users hold for those courses, in the lock order.';
