-- History of program enrollments, program course enrollments and course enrollments,
-- written by statement-level triggers with transition tables.
-- depends: 0001_schema

CREATE TABLE enrolldb.program_enrollments_historicalprogramenrollment (
    id integer NOT NULL,
    created timestamptz NOT NULL,
    modified timestamptz NOT NULL,
    user_id integer,
    external_user_key varchar(255),
    program_uuid uuid NOT NULL,
    curriculum_uuid uuid NOT NULL,
    status varchar(9) NOT NULL,
    history_id bigint GENERATED ALWAYS AS IDENTITY,
    history_date timestamptz NOT NULL,
    history_type char(1) NOT NULL,
    history_change_reason varchar(100),
    CONSTRAINT historicalprogramenrollment_pk PRIMARY KEY (history_id),
    CONSTRAINT historicalprogramenrollment_type_ck CHECK (history_type IN ('+', '~', '-'))
);

CREATE INDEX historicalprogramenrollment_id_idx
ON enrolldb.program_enrollments_historicalprogramenrollment (id, history_id);

COMMENT ON TABLE enrolldb.program_enrollments_historicalprogramenrollment IS
'Every insert (+), update (~) and delete (-) of a program enrollment: the row after the change '
'(before it, for a delete). Written by trigger in the same transaction.';

CREATE TABLE enrolldb.program_enrollments_historicalprogramcourseenrollment (
    id integer NOT NULL,
    created timestamptz NOT NULL,
    modified timestamptz NOT NULL,
    program_enrollment_id integer NOT NULL,
    course_enrollment_id integer,
    course_key varchar(255) NOT NULL,
    status varchar(9) NOT NULL,
    history_id bigint GENERATED ALWAYS AS IDENTITY,
    history_date timestamptz NOT NULL,
    history_type char(1) NOT NULL,
    history_change_reason varchar(100),
    CONSTRAINT historicalprogramcourseenrollment_pk PRIMARY KEY (history_id),
    CONSTRAINT historicalprogramcourseenrollment_type_ck
    CHECK (history_type IN ('+', '~', '-'))
);

CREATE INDEX historicalprogramcourseenrollment_id_idx
ON enrolldb.program_enrollments_historicalprogramcourseenrollment (id, history_id);

CREATE INDEX historicalprogramcourseenrollment_program_enrollment_idx
ON enrolldb.program_enrollments_historicalprogramcourseenrollment (program_enrollment_id);

COMMENT ON TABLE enrolldb.program_enrollments_historicalprogramcourseenrollment IS
'Every insert (+), update (~) and delete (-) of a program course enrollment: the row after the '
'change (before it, for a delete).';

CREATE TABLE enrolldb.student_courseenrollment_history (
    id integer NOT NULL,
    user_id integer NOT NULL,
    course_id varchar(255) NOT NULL,
    created timestamptz NOT NULL,
    is_active boolean NOT NULL,
    mode varchar(100) NOT NULL,
    history_id bigint GENERATED ALWAYS AS IDENTITY,
    history_date timestamptz NOT NULL,
    history_type char(1) NOT NULL,
    history_change_reason varchar(100),
    CONSTRAINT courseenrollment_history_pk PRIMARY KEY (history_id),
    CONSTRAINT courseenrollment_history_type_ck CHECK (history_type IN ('+', '~', '-'))
);

CREATE INDEX courseenrollment_history_id_idx
ON enrolldb.student_courseenrollment_history (id, history_id);

COMMENT ON TABLE enrolldb.student_courseenrollment_history IS
'Every insert (+), update (~) and delete (-) of a course enrollment: the row after the change '
'(before it, for a delete).';

COMMENT ON COLUMN enrolldb.program_enrollments_historicalprogramenrollment.history_change_reason IS
'Name of the enrolldb API function that made the change (setting '
'enrolldb.history_change_reason); NULL for a direct write.';
COMMENT ON COLUMN
enrolldb.program_enrollments_historicalprogramcourseenrollment.history_change_reason IS
'Name of the enrolldb API function that made the change (setting '
'enrolldb.history_change_reason); NULL for a direct write.';
COMMENT ON COLUMN enrolldb.student_courseenrollment_history.history_change_reason IS
'Name of the enrolldb API function that made the change (setting '
'enrolldb.history_change_reason); NULL for a direct write.';

-- The history indexes are (id, history_id): "the newest history row of a row" is one index
-- probe whatever the statistics say (check_integrity asks it of every row).

-- One trigger function per table serves its three triggers: each trigger names its transition
-- table changed_rows (NEW TABLE for insert and update, OLD TABLE for delete).

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

CREATE TRIGGER programenrollment_history_insert
AFTER INSERT ON enrolldb.program_enrollments_programenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programenrollment_history();

CREATE TRIGGER programenrollment_history_update
AFTER UPDATE ON enrolldb.program_enrollments_programenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programenrollment_history();

CREATE TRIGGER programenrollment_history_delete
AFTER DELETE ON enrolldb.program_enrollments_programenrollment
REFERENCING OLD TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programenrollment_history();

CREATE TRIGGER programcourseenrollment_history_insert
AFTER INSERT ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programcourseenrollment_history();

CREATE TRIGGER programcourseenrollment_history_update
AFTER UPDATE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programcourseenrollment_history();

CREATE TRIGGER programcourseenrollment_history_delete
AFTER DELETE ON enrolldb.program_enrollments_programcourseenrollment
REFERENCING OLD TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_programcourseenrollment_history();

CREATE TRIGGER courseenrollment_history_insert
AFTER INSERT ON enrolldb.student_courseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_courseenrollment_history();

CREATE TRIGGER courseenrollment_history_update
AFTER UPDATE ON enrolldb.student_courseenrollment
REFERENCING NEW TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_courseenrollment_history();

CREATE TRIGGER courseenrollment_history_delete
AFTER DELETE ON enrolldb.student_courseenrollment
REFERENCING OLD TABLE AS changed_rows
FOR EACH STATEMENT EXECUTE FUNCTION enrolldb.record_courseenrollment_history();

GRANT SELECT ON
enrolldb.program_enrollments_historicalprogramenrollment,
enrolldb.program_enrollments_historicalprogramcourseenrollment,
enrolldb.student_courseenrollment_history
TO enrolldb_app, enrolldb_readonly;

-- Trigger and helper functions are executable by nobody but their owner.
REVOKE ALL ON FUNCTION enrolldb.record_programenrollment_history() FROM public;
REVOKE ALL ON FUNCTION enrolldb.record_programcourseenrollment_history() FROM public;
REVOKE ALL ON FUNCTION enrolldb.record_courseenrollment_history() FROM public;
