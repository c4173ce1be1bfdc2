-- Link planning: every reason a unit of a link would fail, read-only, before anything is
-- written. Lock order and plan shapes: 011_locks.sql.

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_errors(
    p_units integer[],
    p_program_enrollment_ids integer[],
    p_user_ids integer[],
    p_failed_units integer[]
)
RETURNS TABLE (
    unit integer,
    program_enrollment_id integer,
    phase integer,
    course_key text,
    message text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    -- PL/pgSQL with custom plans, not a SQL function: the arrays are then planned as values,
    -- so unnest() is estimated at its real length and the joins between the CTEs below (all
    -- derived from the input) are hash joins, not nested loops over every pair. The tables
    -- are reached from the input by index probes (LATERAL ... OFFSET 0), whatever their
    -- statistics say.
    RETURN QUERY
    WITH in_pe AS MATERIALIZED (
        SELECT
            u.unit,
            u.pe_id,
            u.user_id AS target,
            r.username,
            r.old_user,
            r.program_uuid,
            r.curriculum_uuid
        FROM unnest(p_units, p_program_enrollment_ids, p_user_ids)
            AS u (unit, pe_id, user_id)
        CROSS JOIN LATERAL (
            SELECT
                au.username::text AS username,
                pe.user_id AS old_user,
                pe.program_uuid,
                pe.curriculum_uuid
            FROM enrolldb.program_enrollments_programenrollment AS pe
            INNER JOIN enrolldb.auth_user AS au ON au.id = u.user_id
            WHERE pe.id = u.pe_id
            OFFSET 0
        ) AS r
    ),

    in_pce AS MATERIALIZED (
        SELECT
            i.unit,
            i.pe_id,
            i.target,
            i.username,
            i.program_uuid,
            r.pce_id,
            r.course_key,
            r.status
        FROM in_pe AS i
        CROSS JOIN LATERAL (
            SELECT pce.id AS pce_id, pce.course_key::text AS course_key, pce.status
            FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.program_enrollment_id = i.pe_id
            OFFSET 0
        ) AS r
    ),

    -- The active program course enrollment (other than the row itself) that already uses the
    -- target user's course enrollment for the course of each active row of the call.
    in_pce_taken AS MATERIALIZED (
        SELECT x.unit, x.pe_id, x.pce_id, x.username, x.course_key, r.other_pe_id
        FROM in_pce AS x
        CROSS JOIN LATERAL (
            SELECT ce.id, ce.course_id
            FROM enrolldb.student_courseenrollment AS ce
            WHERE ce.user_id = x.target
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
            AND r.other_pce_id <> x.pce_id
    ),

    -- Errors that depend on no other element of the call.
    independent AS MATERIALIZED (
        SELECT
            i.unit,
            i.pe_id,
            0 AS phase,
            ''::text AS course_key,
            pg_catalog.format(
                'IntegrityError: user %s already has program enrollment id=%s in program '
                'uuid=%s and curriculum uuid=%s (programenrollment_user_program_curriculum_uq)',
                i.username, q.id, i.program_uuid, i.curriculum_uuid
            ) AS message
        FROM in_pe AS i
        CROSS JOIN LATERAL (
            SELECT pe.id, pe.program_uuid, pe.curriculum_uuid
            FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE pe.user_id = i.target
            OFFSET 0
        ) AS q
        WHERE
            q.program_uuid = i.program_uuid
            AND q.curriculum_uuid = i.curriculum_uuid
            AND q.id <> ALL(p_program_enrollment_ids)
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            1,
            x.course_key,
            pg_catalog.format('NonExistentCourseError: %s does not exist', x.course_key)
        FROM in_pce AS x
        WHERE NOT EXISTS (
            SELECT FROM enrolldb.course_overviews_courseoverview AS co
            WHERE co.id = x.course_key
        )
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            2,
            x.course_key,
            pg_catalog.format(
                'ConflictError: %s already has an active program course enrollment for %s '
                'in program uuid=%s',
                x.username, x.course_key, ype.program_uuid
            )
        FROM in_pce_taken AS x
        CROSS JOIN LATERAL (
            SELECT pe.program_uuid
            FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE pe.id = x.other_pe_id
            OFFSET 0
        ) AS ype
        WHERE x.other_pe_id <> ALL(p_program_enrollment_ids)
    ),

    -- Two elements of one call that would take the same (user, program, curriculum), or the
    -- same course enrollment as active, both fail: neither wins by its position in the input.
    -- Clashes are counted with window functions: one sort, whatever the planner guesses about
    -- the sizes (a self-join here became a nested loop over every pair of a 10,000-row call).
    pe_clash AS (
        SELECT
            i.unit,
            i.pe_id,
            i.username,
            i.program_uuid,
            i.curriculum_uuid,
            pg_catalog.count(*) OVER (
                PARTITION BY i.target, i.program_uuid, i.curriculum_uuid
            ) AS n_same
        FROM in_pe AS i
        WHERE NOT EXISTS (SELECT FROM independent AS ind WHERE ind.unit = i.unit)
    ),

    pce_clash AS (
        SELECT
            x.unit,
            x.pe_id,
            x.pce_id,
            x.target,
            x.username,
            x.program_uuid,
            x.course_key,
            pg_catalog.count(*) OVER (PARTITION BY x.target, x.course_key) AS n_same
        FROM in_pce AS x
        WHERE
            x.status = 'active'
            AND NOT EXISTS (SELECT FROM independent AS ind WHERE ind.unit = x.unit)
    ),

    pce_clash_many AS (
        SELECT c.unit, c.pe_id, c.pce_id, c.target, c.username, c.program_uuid, c.course_key
        FROM pce_clash AS c
        WHERE c.n_same > 1
    ),

    in_call AS (
        SELECT
            a.unit,
            a.pe_id,
            0 AS phase,
            ''::text AS course_key,
            pg_catalog.format(
                'IntegrityError: user %s would be linked to program uuid=%s and curriculum '
                'uuid=%s by more than one external user key of this call '
                '(programenrollment_user_program_curriculum_uq)',
                a.username, a.program_uuid, a.curriculum_uuid
            ) AS message
        FROM pe_clash AS a
        WHERE a.n_same > 1
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            2,
            x.course_key,
            pg_catalog.format(
                'ConflictError: %s already has an active program course enrollment for %s '
                'in program uuid=%s',
                x.username, x.course_key, z.program_uuid
            )
        FROM pce_clash_many AS x
        INNER JOIN pce_clash_many AS z
            ON x.target = z.target AND x.course_key = z.course_key AND x.pce_id <> z.pce_id
    ),

    failed_pe AS (
        SELECT q.pe_id, q.old_user, q.program_uuid, q.curriculum_uuid
        FROM in_pe AS q
        WHERE q.unit = ANY(p_failed_units)
    ),

    -- Errors caused by another element failing: the enrollment it would have unlinked from
    -- this element's user stays linked.
    dependent AS (
        SELECT
            i.unit,
            i.pe_id,
            0 AS phase,
            ''::text AS course_key,
            pg_catalog.format(
                'IntegrityError: user %s already has program enrollment id=%s in program '
                'uuid=%s and curriculum uuid=%s (programenrollment_user_program_curriculum_uq)',
                i.username, q.pe_id, i.program_uuid, i.curriculum_uuid
            ) AS message
        FROM in_pe AS i
        INNER JOIN failed_pe AS q
            ON
                i.target = q.old_user
                AND i.program_uuid = q.program_uuid
                AND i.curriculum_uuid = q.curriculum_uuid
                AND i.pe_id <> q.pe_id
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            2,
            x.course_key,
            pg_catalog.format(
                'ConflictError: %s already has an active program course enrollment for %s '
                'in program uuid=%s',
                x.username, x.course_key, q.program_uuid
            )
        FROM in_pce_taken AS x
        INNER JOIN failed_pe AS q ON x.other_pe_id = q.pe_id
    )

    SELECT e.unit, e.pe_id, e.phase, e.course_key, e.message FROM independent AS e
    UNION ALL
    SELECT e.unit, e.pe_id, e.phase, e.course_key, e.message FROM in_call AS e
    UNION ALL
    SELECT e.unit, e.pe_id, e.phase, e.course_key, e.message FROM dependent AS e;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_errors(integer[], integer[], integer[], integer[]) IS
'Internal: every reason a unit of a link (program enrollments to be linked to one user) would '
'fail, given the units already known to fail. Read-only; computed before anything is written.';

