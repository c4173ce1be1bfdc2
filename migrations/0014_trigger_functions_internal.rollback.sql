-- Undo 0014_trigger_functions_internal: the trigger and helper functions back in schema
-- enrolldb as 0002-0008 left them (bodies of 0006 for the match and waiting-learner
-- triggers), the triggers re-pointed at them, the internal ones dropped. The function files
-- of this release call enrolldb_internal.retired_external_key: a migrate of this release
-- re-applies 0014 before it deploys them. The unique constraint 0014 makes deferrable on
-- databases installed by 0.1.0 stays deferrable, as 0001 declares it.

CREATE FUNCTION enrolldb.record_programenrollment_history()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    INSERT INTO enrolldb.program_enrollments_historicalprogramenrollment (
        id, created, modified, user_id, external_user_key, program_uuid, curriculum_uuid,
        status, history_date, history_type, history_change_reason
    )
    SELECT
        r.id, r.created, r.modified, r.user_id, r.external_user_key, r.program_uuid,
        r.curriculum_uuid, r.status, pg_catalog.clock_timestamp(),
        CASE TG_OP WHEN 'INSERT' THEN '+' WHEN 'UPDATE' THEN '~' ELSE '-' END,
        pg_catalog.left(
            NULLIF(
                pg_catalog.current_setting('enrolldb.history_change_reason', TRUE), ''
            ),
            100
        )
    FROM changed_rows AS r
    ORDER BY r.id;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb.record_programenrollment_history() IS
'Statement-level trigger: copies the changed program enrollments into their history table.';

CREATE FUNCTION enrolldb.record_programcourseenrollment_history()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    INSERT INTO enrolldb.program_enrollments_historicalprogramcourseenrollment (
        id, created, modified, program_enrollment_id, course_enrollment_id, course_key,
        status, history_date, history_type, history_change_reason
    )
    SELECT
        r.id, r.created, r.modified, r.program_enrollment_id, r.course_enrollment_id,
        r.course_key, r.status, pg_catalog.clock_timestamp(),
        CASE TG_OP WHEN 'INSERT' THEN '+' WHEN 'UPDATE' THEN '~' ELSE '-' END,
        pg_catalog.left(
            NULLIF(
                pg_catalog.current_setting('enrolldb.history_change_reason', TRUE), ''
            ),
            100
        )
    FROM changed_rows AS r
    ORDER BY r.id;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb.record_programcourseenrollment_history() IS
'Statement-level trigger: copies the changed program course enrollments into their history table.';

CREATE FUNCTION enrolldb.record_courseenrollment_history()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    INSERT INTO enrolldb.student_courseenrollment_history (
        id, user_id, course_id, created, is_active, mode,
        history_date, history_type, history_change_reason
    )
    SELECT
        r.id, r.user_id, r.course_id, r.created, r.is_active, r.mode,
        pg_catalog.clock_timestamp(),
        CASE TG_OP WHEN 'INSERT' THEN '+' WHEN 'UPDATE' THEN '~' ELSE '-' END,
        pg_catalog.left(
            NULLIF(
                pg_catalog.current_setting('enrolldb.history_change_reason', TRUE), ''
            ),
            100
        )
    FROM changed_rows AS r
    ORDER BY r.id;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb.record_courseenrollment_history() IS
'Statement-level trigger: copies the changed course enrollments into their history table.';

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

COMMENT ON FUNCTION enrolldb.check_match_on_pce_insert() IS
'Statement trigger after insert of program course enrollments: each course enrollment set '
'belongs to the program enrollment''s user and to course_key.';

CREATE FUNCTION enrolldb.check_match_on_pce_update()
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

COMMENT ON FUNCTION enrolldb.check_match_on_pce_update() IS
'Statement trigger after update of program course enrollments: rows whose course enrollment, '
'program enrollment or course_key changed still point at their own user''s course enrollment.';

