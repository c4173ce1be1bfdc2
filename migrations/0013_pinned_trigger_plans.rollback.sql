-- The trigger functions plan with the session's settings again.
ALTER FUNCTION enrolldb.check_match_on_pe_update() RESET enable_seqscan;
ALTER FUNCTION enrolldb.check_match_on_pe_update() RESET enable_nestloop;
ALTER FUNCTION enrolldb.check_match_on_pe_update() RESET jit;
ALTER FUNCTION enrolldb.check_match_on_ce_update() RESET enable_seqscan;
ALTER FUNCTION enrolldb.check_match_on_ce_update() RESET enable_nestloop;
ALTER FUNCTION enrolldb.check_match_on_ce_update() RESET jit;
ALTER FUNCTION enrolldb.track_waiting_on_pce_insert() RESET enable_seqscan;
ALTER FUNCTION enrolldb.track_waiting_on_pce_insert() RESET enable_nestloop;
ALTER FUNCTION enrolldb.track_waiting_on_pce_insert() RESET jit;
ALTER FUNCTION enrolldb.track_waiting_on_pce_update() RESET enable_seqscan;
ALTER FUNCTION enrolldb.track_waiting_on_pce_update() RESET enable_nestloop;
ALTER FUNCTION enrolldb.track_waiting_on_pce_update() RESET jit;
ALTER FUNCTION enrolldb.track_waiting_on_pe_update() RESET enable_seqscan;
ALTER FUNCTION enrolldb.track_waiting_on_pe_update() RESET enable_nestloop;
ALTER FUNCTION enrolldb.track_waiting_on_pe_update() RESET jit;
ALTER FUNCTION enrolldb.track_waiting_on_program_update() RESET enable_seqscan;
ALTER FUNCTION enrolldb.track_waiting_on_program_update() RESET enable_nestloop;
ALTER FUNCTION enrolldb.track_waiting_on_program_update() RESET jit;

-- The two checks of program course enrollments as 0006 defined them.
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
