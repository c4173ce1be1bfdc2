-- Trigger statements whose plans do not depend on row estimates: every lookup is driven by
-- the statement's transition tables (or the given ids) and reaches the tables by index.
-- depends: 0005_waiting_learner_active_course

-- Why (measured on 0.1.0): after a bulk load, before any ANALYZE, the INSERT of
-- refresh_waiting_learner_active_course joined program course enrollments, program
-- enrollments and programs first (each estimated at a few rows) and filtered by
-- `pce.id IN (SELECT unnest(...))` last, as the inner side of a nested loop: 8,000 learners
-- linked in one call spent 47.8 s in that statement ("Rows Removed by Join Filter:
-- 512000000"). The shape used below is a LATERAL sub-select with OFFSET 0 (the planner may
-- not flatten it): a nested loop whose outer side is the input, whose inner side is one
-- index probe per input row. Its cost is linear in the input whatever the statistics say,
-- and independent of the table's size.
--
-- The trigger functions join their old and new transition tables with each other, so they
-- are planned for each statement (plan_cache_mode = force_custom_plan: the tables' real
-- sizes are then known); whatever calls them may use cached plans.

CREATE OR REPLACE FUNCTION enrolldb.refresh_waiting_learner_active_course(
    p_program_course_enrollment_ids integer[]
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    DELETE FROM enrolldb.waiting_learner_active_course AS w
    WHERE w.program_course_enrollment_id = ANY(p_program_course_enrollment_ids);

    INSERT INTO enrolldb.waiting_learner_active_course (
        program_course_enrollment_id, organization_key, lower_external_user_key, course_key
    )
    SELECT s.id, p.organization_key, pg_catalog.lower(pe.external_user_key), s.course_key
    FROM (
        SELECT DISTINCT t.id FROM unnest(p_program_course_enrollment_ids) AS t (id)
    ) AS t
    CROSS JOIN LATERAL (
        SELECT pce.id, pce.program_enrollment_id, pce.course_key, pce.status
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.id = t.id
        OFFSET 0
    ) AS s
    CROSS JOIN LATERAL (
        SELECT pe.user_id, pe.external_user_key, pe.program_uuid
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = s.program_enrollment_id
        OFFSET 0
    ) AS pe
    CROSS JOIN LATERAL (
        SELECT p.authoring_organization_key AS organization_key
        FROM enrolldb.program_enrollments_program AS p
        WHERE p.program_uuid = pe.program_uuid
        OFFSET 0
    ) AS p
    -- Tested outside the sub-selects, so that no plan uses the partial index on active rows
    -- as a bitmap (see track_waiting_on_pe_update).
    WHERE s.status = 'active' AND pe.user_id IS NULL AND pe.external_user_key IS NOT NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enrolldb.track_waiting_on_pe_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    -- Only active rows are ever recorded, so only theirs need a refresh. The status is
    -- tested outside the sub-select: inside it, `status = 'active'` matches the predicate of
    -- the partial index programcourseenrollment_active_course_enrollment_uq, and a bitmap AND
    -- with that whole index per changed row (measured: 0.4-1 ms each) made the trigger
    -- quadratic again.
    PERFORM enrolldb.refresh_waiting_learner_active_course(ARRAY(
        SELECT pce.id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.id = o.id
        CROSS JOIN LATERAL (
            SELECT x.id, x.status
            FROM enrolldb.program_enrollments_programcourseenrollment AS x
            WHERE x.program_enrollment_id = r.id
            OFFSET 0
        ) AS pce
        WHERE
            pce.status = 'active'
            AND (r.user_id, r.external_user_key, r.program_uuid)
            IS DISTINCT FROM (o.user_id, o.external_user_key, o.program_uuid)
    ));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enrolldb.track_waiting_on_program_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    PERFORM enrolldb.refresh_waiting_learner_active_course(ARRAY(
        SELECT pce.id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.program_uuid = o.program_uuid
        CROSS JOIN LATERAL (
            SELECT pe.id
            FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE pe.program_uuid = r.program_uuid
            OFFSET 0
        ) AS pe
        CROSS JOIN LATERAL (
            SELECT x.id, x.status
            FROM enrolldb.program_enrollments_programcourseenrollment AS x
            WHERE x.program_enrollment_id = pe.id
            OFFSET 0
        ) AS pce
        WHERE
            pce.status = 'active'
            AND r.authoring_organization_key IS DISTINCT FROM o.authoring_organization_key
    ));
    RETURN NULL;
END;
$$;

-- The two program-course-enrollment triggers of 0005, unchanged but for their planning: the
-- transition tables are joined with each other (old and new rows), which needs their real
-- sizes, whatever the caller's plan_cache_mode.

CREATE OR REPLACE FUNCTION enrolldb.track_waiting_on_pce_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    PERFORM enrolldb.refresh_waiting_learner_active_course(
        ARRAY(SELECT r.id FROM changed_rows AS r WHERE r.status = 'active')
    );
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enrolldb.track_waiting_on_pce_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    PERFORM enrolldb.refresh_waiting_learner_active_course(ARRAY(
        SELECT r.id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.id = o.id
        WHERE
            (r.status, r.program_enrollment_id, r.course_key)
            IS DISTINCT FROM (o.status, o.program_enrollment_id, o.course_key)
    ));
    RETURN NULL;
END;
$$;

-- The match rule's checks, same shape: the changed rows drive index probes, one table per
-- probe. A join of two tables inside one probe was ordered by their estimates: with the
-- course enrollments analyzed while still empty, check_match_on_pe_update scanned all of
-- them for every changed row (10,000 learners: 140 s).

CREATE OR REPLACE FUNCTION enrolldb.check_match_on_pce_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT r.id, l.ce_id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    CROSS JOIN LATERAL (
        SELECT
            ce.id AS ce_id,
            pe.user_id AS pe_user_id,
            ce.user_id AS ce_user_id,
            ce.course_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON ce.id = r.course_enrollment_id
        WHERE pe.id = r.program_enrollment_id
        OFFSET 0
        FOR SHARE OF pe, ce
    ) AS l
    WHERE
        r.course_enrollment_id IS NOT NULL
        AND (l.ce_user_id IS DISTINCT FROM l.pe_user_id OR l.course_id <> r.course_key)
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
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT r.id, l.ce_id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    INNER JOIN old_rows AS o ON r.id = o.id
    CROSS JOIN LATERAL (
        SELECT
            ce.id AS ce_id,
            pe.user_id AS pe_user_id,
            ce.user_id AS ce_user_id,
            ce.course_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON ce.id = r.course_enrollment_id
        WHERE pe.id = r.program_enrollment_id
        OFFSET 0
        FOR SHARE OF pe, ce
    ) AS l
    WHERE
        r.course_enrollment_id IS NOT NULL
        AND (r.course_enrollment_id, r.program_enrollment_id, r.course_key)
        IS DISTINCT FROM (o.course_enrollment_id, o.program_enrollment_id, o.course_key)
        AND (l.ce_user_id IS DISTINCT FROM l.pe_user_id OR l.course_id <> r.course_key)
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

CREATE OR REPLACE FUNCTION enrolldb.check_match_on_pe_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT l.pce_id, l.ce_id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    INNER JOIN old_rows AS o ON r.id = o.id
    CROSS JOIN LATERAL (
        SELECT pce.id AS pce_id, pce.course_enrollment_id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.program_enrollment_id = r.id
        OFFSET 0
        FOR SHARE OF pce
    ) AS p
    CROSS JOIN LATERAL (
        SELECT p.pce_id, ce.id AS ce_id, ce.user_id AS ce_user_id
        FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.id = p.course_enrollment_id
        OFFSET 0
        FOR SHARE OF ce
    ) AS l
    WHERE
        r.user_id IS DISTINCT FROM o.user_id
        AND l.ce_user_id IS DISTINCT FROM r.user_id
    ORDER BY l.pce_id
    LIMIT 1;

    IF FOUND THEN
        PERFORM enrolldb.raise_course_enrollment_mismatch(
            'program_enrollments_programenrollment', v_pce_id, v_ce_id
        );
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enrolldb.check_match_on_ce_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT l.pce_id, r.id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    INNER JOIN old_rows AS o ON r.id = o.id
    CROSS JOIN LATERAL (
        SELECT pce.id AS pce_id, pce.course_key, pce.program_enrollment_id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.course_enrollment_id = r.id
        OFFSET 0
        FOR SHARE OF pce
    ) AS p
    CROSS JOIN LATERAL (
        SELECT p.pce_id, p.course_key, pe.user_id AS pe_user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = p.program_enrollment_id
        OFFSET 0
        FOR SHARE OF pe
    ) AS l
    WHERE
        (r.user_id, r.course_id) IS DISTINCT FROM (o.user_id, o.course_id)
        AND (r.user_id IS DISTINCT FROM l.pe_user_id OR r.course_id <> l.course_key)
    ORDER BY l.pce_id
    LIMIT 1;

    IF FOUND THEN
        PERFORM enrolldb.raise_course_enrollment_mismatch(
            'student_courseenrollment', v_pce_id, v_ce_id
        );
    END IF;
    RETURN NULL;
END;
$$;
