-- enrolldb import: classify the staged rows of a Django export, then write the kept ones.
-- Owner only: EXECUTE is revoked from PUBLIC and granted to nobody (the staging schema
-- enrolldb_import is the owner's alone). Every statement is set-based: one UPDATE per rule,
-- whatever the number of rows; the few loops below run over the ten table names or a
-- table's columns, never over rows.

CREATE OR REPLACE FUNCTION enrolldb_import.tables()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN ARRAY[
    'auth_user',
    'course_overviews_courseoverview',
    'course_modes_coursemode',
    'student_courseenrollment',
    'student_courseaccessrole',
    'program_enrollments_program',
    'program_enrollments_programenrollment',
    'program_enrollments_programcourseenrollment',
    'program_enrollments_courseaccessroleassignment',
    'program_enrollments_learneridentity',
    'program_enrollments_historicalprogramenrollment',
    'program_enrollments_historicalprogramcourseenrollment',
    'student_courseenrollment_history'
];

COMMENT ON FUNCTION enrolldb_import.tables() IS
'The tables enrolldb import reads, in the order it classifies and writes them (parents first).';

CREATE OR REPLACE FUNCTION enrolldb_import.begin_import()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text;
    v_nonempty text[] := ARRAY[]::text [];
    v_has_rows boolean;
BEGIN
    -- Readers go on; no API call can write these tables until the import's transaction ends.
    LOCK TABLE
        enrolldb.auth_user,
        enrolldb.course_overviews_courseoverview,
        enrolldb.course_modes_coursemode,
        enrolldb.student_courseenrollment,
        enrolldb.student_courseaccessrole,
        enrolldb.program_enrollments_program,
        enrolldb.program_enrollments_programenrollment,
        enrolldb.program_enrollments_programcourseenrollment,
        enrolldb.program_enrollments_courseaccessroleassignment,
        enrolldb.program_enrollments_learneridentity,
        enrolldb.program_enrollments_historicalprogramenrollment,
        enrolldb.program_enrollments_historicalprogramcourseenrollment,
        enrolldb.student_courseenrollment_history
    IN EXCLUSIVE MODE;
    FOREACH v_table IN ARRAY enrolldb_import.tables() LOOP
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT FROM enrolldb.%I)', v_table)
        INTO v_has_rows;
        IF v_has_rows THEN
            v_nonempty := v_nonempty || v_table;
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(v_nonempty) > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'the database already holds rows in '
            || pg_catalog.array_to_string(v_nonempty, ', '),
            HINT = 'enrolldb import adopts an export into a freshly migrated database; merging '
            || 'into existing rows (--merge) is not supported';
    END IF;
    FOREACH v_table IN ARRAY enrolldb_import.tables() LOOP
        EXECUTE pg_catalog.format('TRUNCATE enrolldb_import.%I RESTART IDENTITY', v_table);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.begin_import() IS
