-- The one-active rule for waiting learners, as a constraint: one active program course
-- enrollment per (organization, external key, course) among waiting program enrollments.
-- depends: 0004_retirement_salt

CREATE TABLE enrolldb.waiting_learner_active_course (
    program_course_enrollment_id integer NOT NULL,
    organization_key varchar(255) NOT NULL,
    lower_external_user_key text NOT NULL,
    course_key varchar(255) NOT NULL,
    CONSTRAINT waitinglearneractivecourse_pk PRIMARY KEY (program_course_enrollment_id),
    CONSTRAINT waitinglearneractivecourse_enrollment_fk
    FOREIGN KEY (program_course_enrollment_id)
    REFERENCES enrolldb.program_enrollments_programcourseenrollment (id) ON DELETE CASCADE,
    CONSTRAINT waitinglearneractivecourse_learner_course_uq
    UNIQUE (organization_key, lower_external_user_key, course_key)
);

COMMENT ON TABLE enrolldb.waiting_learner_active_course IS
'Maintained by triggers, never written by hand: one row per active program course enrollment '
'of a waiting program enrollment, keyed by the learner as SPEC 4.6 identifies a waiting one '
'(program''s organization, lowered external key). Its unique constraint carries the '
'one-active rule for waiting learners; realized learners are held by '
'programcourseenrollment_active_course_enrollment_uq.';

CREATE FUNCTION enrolldb.refresh_waiting_learner_active_course(
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

COMMENT ON FUNCTION enrolldb.refresh_waiting_learner_active_course(integer[]) IS
'Recomputes the waiting_learner_active_course rows of the given program course enrollments.';

CREATE FUNCTION enrolldb.track_waiting_on_pce_insert()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_pce_insert() IS
'Statement trigger after insert of program course enrollments: records active rows of waiting '
'learners in waiting_learner_active_course.';

CREATE FUNCTION enrolldb.track_waiting_on_pce_update()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_pce_update() IS
'Statement trigger after update of program course enrollments: refreshes the rows whose status, '
'program enrollment or course changed.';

CREATE FUNCTION enrolldb.track_waiting_on_pe_update()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_pe_update() IS
'Statement trigger after update of program enrollments: a change of user (linked, unlinked), '
'key or program refreshes the waiting_learner_active_course rows of their course enrollments.';

CREATE FUNCTION enrolldb.track_waiting_on_program_update()
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

COMMENT ON FUNCTION enrolldb.track_waiting_on_program_update() IS
'Statement trigger after update of programs: a new authoring organization re-keys the waiting '
'learners of the program.';

CREATE TRIGGER programcourseenrollment_track_waiting_insert
AFTER INSERT ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_pce_insert();

CREATE TRIGGER programcourseenrollment_track_waiting_update
AFTER UPDATE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_pce_update();

CREATE TRIGGER programenrollment_track_waiting_update
AFTER UPDATE ON enrolldb.program_enrollments_programenrollment
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_pe_update();

CREATE TRIGGER program_track_waiting_update
AFTER UPDATE ON enrolldb.program_enrollments_program
REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.track_waiting_on_program_update();

-- Rows that exist already (an upgrade): recorded now; a database that holds two active rows
-- for one waiting learner must be repaired first (check_integrity reports them as
-- double_active_course).
SELECT enrolldb.refresh_waiting_learner_active_course(
    (
        SELECT pg_catalog.array_agg(pce.id)
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    )
);

REVOKE ALL ON FUNCTION enrolldb.refresh_waiting_learner_active_course(integer[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_pce_insert() FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_pce_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_pe_update() FROM public;
REVOKE ALL ON FUNCTION enrolldb.track_waiting_on_program_update() FROM public;
GRANT SELECT ON enrolldb.waiting_learner_active_course TO enrolldb_app, enrolldb_readonly;
