-- enrolldb import: write the kept rows, ids as given, one statement per table.

CREATE OR REPLACE FUNCTION enrolldb_import.write_kept_rows()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- The history triggers label every row written here 'import'.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'import', TRUE
    );
    v_table text;
BEGIN
    PERFORM enrolldb_import.write_history_rows();

    INSERT INTO enrolldb.auth_user (id, username, email, is_active, date_joined)
    SELECT s.id, s.username, s.email, s.is_active, s.date_joined
    FROM enrolldb_import.auth_user AS s WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.course_overviews_courseoverview (id, org, display_name)
    SELECT s.id, s.org, s.display_name
    FROM enrolldb_import.course_overviews_courseoverview AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.course_modes_coursemode (
        id, course_id, mode_slug, mode_display_name, min_price, currency, expiration_datetime
    )
    SELECT
        s.id, s.course_id, s.mode_slug, s.mode_display_name, s.min_price, s.currency,
        s.expiration_datetime
    FROM enrolldb_import.course_modes_coursemode AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.student_courseenrollment (id, user_id, course_id, created, is_active, mode)
    SELECT s.id, s.user_id, s.course_id, s.created, s.is_active, s.mode
    FROM enrolldb_import.student_courseenrollment AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.student_courseaccessrole (id, user_id, org, course_id, role)
    SELECT s.id, s.user_id, s.org, s.course_id, s.role
    FROM enrolldb_import.student_courseaccessrole AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.program_enrollments_program (
        program_uuid, authoring_organization_key, title
    )
    SELECT s.program_uuid, s.authoring_organization_key, s.title
    FROM enrolldb_import.program_enrollments_program AS s
    WHERE s.import_rule IS NULL ORDER BY s.program_uuid;

    INSERT INTO enrolldb.program_enrollments_programenrollment (
        id, created, modified, user_id, external_user_key, program_uuid, curriculum_uuid, status
    )
    SELECT
        s.id, s.created, s.modified, s.user_id, s.external_user_key, s.program_uuid,
        s.curriculum_uuid, s.status
    FROM enrolldb_import.program_enrollments_programenrollment AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.program_enrollments_programcourseenrollment (
        id, created, modified, program_enrollment_id, course_enrollment_id, course_key, status
    )
    SELECT
        s.id, s.created, s.modified, s.program_enrollment_id, s.course_enrollment_id,
        s.course_key, s.status
    FROM enrolldb_import.program_enrollments_programcourseenrollment AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment (
        id, created, modified, role, enrollment_id
    )
    SELECT s.id, s.created, s.modified, s.role, s.enrollment_id
    FROM enrolldb_import.program_enrollments_courseaccessroleassignment AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    INSERT INTO enrolldb.program_enrollments_learneridentity (
        id, organization_key, external_user_key, user_id, created, modified
    )
    SELECT s.id, s.organization_key, s.external_user_key, s.user_id, s.created, s.modified
    FROM enrolldb_import.program_enrollments_learneridentity AS s
    WHERE s.import_rule IS NULL ORDER BY s.id;

    -- Django ids are kept: each identity continues after the largest one imported (live or,
    -- for a row deleted before the export, in its history), never moving back (merge: the
    -- database's rows and the ids it handed out already).
    FOREACH v_table IN ARRAY (enrolldb_import.tables())[1:10] LOOP
        CONTINUE WHEN v_table IN ('course_overviews_courseoverview', 'program_enrollments_program');
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(%1$L, ''id''), '
            '  GREATEST(m.id, pg_catalog.pg_sequence_last_value('
            '    pg_catalog.pg_get_serial_sequence(%1$L, ''id'')::regclass))) '
            'FROM (SELECT pg_catalog.max(t.id) AS id FROM ('
            '  SELECT l.id FROM enrolldb.%I AS l UNION ALL '
            '  SELECT h.id FROM enrolldb_import.%I AS h WHERE h.import_rule IS NULL'
            ') AS t) AS m '
            'WHERE m.id IS NOT NULL',
            'enrolldb.' || v_table, v_table,
            CASE v_table
                WHEN 'program_enrollments_programenrollment'
                    THEN 'program_enrollments_historicalprogramenrollment'
                WHEN 'program_enrollments_programcourseenrollment'
                    THEN 'program_enrollments_historicalprogramcourseenrollment'
                WHEN 'student_courseenrollment' THEN 'student_courseenrollment_history'
                ELSE v_table
            END
        );
    END LOOP;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.write_kept_rows() IS
'Writes the kept staged rows, ids as given, in one statement per table (history reason '
'import), then moves each identity past the largest id.';

