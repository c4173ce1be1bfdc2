-- Link planning, part 2: the reasons units of a link fail, from the rows part 1 read
-- (013_link_plan_rows.sql, which describes the steps and the plan settings).

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_independent_errors(
    p_targets enrolldb_internal.link_target[],
    p_courses enrolldb_internal.link_course[],
    p_taken enrolldb_internal.link_course_taken[],
    p_program_enrollment_ids integer[]
)
RETURNS SETOF enrolldb_internal.link_error
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    -- Errors that depend on no other element of the call.
    RETURN QUERY
    SELECT
        i.unit,
        i.program_enrollment_id,
        0 AS phase,
        ''::text AS course_key,
        enrolldb_internal.user_has_program_enrollment_message(
            i.username, q.id, i.program_uuid, i.curriculum_uuid
        ) AS message
    FROM unnest(p_targets) AS i
    CROSS JOIN LATERAL (
        SELECT pe.id, pe.program_uuid, pe.curriculum_uuid
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.user_id = i.user_id
        OFFSET 0
    ) AS q
    WHERE
        q.program_uuid = i.program_uuid
        AND q.curriculum_uuid = i.curriculum_uuid
        AND q.id <> ALL(p_program_enrollment_ids)
    UNION ALL
    SELECT
        x.unit,
        x.program_enrollment_id,
        1,
        x.course_key,
        enrolldb_internal.nonexistent_course_message(x.course_key)
    FROM unnest(p_courses) AS x
    WHERE NOT EXISTS (
        SELECT FROM enrolldb.course_overviews_courseoverview AS co
        WHERE co.id = x.course_key
    )
    UNION ALL
    SELECT
        x.unit,
        x.program_enrollment_id,
        2,
        x.course_key,
        enrolldb_internal.course_conflict_message(x.username, x.course_key, ype.program_uuid)
    FROM unnest(p_taken) AS x
    CROSS JOIN LATERAL (
        SELECT pe.program_uuid
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = x.other_program_enrollment_id
        OFFSET 0
    ) AS ype
    WHERE x.other_program_enrollment_id <> ALL(p_program_enrollment_ids);
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_independent_errors(
    enrolldb_internal.link_target[],
    enrolldb_internal.link_course[],
    enrolldb_internal.link_course_taken[],
    integer[]
) IS
'Internal, link planning: the reasons units fail that depend on no other unit: a collision '
'with the target user''s other enrollments, a missing course, a course enrollment taken '
'outside the call (p_program_enrollment_ids: the call''s enrollments).';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_clash_errors(
    p_targets enrolldb_internal.link_target[],
    p_courses enrolldb_internal.link_course[],
    p_independent_units integer[]
)
RETURNS SETOF enrolldb_internal.link_error
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    RETURN QUERY
    -- Two elements of one call that would take the same (user, program, curriculum), or the
    -- same course enrollment as active, both fail: neither wins by its position in the input.
    -- Clashes are counted with window functions: one sort, whatever the planner guesses about
    -- the sizes (a self-join here became a nested loop over every pair of a 10,000-row call).
    WITH pe_clash AS (
        SELECT
            i.unit,
            i.program_enrollment_id,
            i.username,
            i.program_uuid,
            i.curriculum_uuid,
            pg_catalog.count(*) OVER (
                PARTITION BY i.user_id, i.program_uuid, i.curriculum_uuid
            ) AS n_same
        FROM unnest(p_targets) AS i
        WHERE i.unit <> ALL(p_independent_units)
    ),

    pce_clash AS (
        SELECT
            x.unit,
            x.program_enrollment_id,
            x.program_course_enrollment_id AS pce_id,
            x.user_id,
            x.username,
            x.program_uuid,
            x.course_key,
            pg_catalog.count(*) OVER (PARTITION BY x.user_id, x.course_key) AS n_same
        FROM unnest(p_courses) AS x
        WHERE
            x.status = 'active'
            AND x.unit <> ALL(p_independent_units)
    ),

    pce_clash_many AS (
        SELECT
            c.unit,
            c.program_enrollment_id,
            c.pce_id,
            c.user_id,
            c.username,
            c.program_uuid,
            c.course_key
        FROM pce_clash AS c
        WHERE c.n_same > 1
    )

    SELECT
        a.unit,
        a.program_enrollment_id,
        0,
        ''::text,
        enrolldb_internal.user_linked_twice_message(
            a.username, a.program_uuid, a.curriculum_uuid
        )
    FROM pe_clash AS a
    WHERE a.n_same > 1
    UNION ALL
    SELECT
        x.unit,
        x.program_enrollment_id,
        2,
        x.course_key,
        enrolldb_internal.course_conflict_message(x.username, x.course_key, z.program_uuid)
    FROM pce_clash_many AS x
    INNER JOIN pce_clash_many AS z
        ON x.user_id = z.user_id AND x.course_key = z.course_key AND x.pce_id <> z.pce_id;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_clash_errors(
    enrolldb_internal.link_target[],
    enrolldb_internal.link_course[],
    integer[]
) IS
'Internal, link planning: units of one call, other than those already failing on their own '
'(p_independent_units), that would take the same (user, program, curriculum) or the same '
'course enrollment as active: all of them fail.';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_dependent_errors(
    p_targets enrolldb_internal.link_target[],
    p_taken enrolldb_internal.link_course_taken[],
    p_failed_units integer[]
)
RETURNS SETOF enrolldb_internal.link_error
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    -- Errors caused by another element failing: the enrollment it would have unlinked from
    -- this element's user stays linked.
    RETURN QUERY
    WITH failed_pe AS (
        SELECT q.program_enrollment_id, q.old_user_id, q.program_uuid, q.curriculum_uuid
        FROM unnest(p_targets) AS q
        WHERE q.unit = ANY(p_failed_units)
    )

    SELECT
        i.unit,
        i.program_enrollment_id,
        0,
        ''::text,
        enrolldb_internal.user_has_program_enrollment_message(
            i.username, q.program_enrollment_id, i.program_uuid, i.curriculum_uuid
        )
    FROM unnest(p_targets) AS i
    INNER JOIN failed_pe AS q
        ON
            i.user_id = q.old_user_id
            AND i.program_uuid = q.program_uuid
            AND i.curriculum_uuid = q.curriculum_uuid
            AND i.program_enrollment_id <> q.program_enrollment_id
    UNION ALL
    SELECT
        x.unit,
        x.program_enrollment_id,
        2,
        x.course_key,
        enrolldb_internal.course_conflict_message(x.username, x.course_key, q.program_uuid)
    FROM unnest(p_taken) AS x
    INNER JOIN failed_pe AS q ON x.other_program_enrollment_id = q.program_enrollment_id;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_dependent_errors(
    enrolldb_internal.link_target[],
    enrolldb_internal.link_course_taken[],
    integer[]
) IS
'Internal, link planning: the reasons units fail because the given units fail (a failing '
'relink keeps its old user''s enrollment and course enrollments).';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_plan_failures(
    p_units enrolldb_internal.link_unit[],
    p_relink_units integer[]
)
RETURNS TABLE (unit integer, message text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_targets enrolldb_internal.link_target[] := enrolldb_internal.link_plan_targets(p_units);
    v_courses enrolldb_internal.link_course[] := enrolldb_internal.link_plan_courses(v_targets);
    v_taken enrolldb_internal.link_course_taken[] := enrolldb_internal.link_plan_taken(v_courses);
    v_fixed enrolldb_internal.link_error[];
    v_failed integer[] := '{}';
    v_next integer[];
    v_messages text[];
    v_rounds integer := 0;
BEGIN
    v_fixed := ARRAY(
        SELECT e
        FROM enrolldb_internal.link_plan_independent_errors(
            v_targets,
            v_courses,
            v_taken,
            ARRAY(SELECT u.program_enrollment_id FROM unnest(p_units) AS u)
        ) AS e
    );
    v_fixed := v_fixed || ARRAY(
        SELECT e
        FROM enrolldb_internal.link_plan_clash_errors(
            v_targets, v_courses, ARRAY(SELECT DISTINCT f.unit FROM unnest(v_fixed) AS f)
        ) AS e
    );
    -- The failing set grows until it is stable: a unit can fail because another unit, which
    -- would have unlinked what stood in its way, fails. Only a failing relink can stand in
    -- another unit's way (it keeps its old user's enrollment and course enrollments), so when
    -- no relink fails the first round is the last. Each round keeps the first message of
    -- every failing unit: per enrollment, the user collision first, then each course in
    -- course_key order, its existence before its conflicts (integrity errors carry course '').
    LOOP
        SELECT
            COALESCE(pg_catalog.array_agg(f.unit ORDER BY f.unit), '{}'),
            COALESCE(pg_catalog.array_agg(f.message ORDER BY f.unit), '{}')
        INTO v_next, v_messages
        FROM (
            SELECT DISTINCT ON (e.unit) e.unit, e.message
            FROM (
                SELECT * FROM unnest(v_fixed)
                UNION ALL
                SELECT *
                FROM enrolldb_internal.link_plan_dependent_errors(v_targets, v_taken, v_failed)
            ) AS e
            ORDER BY e.unit, e.program_enrollment_id, e.course_key, e.phase, e.message
        ) AS f;
        EXIT WHEN v_next = v_failed;
        v_failed := v_next;
        EXIT WHEN NOT (v_failed OPERATOR(pg_catalog.&&) p_relink_units);
        v_rounds := v_rounds + 1;
        IF v_rounds > pg_catalog.cardinality(p_units) + 1 THEN
            RAISE EXCEPTION 'link planning did not converge' USING ERRCODE = 'internal_error';
        END IF;
    END LOOP;

    RETURN QUERY SELECT f.unit, f.message FROM unnest(v_failed, v_messages) AS f (unit, message);
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_plan_failures(
    enrolldb_internal.link_unit[], integer[]
) IS
'Internal: every unit of a link (program enrollments to be linked to one user each, locked) '
'that would fail, with its first message; p_relink_units are the units that take an '
'enrollment from another user. Read-only; computed before anything is written.';
