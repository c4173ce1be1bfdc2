-- Undo 0006_linear_trigger_plans: the trigger functions as 0003 and 0005 defined them.

CREATE OR REPLACE FUNCTION enrolldb.refresh_waiting_learner_active_course(
    p_program_course_enrollment_ids integer[]
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    DELETE FROM enrolldb.waiting_learner_active_course AS w
    WHERE w.program_course_enrollment_id IN (
        SELECT t.id FROM unnest(p_program_course_enrollment_ids) AS t (id)
    );

    INSERT INTO enrolldb.waiting_learner_active_course (
        program_course_enrollment_id, organization_key, lower_external_user_key, course_key
    )
    SELECT pce.id, p.authoring_organization_key, pg_catalog.lower(pe.external_user_key),
        pce.course_key
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    INNER JOIN enrolldb.program_enrollments_program AS p ON pe.program_uuid = p.program_uuid
    WHERE
        pce.id IN (SELECT t.id FROM unnest(p_program_course_enrollment_ids) AS t (id))
        AND pce.status = 'active'
        AND pe.user_id IS NULL
        AND pe.external_user_key IS NOT NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enrolldb.track_waiting_on_pe_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    PERFORM enrolldb.refresh_waiting_learner_active_course(ARRAY(
        SELECT pce.id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.id = o.id
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON r.id = pce.program_enrollment_id
        WHERE
            (r.user_id, r.external_user_key, r.program_uuid)
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
AS $$
BEGIN
    PERFORM enrolldb.refresh_waiting_learner_active_course(ARRAY(
        SELECT pce.id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.program_uuid = o.program_uuid
        INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
            ON r.program_uuid = pe.program_uuid
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON pe.id = pce.program_enrollment_id
        WHERE r.authoring_organization_key IS DISTINCT FROM o.authoring_organization_key
    ));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enrolldb.check_match_on_pce_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT l.pce_id, l.ce_id
    INTO v_pce_id, v_ce_id
    FROM (
        SELECT
            r.id AS pce_id,
            ce.id AS ce_id,
            r.course_key,
            pe.user_id AS pe_user_id,
            ce.user_id AS ce_user_id,
            ce.course_id
        FROM changed_rows AS r
        INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
            ON r.program_enrollment_id = pe.id
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON r.course_enrollment_id = ce.id
        FOR SHARE OF pe, ce
    ) AS l
    WHERE l.ce_user_id IS DISTINCT FROM l.pe_user_id OR l.course_id <> l.course_key
    ORDER BY l.pce_id
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
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT l.pce_id, l.ce_id
    INTO v_pce_id, v_ce_id
    FROM (
        SELECT
            r.id AS pce_id,
            ce.id AS ce_id,
            r.course_key,
            pe.user_id AS pe_user_id,
            ce.user_id AS ce_user_id,
            ce.course_id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.id = o.id
        INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
            ON r.program_enrollment_id = pe.id
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON r.course_enrollment_id = ce.id
        WHERE
            (r.course_enrollment_id, r.program_enrollment_id, r.course_key)
            IS DISTINCT FROM (o.course_enrollment_id, o.program_enrollment_id, o.course_key)
        FOR SHARE OF pe, ce
    ) AS l
    WHERE l.ce_user_id IS DISTINCT FROM l.pe_user_id OR l.course_id <> l.course_key
    ORDER BY l.pce_id
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
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT l.pce_id, l.ce_id
    INTO v_pce_id, v_ce_id
    FROM (
        SELECT
            pce.id AS pce_id,
            ce.id AS ce_id,
            r.user_id AS pe_user_id,
            ce.user_id AS ce_user_id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.id = o.id
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON r.id = pce.program_enrollment_id
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON pce.course_enrollment_id = ce.id
        WHERE r.user_id IS DISTINCT FROM o.user_id
        FOR SHARE OF pce, ce
    ) AS l
    WHERE l.ce_user_id IS DISTINCT FROM l.pe_user_id
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
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT l.pce_id, l.ce_id
    INTO v_pce_id, v_ce_id
    FROM (
        SELECT
            pce.id AS pce_id,
            r.id AS ce_id,
            pce.course_key,
            pe.user_id AS pe_user_id,
            r.user_id AS ce_user_id,
            r.course_id
        FROM changed_rows AS r
        INNER JOIN old_rows AS o ON r.id = o.id
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON r.id = pce.course_enrollment_id
        INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
            ON pce.program_enrollment_id = pe.id
        WHERE (r.user_id, r.course_id) IS DISTINCT FROM (o.user_id, o.course_id)
        FOR SHARE OF pce, pe
    ) AS l
    WHERE l.ce_user_id IS DISTINCT FROM l.pe_user_id OR l.course_id <> l.course_key
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

CREATE OR REPLACE FUNCTION enrolldb.track_waiting_on_pce_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
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
