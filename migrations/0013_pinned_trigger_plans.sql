-- The integrity and waiting-learner trigger functions plan without sequential scans or
-- nested loops, whatever the sizes and statistics their cached plans were made for.
-- depends: 0010_key_columns_without_statistics

-- Why (measured): a statement of a plpgsql function that has no parameter (these statements
-- read only the transition tables) gets one generic plan per session, kept until a table it
-- reads is analyzed or altered; plan_cache_mode = force_custom_plan does not apply to it.
-- That plan is made for the transition tables and the tables as they are at its first
-- execution. Two ways it went quadratic:
-- * The course enrollments analyzed while empty (reltuples 0: a load, ANALYZE, then the
--   first link): check_match_on_pe_update's probe `ce.id = p.course_enrollment_id` was a
--   Seq Scan (estimated cost 0.00..0.00) inside the nested loop, and stayed one while the
--   table grew: slice 4 of 3,000 learners after 100,000 loaded, 5.07 s in that statement,
--   "Seq Scan on student_courseenrollment ce ... loops=6000 ... Rows Removed by Filter:
--   18000", 1,230,000 buffers; each later slice slower, until an autoanalyze happened to
--   invalidate the plan (the bench's CLI section: one 10,000-learner call over 80 s).
-- * The first execution in the session changed one row (a sign-in, a one-learner link): the
--   join of the new and old transition tables was a Nested Loop with a join filter, which a
--   later 10,000-row statement runs 10,000 x 10,000 times.
-- Every lookup in these functions has an index (the probes of 0006), and the only join that
-- is not a probe is the one of the transition tables with each other, which a hash or merge
-- join does in linear time. So sequential scans and nested loops are disabled in them:
-- a probe is then an index scan, and the transition tables are hashed or merged, whatever
-- the plan was made for. A LATERAL probe can only be a nested loop and stays one. The
-- settings also reach refresh_waiting_learner_active_course, which the track_waiting
-- functions call (a named tuplestore scan is not a sequential scan: unaffected). A disabled
-- plan type adds 1e10 to a plan's cost, which would pass every JIT threshold: jit is off in
-- them too (measured with it on: 350 ms of JIT compilation for a one-row update).
-- tests/test_plans_stale_statistics.py ("first planned for one learner", "analyzed before
-- linking") fails without this.

-- The two checks of program course enrollments probed the program enrollment and the course
-- enrollment in one sub-select (a join inside the probe): with nested loops disabled that
-- join became a hash join over a whole table for every row. Each table now has its own probe,
-- as everywhere else (same rows, same locks: the program enrollment, then the course
-- enrollment, FOR SHARE).

CREATE OR REPLACE FUNCTION enrolldb.check_match_on_pce_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT r.id, c.ce_id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    CROSS JOIN LATERAL (
        SELECT pe.user_id AS pe_user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = r.program_enrollment_id
        OFFSET 0
        FOR SHARE OF pe
    ) AS p
    CROSS JOIN LATERAL (
        SELECT ce.id AS ce_id, ce.user_id AS ce_user_id, ce.course_id
        FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.id = r.course_enrollment_id
        OFFSET 0
        FOR SHARE OF ce
    ) AS c
    WHERE
        r.course_enrollment_id IS NOT NULL
        AND (c.ce_user_id IS DISTINCT FROM p.pe_user_id OR c.course_id <> r.course_key)
    ORDER BY r.id
    LIMIT 1;

    IF FOUND THEN
        PERFORM enrolldb.raise_course_enrollment_mismatch(
            'program_enrollments_programcourseenrollment', v_pce_id, v_ce_id
        );
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enrolldb.check_match_on_pce_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT r.id, c.ce_id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    INNER JOIN old_rows AS o ON r.id = o.id
    CROSS JOIN LATERAL (
        SELECT pe.user_id AS pe_user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = r.program_enrollment_id
        OFFSET 0
        FOR SHARE OF pe
    ) AS p
    CROSS JOIN LATERAL (
        SELECT ce.id AS ce_id, ce.user_id AS ce_user_id, ce.course_id
        FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.id = r.course_enrollment_id
        OFFSET 0
        FOR SHARE OF ce
    ) AS c
    WHERE
        r.course_enrollment_id IS NOT NULL
        AND (r.course_enrollment_id, r.program_enrollment_id, r.course_key)
        IS DISTINCT FROM (o.course_enrollment_id, o.program_enrollment_id, o.course_key)
        AND (c.ce_user_id IS DISTINCT FROM p.pe_user_id OR c.course_id <> r.course_key)
    ORDER BY r.id
    LIMIT 1;

    IF FOUND THEN
        PERFORM enrolldb.raise_course_enrollment_mismatch(
            'program_enrollments_programcourseenrollment', v_pce_id, v_ce_id
        );
    END IF;
    RETURN NULL;
END;
$$;

ALTER FUNCTION enrolldb.check_match_on_pe_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb.check_match_on_ce_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb.track_waiting_on_pce_insert()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb.track_waiting_on_pce_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb.track_waiting_on_pe_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb.track_waiting_on_program_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;
