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

-- The course-enrollment match rule, checked once per statement over the rows whose relevant
-- columns changed. The rows the check reads are locked FOR SHARE *before* they are compared
-- (a locking clause in a sub-select, the comparison outside it): a concurrent transaction
-- changing the other side of the rule then makes this one wait and re-read, instead of
-- both passing on their own snapshots.

CREATE FUNCTION enrolldb.raise_course_enrollment_mismatch(
    p_table text, p_pce_id integer, p_ce_id integer
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        CONSTRAINT = 'programcourseenrollment_course_enrollment_match_ck',
        TABLE = p_table,
        SCHEMA = 'enrolldb',
        MESSAGE = pg_catalog.format(
            'program course enrollment %s would point at course enrollment %s, which does not '
            'belong to its program enrollment''s user and course',
            p_pce_id, p_ce_id
        ),
        HINT = 'A program course enrollment may only point at its own user''s course enrollment '
        'for its course_key; unlink (enrolldb.unlink_program_enrollment) before changing users.';
END;
$$;

COMMENT ON FUNCTION enrolldb.raise_course_enrollment_mismatch(text, integer, integer) IS
'Raises the course-enrollment match rule violation (SQLSTATE 23514, constraint '
'programcourseenrollment_course_enrollment_match_ck).';

CREATE FUNCTION enrolldb.check_match_on_pce_insert()
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

COMMENT ON FUNCTION enrolldb.check_match_on_pce_insert() IS
'Statement trigger after insert of program course enrollments: each course enrollment set '
'belongs to the program enrollment''s user and to course_key.';

CREATE FUNCTION enrolldb.check_match_on_pce_update()
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

COMMENT ON FUNCTION enrolldb.check_match_on_pce_update() IS
'Statement trigger after update of program course enrollments: rows whose course enrollment, '
'program enrollment or course_key changed still point at their own user''s course enrollment.';

CREATE FUNCTION enrolldb.check_match_on_pe_update()
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

COMMENT ON FUNCTION enrolldb.check_match_on_pe_update() IS
'Statement trigger after update of program enrollments: a changed user_id still owns every '
'course enrollment that its program course enrollments point at.';

CREATE FUNCTION enrolldb.check_match_on_ce_update()
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

COMMENT ON FUNCTION enrolldb.check_match_on_ce_update() IS
'Statement trigger after update of course enrollments: a changed user_id or course_id still '
'matches every program course enrollment that points at the row.';

CREATE TRIGGER programcourseenrollment_course_enrollment_match_insert
AFTER INSERT ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_pce_insert();

CREATE TRIGGER programcourseenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_pce_update();

CREATE TRIGGER programenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.program_enrollments_programenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_pe_update();

CREATE TRIGGER courseenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.student_courseenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_ce_update();

-- Trigger and helper functions are executable by nobody but their owner.
REVOKE ALL ON FUNCTION enrolldb.touch_modified() FROM public;
REVOKE ALL ON FUNCTION enrolldb.raise_course_enrollment_mismatch(text, integer, integer)
FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_pce_insert() FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_pce_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_pe_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_ce_update() FROM public;