'First step of an import: locks the target tables against writers, refuses a database that '
'holds rows already, empties the staging tables.';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse(
    p_table text, p_rule text, p_condition text, p_detail text
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One UPDATE: every kept row (alias s) meeting p_condition is refused by p_rule.
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%I AS s SET import_rule = %L, import_detail = %s '
        'WHERE s.import_rule IS NULL AND (%s)',
        p_table, p_rule, p_detail, p_condition
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse(text, text, text, text) IS
'Refuses, by rule p_rule, the kept staged rows of p_table (alias s) meeting p_condition; '
'p_detail is the SQL expression of the reason.';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse_by_column_types(p_table text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nulls text;
    v_null_names text;
    v_longs text;
    v_long_names text;
BEGIN
    -- NOT NULL columns of the target table: the row is refused naming every NULL one.
    SELECT
        pg_catalog.string_agg(pg_catalog.format('s.%I IS NULL', a.attname), ' OR '),
        pg_catalog.string_agg(
            pg_catalog.format('CASE WHEN s.%I IS NULL THEN %L END', a.attname, a.attname), ', '
        )
    INTO v_nulls, v_null_names
    FROM pg_catalog.pg_attribute AS a
    WHERE
        a.attrelid = pg_catalog.format('enrolldb.%I', p_table)::regclass
        AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull;
    PERFORM enrolldb_import.refuse(
        p_table, 'not_null', v_nulls,
        pg_catalog.format('pg_catalog.concat_ws('', '', %s) || '' is NULL''', v_null_names)
    );
    -- varchar(n) columns: a longer value is refused naming the column and its limit.
    SELECT
        pg_catalog.string_agg(
            pg_catalog.format('pg_catalog.char_length(s.%I) > %s', a.attname, a.atttypmod - 4),
            ' OR '
        ),
        pg_catalog.string_agg(
            pg_catalog.format(
                'CASE WHEN pg_catalog.char_length(s.%I) > %s THEN %L END',
                a.attname, a.atttypmod - 4, a.attname || ' is longer than '
                || (a.atttypmod - 4)::text || ' characters'
            ),
            ', '
        )
    INTO v_longs, v_long_names
    FROM pg_catalog.pg_attribute AS a
    WHERE
        a.attrelid = pg_catalog.format('enrolldb.%I', p_table)::regclass
        AND a.attnum > 0 AND NOT a.attisdropped
        AND a.atttypid = 'pg_catalog.varchar'::regtype AND a.atttypmod > 4
        -- A status outside its set is refused by its check constraint, however long (the
        -- history tables have no such check: there the length is checked).
        AND (a.attname <> 'status' OR p_table ~ 'histor');
    IF v_longs IS NOT NULL THEN
        PERFORM enrolldb_import.refuse(
            p_table, 'value_too_long', v_longs,
            pg_catalog.format('pg_catalog.concat_ws(''; '', %s)', v_long_names)
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse_by_column_types(text) IS
'Refuses the staged rows of p_table with NULL in a NOT NULL column of enrolldb.p_table '
'(rule not_null) or a value longer than a varchar(n) column allows (rule value_too_long).';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse_duplicates(
    p_table text, p_rule text, p_columns text, p_filter text, p_order text,
    p_label text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Among the kept rows meeting p_filter with equal p_columns, the first by p_order stays;
    -- every other is refused and names the one kept.
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET import_rule = %2$L, '
        'import_detail = ''collides on ('' || %6$L || '') with the row kept: '' || d.kept '
        'FROM ('
        '  SELECT s.import_line, '
        '    pg_catalog.row_number() OVER w AS n, '
        '    pg_catalog.first_value(pg_catalog.format(''line %%s, id %%s'', s.import_line, '
        '      pg_catalog.to_jsonb(s) ->> pg_catalog.split_part(%5$L, '','', 1))) OVER w AS kept '
        '  FROM enrolldb_import.%1$I AS s '
        '  WHERE s.import_rule IS NULL AND (%4$s) '
        '  WINDOW w AS (PARTITION BY %3$s ORDER BY %5$s, s.import_line)'
        ') AS d '
        'WHERE s.import_line = d.import_line AND d.n > 1',
        p_table, p_rule, p_columns, p_filter, p_order, COALESCE(p_label, p_columns)
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse_duplicates(text, text, text, text, text, text) IS
'Keeps, of the staged rows of p_table that agree on p_columns (among those meeting p_filter), '
'the first by p_order then input line; refuses the others by rule p_rule, naming the kept row '
'(and the columns, as p_label says them).';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse_orphans(
    p_table text, p_rule text, p_column text, p_parent text, p_parent_column text
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One outer join, grouped per child row: no per-row lookup of the parent.
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET import_rule = %2$L, '
        'import_detail = pg_catalog.format(''%4$s %5$s=%%s is %%s'', s.%3$I, '
        '  CASE WHEN d.seen THEN ''refused'' ELSE ''not in the export'' END) '
        'FROM ('
        '  SELECT c.import_line, pg_catalog.count(p.*) > 0 AS seen, '
        '    pg_catalog.count(p.*) FILTER (WHERE p.import_rule IS NULL) > 0 AS kept '
        '  FROM enrolldb_import.%1$I AS c '
        '  LEFT JOIN enrolldb_import.%4$I AS p ON p.%5$I = c.%3$I '
        '  WHERE c.import_rule IS NULL AND c.%3$I IS NOT NULL '
        '  GROUP BY c.import_line'
        ') AS d '
        'WHERE s.import_line = d.import_line AND NOT d.kept',
        p_table, p_rule, p_column, p_parent, p_parent_column
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse_orphans(text, text, text, text, text) IS
'Refuses, by the foreign key p_rule, the staged rows of p_table whose p_column names no kept row '
'of p_parent (refused, or not in the export).';

CREATE OR REPLACE FUNCTION enrolldb_import.canonicalise_keys(p_table text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%I AS s SET '
        'import_changes = pg_catalog.concat_ws(''; '', s.import_changes, '
        '  ''external_user_key '' || pg_catalog.to_json(s.external_user_key)::text || '' -> '' '
        '  || pg_catalog.to_json(enrolldb.canonical_external_key(s.external_user_key))::text), '
        'external_user_key = enrolldb.canonical_external_key(s.external_user_key) '
        'WHERE s.import_rule IS NULL '
        'AND s.external_user_key <> enrolldb.canonical_external_key(s.external_user_key)',
        p_table
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.canonicalise_keys(text) IS
'Replaces every staged external_user_key of p_table by its canonical form (NFC, invisible '
'characters at both ends removed) and records the change.';

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

    PERFORM enrolldb_import.refuse_duplicates('auth_user', 'auth_user_pk', 'id', 'TRUE', 'id');
    PERFORM enrolldb_import.refuse_duplicates(
        'auth_user', 'auth_user_username_uq', 'username', 'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'course_overviews_courseoverview', 'courseoverview_pk', 'id', 'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'course_modes_coursemode', 'coursemode_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        'course_modes_coursemode', 'coursemode_course_fk', 'course_id',
        'course_overviews_courseoverview', 'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'course_modes_coursemode', 'coursemode_course_mode_currency_uq',
        'course_id, mode_slug, currency', 'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseenrollment', 'courseenrollment_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        'student_courseenrollment', 'courseenrollment_user_fk', 'user_id', 'auth_user', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        'student_courseenrollment', 'courseenrollment_course_fk', 'course_id',
        'course_overviews_courseoverview', 'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseenrollment', 'courseenrollment_user_course_uq', 'user_id, course_id',
        'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseaccessrole', 'courseaccessrole_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        'student_courseaccessrole', 'courseaccessrole_user_fk', 'user_id', 'auth_user', 'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'student_courseaccessrole', 'courseaccessrole_user_org_course_role_uq',
        'user_id, org, course_id, role', 'TRUE', 'id'
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_program', 'program_pk', 'program_uuid', 'TRUE', 'program_uuid'
    );

    PERFORM enrolldb_import.classify_program_enrollments();
    PERFORM enrolldb_import.classify_program_course_enrollments();

    -- A masters course enrollment that no kept active program course enrollment backs
    -- would be unbacked_masters_enrollment for doctor: it is imported inactive.
    UPDATE enrolldb_import.student_courseenrollment AS s
    SET
        is_active = FALSE,
        import_changes = pg_catalog.concat_ws(
            '; ', s.import_changes,
            'is_active true -> false (no active program course enrollment backs this masters '
            || 'enrollment: unbacked_masters_enrollment)'
        )
    WHERE
        s.import_rule IS NULL AND s.is_active AND s.mode = 'masters'
        AND NOT EXISTS (
            SELECT FROM enrolldb_import.program_enrollments_programcourseenrollment AS p
            WHERE
                p.course_enrollment_id = s.id AND p.import_rule IS NULL
                AND p.status = 'active'
        );

    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_courseaccessroleassignment', 'courseaccessroleassignment_pk', 'id',
        'TRUE', 'id'
    );
    PERFORM enrolldb_import.refuse(
        'program_enrollments_courseaccessroleassignment', 'courseaccessroleassignment_role_ck',
        's.role <> ''staff''', '''role '' || pg_catalog.quote_literal(s.role) || '' is not staff'''
    );
    PERFORM enrolldb_import.refuse_orphans(
        'program_enrollments_courseaccessroleassignment', 'courseaccessroleassignment_enrollment_fk',
        'enrollment_id', 'program_enrollments_programcourseenrollment', 'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_courseaccessroleassignment',
        'courseaccessroleassignment_role_enrollment_uq', 'role, enrollment_id', 'TRUE', 'id'
    );
    -- Linking grants the role of an active row of an active user and deletes the assignment;
    -- one still pending there is what doctor reports as unfulfilled_role_assignment.
    PERFORM enrolldb_import.refuse(
        'program_enrollments_courseaccessroleassignment', 'unfulfilled_role_assignment',
        'EXISTS (SELECT FROM enrolldb_import.program_enrollments_programcourseenrollment AS p '
        'INNER JOIN enrolldb_import.auth_user AS u ON p.import_user_id = u.id '
        'WHERE p.id = s.enrollment_id AND p.import_rule IS NULL AND p.status = ''active'' '
        'AND p.course_enrollment_id IS NOT NULL AND u.is_active)',
        '''the program course enrollment is active and linked to an active user: the role '
        || 'belongs in student_courseaccessrole'''
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_learneridentity', 'learneridentity_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.refuse(
        'program_enrollments_learneridentity', 'learneridentity_key_canonical_ck',
        'NOT enrolldb.is_canonical_external_key(s.external_user_key)',
        '''external_user_key is empty once canonical, or longer than 255 characters'''
    );
    PERFORM enrolldb_import.refuse_orphans(
        'program_enrollments_learneridentity', 'learneridentity_user_fk', 'user_id', 'auth_user',
        'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_learneridentity', 'learneridentity_org_key_uq',
        'organization_key, pg_catalog.lower(external_user_key)', 'TRUE', 'id',
        'organization_key, lower(external_user_key)'
    );

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
    -- The history of a refused row goes with it; the history of a row the export does not
    -- hold (deleted before the export) is kept.
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET import_rule = ''history_of_refused_row'', '
        'import_detail = pg_catalog.format(''%2$s id=%%s is refused'', s.id) '
        'FROM ('
        '  SELECT l.id FROM enrolldb_import.%2$I AS l GROUP BY l.id '
        '  HAVING pg_catalog.count(*) FILTER (WHERE l.import_rule IS NULL) = 0'
        ') AS r '
        'WHERE s.id = r.id AND s.import_rule IS NULL',
        p_table, p_live
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_history(text, text, text) IS
'The rules of a history file p_table (constraint prefix p_prefix) whose rows belong to p_live '
'(part of classify).';

CREATE OR REPLACE FUNCTION enrolldb_import.classify_program_enrollments()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_t text := 'program_enrollments_programenrollment';
BEGIN
    PERFORM enrolldb_import.refuse_duplicates(v_t, 'programenrollment_pk', 'id', 'TRUE', 'id');
    PERFORM enrolldb_import.refuse(
        v_t, 'programenrollment_status_ck',
        's.status NOT IN (''enrolled'', ''pending'', ''suspended'', ''canceled'', ''ended'')',
        '''status '' || pg_catalog.quote_literal(s.status) || '' is not one of enrolled, '
        || 'pending, suspended, canceled, ended'''
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
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programenrollment_user_program_curriculum_uq',
        'user_id, program_uuid, curriculum_uuid', 's.user_id IS NOT NULL', 'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programenrollment_key_program_curriculum_uq',
        'pg_catalog.lower(external_user_key), program_uuid, curriculum_uuid',
        's.external_user_key IS NOT NULL', 'id',
        'lower(external_user_key), program_uuid, curriculum_uuid'
    );
    UPDATE enrolldb_import.program_enrollments_programenrollment AS s
    SET import_org = p.authoring_organization_key
    FROM enrolldb_import.program_enrollments_program AS p
    WHERE s.program_uuid = p.program_uuid AND s.import_rule IS NULL AND p.import_rule IS NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_program_enrollments() IS
'The rules of program enrollments, in policy order (part of classify).';

CREATE OR REPLACE FUNCTION enrolldb_import.classify_program_course_enrollments()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_t text := 'program_enrollments_programcourseenrollment';
BEGIN
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programcourseenrollment_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.refuse(
        v_t, 'programcourseenrollment_status_ck', 's.status NOT IN (''active'', ''inactive'')',
        '''status '' || pg_catalog.quote_literal(s.status) || '' is not one of active, inactive'''
    );
    PERFORM enrolldb_import.refuse_orphans(
        v_t, 'programcourseenrollment_program_enrollment_fk', 'program_enrollment_id',
        'program_enrollments_programenrollment', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        v_t, 'programcourseenrollment_course_enrollment_fk', 'course_enrollment_id',
        'student_courseenrollment', 'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programcourseenrollment_enrollment_course_uq', 'program_enrollment_id, course_key',
        'TRUE', 'id'
    );

    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        import_user_id = pe.user_id,
        import_org = pe.import_org,
        import_lower_key = pg_catalog.lower(pe.external_user_key)
    FROM enrolldb_import.program_enrollments_programenrollment AS pe
    WHERE s.program_enrollment_id = pe.id AND s.import_rule IS NULL AND pe.import_rule IS NULL;

    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        import_rule = 'programcourseenrollment_course_enrollment_match_ck',
        import_detail = pg_catalog.format(
            'course enrollment id %s belongs to user %s and course %s; the program enrollment to '
            || 'user %s and this row to course %s', ce.id, ce.user_id, ce.course_id,
            COALESCE(s.import_user_id::text, 'none (waiting)'), s.course_key
        )
    FROM enrolldb_import.student_courseenrollment AS ce
    WHERE
        s.course_enrollment_id = ce.id AND s.import_rule IS NULL AND ce.import_rule IS NULL
        AND (ce.user_id IS DISTINCT FROM s.import_user_id OR ce.course_id <> s.course_key);
    PERFORM enrolldb_import.refuse(
        v_t, 'realized_without_course_enrollment',
        's.import_user_id IS NOT NULL AND s.course_enrollment_id IS NULL',
        '''the program enrollment is linked to user '' || s.import_user_id '
        || '|| '' but this row has no course enrollment'''
    );

    -- An active row pointing at an inactive course enrollment gives no access: it is imported
    -- inactive (doctor: active_enrollment_without_access), so it cannot win the rules below.
    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        status = 'inactive',
        import_changes = pg_catalog.concat_ws(
            '; ', s.import_changes,
            'status active -> inactive (course enrollment ' || s.course_enrollment_id
            || ' is inactive: active_enrollment_without_access)'
        )
    FROM enrolldb_import.student_courseenrollment AS ce
    WHERE
        s.course_enrollment_id = ce.id AND s.import_rule IS NULL AND s.status = 'active'
        AND ce.import_rule IS NULL AND NOT ce.is_active;

    -- One active row per course enrollment (so per user and course), and per organization's
    -- waiting key and course: the lowest id keeps it.
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programcourseenrollment_active_course_enrollment_uq', 'course_enrollment_id',
        's.status = ''active'' AND s.course_enrollment_id IS NOT NULL', 'id'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'waitinglearneractivecourse_learner_course_uq',
        'import_org, import_lower_key, course_key',
        's.status = ''active'' AND s.import_user_id IS NULL AND s.import_lower_key IS NOT NULL',
        'id', 'the waiting learner''s organization, lower(external_user_key), course_key'
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_program_course_enrollments() IS
'The rules of program course enrollments, in policy order (part of classify).';

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
            '  pg_catalog.pg_get_serial_sequence(%L, ''history_id''), m.id) '
            'FROM (SELECT pg_catalog.max(t.history_id) AS id FROM enrolldb.%I AS t) AS m '
            'WHERE m.id IS NOT NULL',
            'enrolldb.' || v_table, v_table
        );
    END LOOP;

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
    -- for a row deleted before the export, in its history).
    FOREACH v_table IN ARRAY (enrolldb_import.tables())[1:10] LOOP
        CONTINUE WHEN v_table IN ('course_overviews_courseoverview', 'program_enrollments_program');
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(%L, ''id''), m.id) '
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

CREATE OR REPLACE FUNCTION enrolldb_import.summary()
RETURNS TABLE (table_name text, read bigint, imported bigint, changed bigint, refused bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT u.t, u.r, u.i, u.c, u.x FROM (' || (
        SELECT pg_catalog.string_agg(
            pg_catalog.format(
                'SELECT %2$s AS o, %1$L::text AS t, pg_catalog.count(*) AS r, '
                'pg_catalog.count(*) FILTER (WHERE s.import_rule IS NULL '
                '  AND s.import_changes IS NULL) AS i, '
                'pg_catalog.count(*) FILTER (WHERE s.import_rule IS NULL '
                '  AND s.import_changes IS NOT NULL) AS c, '
                'pg_catalog.count(*) FILTER (WHERE s.import_rule IS NOT NULL) AS x '
                'FROM enrolldb_import.%1$I AS s',
                t.name, t.ord
            ),
            ' UNION ALL ' ORDER BY t.ord
        )
        FROM unnest(enrolldb_import.tables()) WITH ORDINALITY AS t (name, ord)
    ) || ') AS u ORDER BY u.o';
END;
$$;

COMMENT ON FUNCTION enrolldb_import.summary() IS
'Per table: rows read, imported as is, imported changed, refused (they add up to read).';

CREATE OR REPLACE FUNCTION enrolldb_import.report()
RETURNS TABLE (
    table_name text, line bigint, id text, fate text, rule text, detail text, changes text,
    input text
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT u.t, u.l, u.i, u.f, u.r, u.d, u.c, u.j FROM (' || (
        SELECT pg_catalog.string_agg(
            pg_catalog.format(
                'SELECT %2$s AS o, %1$L::text AS t, s.import_line AS l, '
                'COALESCE(pg_catalog.to_jsonb(s) ->> ''id'', '
                '  pg_catalog.to_jsonb(s) ->> ''program_uuid'') AS i, '
                'CASE WHEN s.import_rule IS NULL THEN ''changed'' ELSE ''refused'' END AS f, '
                's.import_rule AS r, s.import_detail AS d, s.import_changes AS c, '
                '(pg_catalog.to_jsonb(s) - ''{import_line,import_rule,import_detail,'
                'import_changes,import_org,import_user_id,import_lower_key}''::text [])::text AS j '
                'FROM enrolldb_import.%1$I AS s '
                'WHERE s.import_rule IS NOT NULL OR s.import_changes IS NOT NULL',
                t.name, t.ord
            ),
            ' UNION ALL ' ORDER BY t.ord
        )
        FROM unnest(enrolldb_import.tables()) WITH ORDINALITY AS t (name, ord)
    ) || ') AS u ORDER BY u.o, u.l';
END;
$$;

COMMENT ON FUNCTION enrolldb_import.report() IS
'Every staged row not imported as is: its table, input line, id, fate (changed or refused), '
'rule, detail, changes and the row as staged (JSON; keys already canonical).';

CREATE OR REPLACE FUNCTION enrolldb_import.end_import()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY enrolldb_import.tables() LOOP
        EXECUTE pg_catalog.format('TRUNCATE enrolldb_import.%I', v_table);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.end_import() IS
'Last step of an import, before its commit: empties the staging tables.';

REVOKE ALL ON FUNCTION enrolldb_import.tables() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.begin_import() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse(text, text, text, text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse_by_column_types(text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse_duplicates(text, text, text, text, text, text)
FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse_orphans(text, text, text, text, text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.canonicalise_keys(text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_program_enrollments() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_history(text, text, text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_program_course_enrollments() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.write_kept_rows() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.summary() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.report() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.end_import() FROM public;
