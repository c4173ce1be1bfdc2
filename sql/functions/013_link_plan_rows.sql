-- Link planning, part 1: the rows a link reads (part 2, the errors: 014_link_plan_errors.sql).
-- Every reason a unit of a link would fail is found read-only, before anything is written
-- (link_locked, 018_link_writes.sql, calls link_plan_failures). Lock order and plan shapes:
-- 011_locks.sql.
--
-- The steps: what the units link (link_plan_targets), their program course enrollments
-- (link_plan_courses) and the course enrollments already taken (link_plan_taken) are read
-- once; the errors that do not depend on which other units fail are computed once
-- (link_plan_independent_errors, then link_plan_clash_errors among the rest); the errors
-- caused by failing units (link_plan_dependent_errors) are recomputed until the failing set
-- is stable (link_plan_failures).
--
-- PL/pgSQL with custom plans, not SQL functions: the arrays are then planned as values, so
-- unnest() is estimated at its real length and the joins between the call's own sets are
-- hash joins, not nested loops over every pair. The tables are reached from the input by
-- index probes (LATERAL ... OFFSET 0), whatever their statistics say.

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_targets(
    p_units enrolldb_internal.link_unit[]
)
RETURNS enrolldb_internal.link_target[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    RETURN ARRAY(
        SELECT
            ROW(
                u.unit,
                u.program_enrollment_id,
                u.user_id,
                r.username,
                r.old_user_id,
                r.program_uuid,
                r.curriculum_uuid
            )::enrolldb_internal.link_target
        FROM unnest(p_units) AS u
        CROSS JOIN LATERAL (
            SELECT
                au.username::text AS username,
                pe.user_id AS old_user_id,
                pe.program_uuid,
                pe.curriculum_uuid
            FROM enrolldb.program_enrollments_programenrollment AS pe
            INNER JOIN enrolldb.auth_user AS au ON au.id = u.user_id
            WHERE pe.id = u.program_enrollment_id
            OFFSET 0
        ) AS r
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_targets(enrolldb_internal.link_unit[]) IS
'Internal, link planning: each unit''s enrollment with its target user''s username, current '
'user, program and curriculum.';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_courses(
    p_targets enrolldb_internal.link_target[]
)
RETURNS enrolldb_internal.link_course[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    RETURN ARRAY(
        SELECT
            ROW(
                i.unit,
                i.program_enrollment_id,
                r.pce_id,
                i.user_id,
                i.username,
                i.program_uuid,
                r.course_key,
                r.status
            )::enrolldb_internal.link_course
        FROM unnest(p_targets) AS i
        CROSS JOIN LATERAL (
            SELECT pce.id AS pce_id, pce.course_key::text AS course_key, pce.status::text AS status
            FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.program_enrollment_id = i.program_enrollment_id
            OFFSET 0
        ) AS r
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_courses(enrolldb_internal.link_target[]) IS
'Internal, link planning: the program course enrollments of the units'' enrollments.';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_taken(
    p_courses enrolldb_internal.link_course[]
)
RETURNS enrolldb_internal.link_course_taken[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    -- The active program course enrollment (other than the row itself) that already uses the
    -- target user's course enrollment for the course of each active row of the call.
    RETURN ARRAY(
        SELECT
            ROW(
                x.unit,
                x.program_enrollment_id,
                x.program_course_enrollment_id,
                x.username,
                x.course_key,
                r.other_pe_id
            )::enrolldb_internal.link_course_taken
        FROM unnest(p_courses) AS x
        CROSS JOIN LATERAL (
            SELECT ce.id, ce.course_id
            FROM enrolldb.student_courseenrollment AS ce
            WHERE ce.user_id = x.user_id
            OFFSET 0
        ) AS c
        CROSS JOIN LATERAL (
            SELECT y.program_enrollment_id AS other_pe_id, y.id AS other_pce_id
            FROM enrolldb.program_enrollments_programcourseenrollment AS y
            WHERE y.course_enrollment_id = c.id AND y.status = 'active'
            OFFSET 0
        ) AS r
        WHERE
            x.status = 'active'
            AND c.course_id = x.course_key
            AND r.other_pce_id <> x.program_course_enrollment_id
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_taken(enrolldb_internal.link_course[]) IS
'Internal, link planning: active rows of the call whose target user''s course enrollment is '
'already used by another active program course enrollment.';
