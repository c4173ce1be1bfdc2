-- unlink_program_enrollment: take a program enrollment back from its user. docs/reference.md,
-- unlink_program_enrollment.

CREATE OR REPLACE FUNCTION enrolldb.unlink_program_enrollment(p_program_enrollment_id integer)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'unlink_program_enrollment', TRUE
    );
    v_user_id integer;
    v_program_uuid uuid;
    v_key text;
BEGIN
    IF p_program_enrollment_id IS NULL THEN
        RAISE EXCEPTION 'unlink_program_enrollment: the program enrollment id may not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    -- lock order: docs/design.md#lock-order
    -- Under REPEATABLE READ or SERIALIZABLE, the enrollment's key lock first (the global lock
    -- order): a snapshot older than a concurrent write of the key (a course enrollment this
    -- unlink would not deactivate) gets 40001. Nothing under READ COMMITTED.
    SELECT pe.program_uuid, pe.external_user_key INTO v_program_uuid, v_key
    FROM enrolldb.program_enrollments_programenrollment AS pe
    WHERE pe.id = p_program_enrollment_id;
    IF v_key IS NOT NULL THEN
        PERFORM enrolldb_internal.lock_program_keys_for_snapshot(v_program_uuid, ARRAY[v_key]);
    END IF;

    SELECT pe.user_id INTO v_user_id
    FROM enrolldb.program_enrollments_programenrollment AS pe
    WHERE pe.id = p_program_enrollment_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unlink_program_enrollment: no program enrollment with id=%',
            p_program_enrollment_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_user_id IS NULL THEN
        RETURN;
    END IF;

    PERFORM enrolldb_internal.lock_users(ARRAY[v_user_id]);
    PERFORM 1
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    WHERE pce.program_enrollment_id = p_program_enrollment_id
    ORDER BY pce.id
    FOR UPDATE;
    PERFORM 1
    FROM enrolldb.student_courseenrollment AS ce
    WHERE ce.id IN (
        SELECT pce.course_enrollment_id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.program_enrollment_id = p_program_enrollment_id
    )
    ORDER BY ce.id
    FOR UPDATE;

    PERFORM enrolldb_internal.unlink_locked(ARRAY[p_program_enrollment_id]);
END;
$$;

COMMENT ON FUNCTION enrolldb.unlink_program_enrollment(integer) IS
'Unlinks a program enrollment from its user: each course enrollment its program course '
'enrollments point at is deactivated (and moved to audit when the course has an unexpired audit '
'mode or no modes) unless another active program course enrollment still uses it; the pointers '
'and user_id become NULL. Roles already granted stay. A waiting enrollment is left as it is.';

REVOKE ALL ON FUNCTION enrolldb.unlink_program_enrollment(integer) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.unlink_program_enrollment(integer) TO enrolldb_app;
