-- Internal building blocks of linking, shared by link_program_enrollments, matriculate_learner,
-- unlink_program_enrollment and the registrar writes. Not granted to any role: only the
-- SECURITY DEFINER API functions (same owner) call them.
--
-- Lock order, everywhere: program enrollments (by id) -> users (auth_user rows FOR NO KEY
-- UPDATE, by id) -> program course enrollments (by id) -> course enrollments (by id).
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