CREATE FUNCTION enrolldb.check_match_on_pe_update()
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

COMMENT ON FUNCTION enrolldb.check_match_on_pe_update() IS
'Statement trigger after update of program enrollments: a changed user_id still owns every '
'course enrollment that its program course enrollments point at.';

CREATE FUNCTION enrolldb.check_match_on_ce_update()
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

COMMENT ON FUNCTION enrolldb.check_match_on_ce_update() IS
'Statement trigger after update of course enrollments: a changed user_id or course_id still '
'matches every program course enrollment that points at the row.';

CREATE FUNCTION enrolldb.refresh_waiting_learner_active_course(
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

COMMENT ON FUNCTION enrolldb.refresh_waiting_learner_active_course(integer[]) IS
'Recomputes the waiting_learner_active_course rows of the given program course enrollments.';

CREATE FUNCTION enrolldb.track_waiting_on_pce_insert()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_pce_insert() IS
'Statement trigger after insert of program course enrollments: records active rows of waiting '
'learners in waiting_learner_active_course.';

CREATE FUNCTION enrolldb.track_waiting_on_pce_update()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_pce_update() IS
'Statement trigger after update of program course enrollments: refreshes the rows whose status, '
'program enrollment or course changed.';

CREATE FUNCTION enrolldb.track_waiting_on_pe_update()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_pe_update() IS
'Statement trigger after update of program enrollments: a change of user (linked, unlinked), '
'key or program refreshes the waiting_learner_active_course rows of their course enrollments.';

CREATE FUNCTION enrolldb.track_waiting_on_program_update()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_program_update() IS
'Statement trigger after update of programs: a new authoring organization re-keys the waiting '
'learners of the program.';

CREATE FUNCTION enrolldb.retired_external_key(
    p_program_enrollment_id integer, p_key text
)
RETURNS text
LANGUAGE sql
STABLE
STRICT
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN (
    -- The salt is hex and the id digits: ':' separates the three parts unambiguously.
    SELECT
        'retired_external_key_' || pg_catalog.encode(
            pg_catalog.sha256(
                pg_catalog.convert_to(
                    s.salt || ':' || a.id::text || ':' || a.k, 'UTF8'
                )
            ),
            'hex'
        )
    FROM (
        SELECT
            p_program_enrollment_id AS id,
            p_key AS k
    ) AS a
    CROSS JOIN enrolldb.retirement_salt AS s
);

COMMENT ON FUNCTION enrolldb.retired_external_key(integer, text) IS
'The key that replaces p_key on program enrollment p_program_enrollment_id when its user is '
'retired: retired_external_key_ || sha256(salt:id:key) in hex. Unique per enrollment, so one '
'key retired on several enrollments never collides. Executable by the owner alone.';

CREATE OR REPLACE TRIGGER courseaccessroleassignment_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_courseaccessroleassignment
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

CREATE OR REPLACE TRIGGER learneridentity_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_learneridentity
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

CREATE OR REPLACE TRIGGER program_track_waiting_update
AFTER UPDATE ON enrolldb.program_enrollments_program
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_program_update();

CREATE OR REPLACE TRIGGER programcourseenrollment_course_enrollment_match_insert
AFTER INSERT ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_pce_insert();

CREATE OR REPLACE TRIGGER programcourseenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_pce_update();

CREATE OR REPLACE TRIGGER programcourseenrollment_history_delete
AFTER DELETE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING OLD TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programcourseenrollment_history();

CREATE OR REPLACE TRIGGER programcourseenrollment_history_insert
AFTER INSERT ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programcourseenrollment_history();

CREATE OR REPLACE TRIGGER programcourseenrollment_history_update
AFTER UPDATE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programcourseenrollment_history();

CREATE OR REPLACE TRIGGER programcourseenrollment_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_programcourseenrollment
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

CREATE OR REPLACE TRIGGER programcourseenrollment_track_waiting_insert
AFTER INSERT ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_pce_insert();

CREATE OR REPLACE TRIGGER programcourseenrollment_track_waiting_update
AFTER UPDATE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_pce_update();

CREATE OR REPLACE TRIGGER programenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.program_enrollments_programenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_pe_update();

CREATE OR REPLACE TRIGGER programenrollment_history_delete
AFTER DELETE ON enrolldb.program_enrollments_programenrollment
REFERENCING OLD TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programenrollment_history();

CREATE OR REPLACE TRIGGER programenrollment_history_insert
AFTER INSERT ON enrolldb.program_enrollments_programenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programenrollment_history();

CREATE OR REPLACE TRIGGER programenrollment_history_update
AFTER UPDATE ON enrolldb.program_enrollments_programenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programenrollment_history();

CREATE OR REPLACE TRIGGER programenrollment_touch_modified
BEFORE UPDATE ON enrolldb.program_enrollments_programenrollment
FOR EACH ROW EXECUTE FUNCTION enrolldb.touch_modified();

CREATE OR REPLACE TRIGGER programenrollment_track_waiting_update
AFTER UPDATE ON enrolldb.program_enrollments_programenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_pe_update();

CREATE OR REPLACE TRIGGER courseenrollment_course_enrollment_match_update
AFTER UPDATE ON enrolldb.student_courseenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.check_match_on_ce_update();

CREATE OR REPLACE TRIGGER courseenrollment_history_delete
AFTER DELETE ON enrolldb.student_courseenrollment
REFERENCING OLD TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_courseenrollment_history();

CREATE OR REPLACE TRIGGER courseenrollment_history_insert
AFTER INSERT ON enrolldb.student_courseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_courseenrollment_history();

CREATE OR REPLACE TRIGGER courseenrollment_history_update
AFTER UPDATE ON enrolldb.student_courseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_courseenrollment_history();


DROP FUNCTION enrolldb_internal.check_match_on_ce_update();
DROP FUNCTION enrolldb_internal.check_match_on_pe_update();
DROP FUNCTION enrolldb_internal.check_match_on_pce_update();
DROP FUNCTION enrolldb_internal.check_match_on_pce_insert();
DROP FUNCTION enrolldb_internal.check_course_enrollment_match(text, integer[]);
DROP FUNCTION enrolldb_internal.raise_course_enrollment_mismatch(text, integer, integer);
DROP FUNCTION enrolldb_internal.touch_modified();
DROP FUNCTION enrolldb_internal.record_programenrollment_history();
DROP FUNCTION enrolldb_internal.record_programcourseenrollment_history();
DROP FUNCTION enrolldb_internal.record_courseenrollment_history();
DROP FUNCTION enrolldb_internal.track_waiting_on_pce_insert();
DROP FUNCTION enrolldb_internal.track_waiting_on_pce_update();
DROP FUNCTION enrolldb_internal.track_waiting_on_pe_update();
DROP FUNCTION enrolldb_internal.track_waiting_on_program_update();
DROP FUNCTION enrolldb_internal.refresh_waiting_learner_active_course(integer[]);
DROP FUNCTION enrolldb_internal.retired_external_key(integer, text);

REVOKE ALL ON FUNCTION enrolldb.record_programenrollment_history() FROM public;
REVOKE ALL ON FUNCTION enrolldb.record_programcourseenrollment_history() FROM public;
REVOKE ALL ON FUNCTION enrolldb.record_courseenrollment_history() FROM public;
REVOKE ALL ON FUNCTION enrolldb.touch_modified() FROM public;
REVOKE ALL ON FUNCTION enrolldb.raise_course_enrollment_mismatch(text, integer, integer)
FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_pce_insert() FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_pce_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_pe_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.check_match_on_ce_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.refresh_waiting_learner_active_course(integer[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_pce_insert() FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_pce_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_pe_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_program_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.retired_external_key(integer, text) FROM public;