CREATE OR REPLACE FUNCTION enrolldb_import.write_history_rows()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text;
BEGIN
    -- Given history rows first, ids and all; the 'import' row of each imported row follows.
    INSERT INTO enrolldb.program_enrollments_historicalprogramenrollment (
        id, created, modified, user_id, external_user_key, program_uuid, curriculum_uuid,
        status, history_id, history_date, history_type, history_change_reason
    ) OVERRIDING SYSTEM VALUE
    SELECT
        s.id, s.created, s.modified, s.user_id, s.external_user_key, s.program_uuid,
        s.curriculum_uuid, s.status, s.history_id, s.history_date, s.history_type,
        s.history_change_reason
    FROM enrolldb_import.program_enrollments_historicalprogramenrollment AS s
    WHERE s.import_rule IS NULL ORDER BY s.history_id;

    INSERT INTO enrolldb.program_enrollments_historicalprogramcourseenrollment (
        id, created, modified, program_enrollment_id, course_enrollment_id, course_key, status,
        history_id, history_date, history_type, history_change_reason
    ) OVERRIDING SYSTEM VALUE
    SELECT
        s.id, s.created, s.modified, s.program_enrollment_id, s.course_enrollment_id,
        s.course_key, s.status, s.history_id, s.history_date, s.history_type,
        s.history_change_reason
    FROM enrolldb_import.program_enrollments_historicalprogramcourseenrollment AS s
    WHERE s.import_rule IS NULL ORDER BY s.history_id;

    INSERT INTO enrolldb.student_courseenrollment_history (
        id, user_id, course_id, created, is_active, mode, history_id, history_date,
        history_type, history_change_reason
    ) OVERRIDING SYSTEM VALUE
    SELECT
        s.id, s.user_id, s.course_id, s.created, s.is_active, s.mode, s.history_id,
        s.history_date, s.history_type, s.history_change_reason
    FROM enrolldb_import.student_courseenrollment_history AS s
    WHERE s.import_rule IS NULL ORDER BY s.history_id;

    FOREACH v_table IN ARRAY ARRAY[
        'program_enrollments_historicalprogramenrollment',
        'program_enrollments_historicalprogramcourseenrollment',
        'student_courseenrollment_history'
    ] LOOP
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.setval('
            '  pg_catalog.pg_get_serial_sequence(%1$L, ''history_id''), '
            '  GREATEST(m.id, pg_catalog.pg_sequence_last_value('
            '    pg_catalog.pg_get_serial_sequence(%1$L, ''history_id'')::regclass))) '
            'FROM (SELECT pg_catalog.max(t.history_id) AS id FROM enrolldb.%2$I AS t) AS m '
            'WHERE m.id IS NOT NULL',
            'enrolldb.' || v_table, v_table
        );
    END LOOP;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.write_history_rows() IS
'Writes the kept rows of the history files, history_id as given, and moves each history '
'identity past the largest (part of write_kept_rows, before the live rows).';

REVOKE ALL ON FUNCTION enrolldb_import.write_kept_rows() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.write_history_rows() FROM public;

CREATE OR REPLACE FUNCTION enrolldb_import.sequence_positions()
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Sequences are not transactional: a run rolled back (a dry run, a run the last check
    -- refuses) would leave them moved. This is where they stood, to put them back.
    SELECT COALESCE(
        pg_catalog.jsonb_object_agg(
            d.objid::regclass::text, pg_catalog.pg_sequence_last_value(d.objid::regclass)
        ),
        '{}'::jsonb
    )
    FROM pg_catalog.pg_depend AS d
    INNER JOIN pg_catalog.pg_class AS c ON d.objid = c.oid
    WHERE
        d.classid = 'pg_catalog.pg_class'::regclass AND c.relkind = 'S' AND d.deptype = 'i'
        AND d.refobjid IN (
            SELECT pg_catalog.format('enrolldb.%I', t.name)::regclass
            FROM unnest(enrolldb_import.tables()) AS t (name)
        );
$$;

COMMENT ON FUNCTION enrolldb_import.sequence_positions() IS
'The last value of each identity sequence of the imported tables (NULL: never used), as JSON, '
'for restore_sequences.';

CREATE OR REPLACE FUNCTION enrolldb_import.restore_sequences(p_positions jsonb)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    -- Run inside the import's transaction, before it is rolled back: the tables are locked
    -- against writers (begin_import), so no one else has drawn from these sequences.
    SELECT pg_catalog.count(
        CASE
            WHEN p.value = 'null'::jsonb
                THEN pg_catalog.setval(p.key::regclass, s.seqstart, FALSE)
            ELSE pg_catalog.setval(p.key::regclass, (p.value #>> '{}')::bigint, TRUE)
        END
    )
    FROM pg_catalog.jsonb_each(p_positions) AS p
    INNER JOIN pg_catalog.pg_sequence AS s ON p.key::regclass = s.seqrelid;
$$;

COMMENT ON FUNCTION enrolldb_import.restore_sequences(jsonb) IS
'Puts the identity sequences back where sequence_positions() found them (a dry run, or a run '
'refused after writing, changes nothing).';

REVOKE ALL ON FUNCTION enrolldb_import.sequence_positions() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.restore_sequences(jsonb) FROM public;
