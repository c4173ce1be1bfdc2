-- Rules a CHECK cannot express: modified moves forward; a program course enrollment's course
-- enrollment belongs to its program enrollment's user and to its course, whichever row changes.
-- depends: 0002_history

CREATE FUNCTION enrolldb.touch_modified()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- now() is the transaction's start: a second update in the same transaction still moves
    -- modified forward, by a microsecond.
    NEW.modified := GREATEST(now(), OLD.modified + INTERVAL '1 microsecond');
    NEW.created := OLD.created;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION enrolldb.touch_modified() IS
'Row trigger before update: modified moves forward on every update, created never changes.';

CREATE TRIGGER programenrollment_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_programenrollment
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

CREATE TRIGGER programcourseenrollment_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_programcourseenrollment
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

CREATE TRIGGER learneridentity_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_learneridentity
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

CREATE TRIGGER courseaccessroleassignment_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_courseaccessroleassignment
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

-- The course-enrollment match rule, checked once per statement over all changed rows. The
-- rows read are locked FOR SHARE so that two transactions changing the two sides of the
-- rule at once serialise instead of each passing on its own snapshot.

CREATE FUNCTION enrolldb.check_pce_course_enrollment_from_pce()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT r.id, ce.id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON r.program_enrollment_id = pe.id
    INNER JOIN enrolldb.student_courseenrollment AS ce
        ON r.course_enrollment_id = ce.id
    WHERE ce.user_id IS DISTINCT FROM pe.user_id OR ce.course_id <> r.course_key
    ORDER BY r.id
    LIMIT 1
    FOR SHARE OF pe, ce;

    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'programcourseenrollment_course_enrollment_match_ck',
            TABLE = 'program_enrollments_programcourseenrollment',
            SCHEMA = 'enrolldb',
            MESSAGE = pg_catalog.format(
                'program course enrollment %s points at course enrollment %s, which belongs to '
                'another user or course',
                v_pce_id, v_ce_id
            ),
            HINT = 'A program course enrollment may only point at its own user''s course '
            'enrollment for its course_key.';
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb.check_pce_course_enrollment_from_pce() IS
'Statement trigger on program course enrollments: each course_enrollment_id set belongs to the '
'program enrollment''s user and to course_key.';

CREATE FUNCTION enrolldb.check_pce_course_enrollment_from_pe()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT pce.id, ce.id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
        ON r.id = pce.program_enrollment_id
    INNER JOIN enrolldb.student_courseenrollment AS ce
        ON pce.course_enrollment_id = ce.id
    WHERE ce.user_id IS DISTINCT FROM r.user_id
    ORDER BY pce.id
    LIMIT 1
    FOR SHARE OF pce, ce;

    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'programcourseenrollment_course_enrollment_match_ck',
            TABLE = 'program_enrollments_programenrollment',
            SCHEMA = 'enrolldb',
            MESSAGE = pg_catalog.format(
                'program course enrollment %s points at course enrollment %s, which belongs to '
                'another user than its program enrollment now names',
                v_pce_id, v_ce_id
            ),
            HINT = 'Unlink the program enrollment (enrolldb.unlink_program_enrollment) before '
            'changing its user.';
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb.check_pce_course_enrollment_from_pe() IS
'Statement trigger on program enrollments: a changed user_id still owns every course enrollment '
'its program course enrollments point at.';

CREATE FUNCTION enrolldb.check_pce_course_enrollment_from_ce()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_pce_id integer;
    v_ce_id integer;
BEGIN
    SELECT pce.id, r.id
    INTO v_pce_id, v_ce_id
    FROM changed_rows AS r
    INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
        ON r.id = pce.course_enrollment_id
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    WHERE r.user_id IS DISTINCT FROM pe.user_id OR r.course_id <> pce.course_key
    ORDER BY pce.id
    LIMIT 1
    FOR SHARE OF pce, pe;

    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'programcourseenrollment_course_enrollment_match_ck',
            TABLE = 'student_courseenrollment',
            SCHEMA = 'enrolldb',
            MESSAGE = pg_catalog.format(
                'course enrollment %s would no longer match the user or course of program '
                'course enrollment %s, which points at it',
                v_ce_id, v_pce_id
            );
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb.check_pce_course_enrollment_from_ce() IS
'Statement trigger on course enrollments: a changed user_id or course_id still matches every '
'program course enrollment that points at the row.';

CREATE TRIGGER programcourseenrollment_course_enrollment_match_insert
AFTER INSERT ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_pce_course_enrollment_from_pce();

CREATE TRIGGER programcourseenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_pce_course_enrollment_from_pce();

CREATE TRIGGER programenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.program_enrollments_programenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_pce_course_enrollment_from_pe();

CREATE TRIGGER courseenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.student_courseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_pce_course_enrollment_from_ce();
