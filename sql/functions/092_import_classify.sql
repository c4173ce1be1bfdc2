-- enrolldb import: the policy, every rule in the order it applies (docs/reference.md,
-- "Importing a Django export").

CREATE OR REPLACE FUNCTION enrolldb_import.classify()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Every rule joins whole staging tables: hash joins, linear whatever the statistics say. A
-- nested loop chosen on stale estimates (the import_* columns are filled after ANALYZE)
-- took 23 s for 6,000 rows of 100,000 in a measured run.
SET enable_nestloop = off
AS $$
DECLARE
    v_table text;
BEGIN
    -- The order of the rules is the policy (docs/reference.md, "Importing a Django export"):
    -- a row takes the first rule it breaks; parents are decided before their children.
    PERFORM enrolldb_import.canonicalise_keys('program_enrollments_programenrollment');
    PERFORM enrolldb_import.canonicalise_keys('program_enrollments_learneridentity');
    FOREACH v_table IN ARRAY enrolldb_import.tables() LOOP
        EXECUTE pg_catalog.format('ANALYZE enrolldb_import.%I', v_table);
        PERFORM enrolldb_import.refuse_by_column_types(v_table);
    END LOOP;

    PERFORM enrolldb_import.classify_lms_tables();
    PERFORM enrolldb_import.classify_program_enrollments();
    PERFORM enrolldb_import.classify_program_course_enrollments();
    PERFORM enrolldb_import.classify_dependents();

    PERFORM enrolldb_import.classify_history(
        'program_enrollments_historicalprogramenrollment', 'historicalprogramenrollment',
        'program_enrollments_programenrollment'
    );
    PERFORM enrolldb_import.classify_history(
        'program_enrollments_historicalprogramcourseenrollment',
        'historicalprogramcourseenrollment', 'program_enrollments_programcourseenrollment'
    );
    PERFORM enrolldb_import.classify_history(
        'student_courseenrollment_history', 'courseenrollment_history', 'student_courseenrollment'
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify() IS
'Gives every staged row its fate: kept as is, kept changed (import_changes), or refused '
'(import_rule, import_detail). Set-based: one statement per rule.';

CREATE OR REPLACE FUNCTION enrolldb_import.classify_lms_tables()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Merge by id (nothing to find in an empty database): after each table's duplicate
    -- keys, mark_existing (already present, or refused by the primary key naming the
    -- columns that differ); before each unique rule among the export's rows, the same rule
    -- against the database's rows, which always stay.
    PERFORM enrolldb_import.refuse_duplicates('auth_user', 'auth_user_pk', 'id', 'TRUE', 'id');
    PERFORM enrolldb_import.mark_existing('auth_user', 'id', 'auth_user_pk');
    PERFORM enrolldb_import.refuse_existing_collisions(
        'auth_user', 'auth_user_username_uq', 'username', 'TRUE', 'TRUE'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'auth_user', 'auth_user_username_uq', 'username', 'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'course_overviews_courseoverview', 'courseoverview_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.mark_existing(
        'course_overviews_courseoverview', 'id', 'courseoverview_pk'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'course_modes_coursemode', 'coursemode_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.mark_existing('course_modes_coursemode', 'id', 'coursemode_pk');
    PERFORM enrolldb_import.refuse_orphans(
        'course_modes_coursemode', 'coursemode_course_fk', 'course_id',
        'course_overviews_courseoverview', 'id'
    );
    PERFORM enrolldb_import.refuse_existing_collisions(
        'course_modes_coursemode', 'coursemode_course_mode_currency_uq',
        'course_id, mode_slug, currency', 'TRUE', 'TRUE'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'course_modes_coursemode', 'coursemode_course_mode_currency_uq',
        'course_id, mode_slug, currency', 'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseenrollment', 'courseenrollment_pk', 'id', 'TRUE', 'id'
    );
    -- As written: an active masters course enrollment no active program course enrollment
    -- of the database backs is imported inactive (classify_dependents), so it is compared so.
    PERFORM enrolldb_import.mark_existing(
        'student_courseenrollment', 'id', 'courseenrollment_pk', 'is_active',
        's.is_active AND (s.mode IS DISTINCT FROM ''masters'' OR EXISTS ('
        'SELECT FROM enrolldb.program_enrollments_programcourseenrollment AS p '
        'WHERE p.course_enrollment_id = s.id AND p.status = ''active''))'
    );
    PERFORM enrolldb_import.refuse_orphans(
        'student_courseenrollment', 'courseenrollment_user_fk', 'user_id', 'auth_user', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        'student_courseenrollment', 'courseenrollment_course_fk', 'course_id',
        'course_overviews_courseoverview', 'id'
    );
    PERFORM enrolldb_import.refuse_existing_collisions(
        'student_courseenrollment', 'courseenrollment_user_course_uq', 'user_id, course_id',
        'TRUE', 'TRUE'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseenrollment', 'courseenrollment_user_course_uq', 'user_id, course_id',
        'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseaccessrole', 'courseaccessrole_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.mark_existing(
        'student_courseaccessrole', 'id', 'courseaccessrole_pk'
    );
    PERFORM enrolldb_import.refuse_orphans(
        'student_courseaccessrole', 'courseaccessrole_user_fk', 'user_id', 'auth_user', 'id'
    );
    PERFORM enrolldb_import.refuse_existing_collisions(
        'student_courseaccessrole', 'courseaccessrole_user_org_course_role_uq',
        'user_id, org, course_id, role', 'TRUE', 'TRUE'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseaccessrole', 'courseaccessrole_user_org_course_role_uq',
        'user_id, org, course_id, role', 'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_program', 'program_pk', 'program_uuid', 'TRUE', 'program_uuid'
    );
    PERFORM enrolldb_import.mark_existing(
        'program_enrollments_program', 'program_uuid', 'program_pk'
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_lms_tables() IS
'The rules of the LMS tables and the program catalog, in policy order (part of classify).';

CREATE OR REPLACE FUNCTION enrolldb_import.classify_history(
    p_table text, p_prefix text, p_live text
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM enrolldb_import.refuse(
        p_table, p_prefix || '_type_ck', 's.history_type NOT IN (''+'', ''~'', ''-'')',
        '''history_type '' || pg_catalog.quote_literal(s.history_type) || '' is not +, ~ or -'''
    );
    PERFORM enrolldb_import.refuse_duplicates(
        p_table, p_prefix || '_pk', 'history_id', 'TRUE', 'history_id'
    );
    PERFORM enrolldb_import.mark_existing(p_table, 'history_id', p_prefix || '_pk');
    -- The history of a refused row goes with it; the history of a row the export does not
    -- hold (deleted before the export) is kept.
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET import_rule = ''history_of_refused_row'', '
        'import_detail = pg_catalog.format(''%2$s id=%%s is refused'', s.id) '
        'FROM ('
        '  SELECT l.id FROM enrolldb_import.%2$I AS l GROUP BY l.id '
        '  HAVING pg_catalog.count(*) FILTER (WHERE l.import_rule IS NULL '
        '    OR l.import_rule = ''already_present'') = 0'
        ') AS r '
        'WHERE s.id = r.id AND s.import_rule IS NULL',
        p_table, p_live
    );
    -- Merge: a row the database holds keeps its history as it is (its newest history row
    -- is the row, as check_integrity wants); new history rows for it are refused.
    PERFORM enrolldb_import.refuse(
        p_table, 'history_of_existing_row',
        pg_catalog.format('EXISTS (SELECT FROM enrolldb.%I AS l WHERE l.id = s.id)', p_live),
        pg_catalog.format(
            '''%s id='' || s.id || '' is in the database: its history is not added to''',
            p_live
        )
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_history(text, text, text) IS
'The rules of a history file p_table (constraint prefix p_prefix) whose rows belong to p_live '
'(part of classify); merge: history rows already present, or of a row the database holds.';

CREATE OR REPLACE FUNCTION enrolldb_import.classify_program_enrollments()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_t text := 'program_enrollments_programenrollment';
BEGIN
    PERFORM enrolldb_import.refuse_duplicates(v_t, 'programenrollment_pk', 'id', 'TRUE', 'id');
    PERFORM enrolldb_import.mark_existing(v_t, 'id', 'programenrollment_pk');
    PERFORM enrolldb_import.refuse(
        v_t, 'programenrollment_status_ck',
        -- The one list of statuses (migration 0016), as the table's constraint reads it.
        's.status <> ALL(pg_catalog.enum_range('
        || 'NULL::enrolldb_internal.program_enrollment_status)::text[])',
        '''status '' || pg_catalog.quote_literal(s.status) || '' is not one of '' || '
        || 'pg_catalog.array_to_string(pg_catalog.enum_range('
        || 'NULL::enrolldb_internal.program_enrollment_status)::text[], '', '')'
    );
    PERFORM enrolldb_import.refuse(
        v_t, 'programenrollment_user_or_key_ck',
        's.user_id IS NULL AND s.external_user_key IS NULL',
        '''neither user_id nor external_user_key'''
    );
    PERFORM enrolldb_import.refuse(
        v_t, 'programenrollment_key_canonical_ck',
        'NOT enrolldb.is_canonical_external_key(s.external_user_key)',
        '''external_user_key is empty once canonical, or longer than 255 characters'''
    );
    PERFORM enrolldb_import.refuse_orphans(
        v_t, 'programenrollment_user_fk', 'user_id', 'auth_user', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        v_t, 'programenrollment_program_fk', 'program_uuid', 'program_enrollments_program',
        'program_uuid'
    );
    PERFORM enrolldb_import.refuse_existing_collisions(
        v_t, 'programenrollment_user_program_curriculum_uq',
        'user_id, program_uuid, curriculum_uuid', 's.user_id IS NOT NULL',
        's.user_id IS NOT NULL'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programenrollment_user_program_curriculum_uq',
        'user_id, program_uuid, curriculum_uuid', 's.user_id IS NOT NULL', 'id'
    );
    PERFORM enrolldb_import.refuse_existing_collisions(
        v_t, 'programenrollment_key_program_curriculum_uq',
        'pg_catalog.lower(external_user_key), program_uuid, curriculum_uuid',
        's.external_user_key IS NOT NULL', 's.external_user_key IS NOT NULL', 'id',
        'lower(external_user_key), program_uuid, curriculum_uuid'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programenrollment_key_program_curriculum_uq',
        'pg_catalog.lower(external_user_key), program_uuid, curriculum_uuid',
        's.external_user_key IS NOT NULL', 'id',
        'lower(external_user_key), program_uuid, curriculum_uuid'
    );
    -- The program's organization (for the waiting rule): the export's program, else (merge)
    -- the database's.
    UPDATE enrolldb_import.program_enrollments_programenrollment AS s
    SET import_org = p.authoring_organization_key
    FROM enrolldb_import.program_enrollments_program AS p
    WHERE s.program_uuid = p.program_uuid AND s.import_rule IS NULL AND p.import_rule IS NULL;
    UPDATE enrolldb_import.program_enrollments_programenrollment AS s
    SET import_org = p.authoring_organization_key
    FROM enrolldb.program_enrollments_program AS p
    WHERE s.program_uuid = p.program_uuid AND s.import_rule IS NULL AND s.import_org IS NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_program_enrollments() IS
'The rules of program enrollments, in policy order (part of classify).';
