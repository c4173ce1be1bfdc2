-- enrolldb import, classification of the course side: program course enrollments, the
-- course enrollments they point at, and the rows that depend on them (role assignments,
-- identities). The program side and the LMS tables are in 092_import_classify.sql; the
-- driver enrolldb_import.classify() there calls these in order.

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
    -- As written: an active row on a course enrollment the database holds inactive is
    -- imported inactive (classify_program_course_enrollment_links), so it is compared so.
    PERFORM enrolldb_import.mark_existing(
        v_t, 'id', 'programcourseenrollment_pk', 'status',
        'CASE WHEN s.status = ''active'' AND EXISTS (SELECT FROM '
        'enrolldb.student_courseenrollment AS c WHERE c.id = s.course_enrollment_id '
        'AND NOT c.is_active) THEN ''inactive'' ELSE s.status END'
    );
    PERFORM enrolldb_import.refuse(
        v_t, 'programcourseenrollment_status_ck',
        's.status <> ALL(pg_catalog.enum_range('
        || 'NULL::enrolldb_internal.program_course_enrollment_status)::text[])',
        '''status '' || pg_catalog.quote_literal(s.status) || '' is not one of '' || '
        || 'pg_catalog.array_to_string(pg_catalog.enum_range('
        || 'NULL::enrolldb_internal.program_course_enrollment_status)::text[], '', '')'
    );
    PERFORM enrolldb_import.refuse_orphans(
        v_t, 'programcourseenrollment_program_enrollment_fk', 'program_enrollment_id',
        'program_enrollments_programenrollment', 'id'
    );
    PERFORM enrolldb_import.refuse_orphans(
        v_t, 'programcourseenrollment_course_enrollment_fk', 'course_enrollment_id',
        'student_courseenrollment', 'id'
    );
    PERFORM enrolldb_import.refuse_existing_collisions(
        v_t, 'programcourseenrollment_enrollment_course_uq', 'program_enrollment_id, course_key',
        'TRUE', 'TRUE'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programcourseenrollment_enrollment_course_uq', 'program_enrollment_id, course_key',
        'TRUE', 'id'
    );

    -- The program enrollment's user, organization and lowered key: the export's row, else
    -- (merge) the database's.
    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        import_user_id = pe.user_id,
        import_org = pe.import_org,
        import_lower_key = pg_catalog.lower(pe.external_user_key)
    FROM enrolldb_import.program_enrollments_programenrollment AS pe
    WHERE s.program_enrollment_id = pe.id AND s.import_rule IS NULL AND pe.import_rule IS NULL;
    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        import_user_id = pe.user_id,
        import_org = p.authoring_organization_key,
        import_lower_key = pg_catalog.lower(pe.external_user_key)
    FROM enrolldb.program_enrollments_programenrollment AS pe
    INNER JOIN enrolldb.program_enrollments_program AS p ON pe.program_uuid = p.program_uuid
    WHERE
        s.program_enrollment_id = pe.id AND s.import_rule IS NULL AND s.import_org IS NULL;

    PERFORM enrolldb_import.classify_program_course_enrollment_links();

    -- One active row per course enrollment (so per user and course), and per organization's
    -- waiting key and course: the database's row stays, then the lowest id keeps it.
    PERFORM enrolldb_import.refuse_existing_collisions(
        v_t, 'programcourseenrollment_active_course_enrollment_uq', 'course_enrollment_id',
        's.status = ''active'' AND s.course_enrollment_id IS NOT NULL', 's.status = ''active'''
    );
    PERFORM enrolldb_import.refuse_duplicates(
        v_t, 'programcourseenrollment_active_course_enrollment_uq', 'course_enrollment_id',
        's.status = ''active'' AND s.course_enrollment_id IS NOT NULL', 'id'
    );
    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        import_rule = 'waitinglearneractivecourse_learner_course_uq',
        import_detail = 'collides on (the waiting learner''s organization, '
        || 'lower(external_user_key), course_key) with the row in the database: id '
        || w.program_course_enrollment_id
    FROM enrolldb.waiting_learner_active_course AS w
    WHERE
        s.import_rule IS NULL AND s.status = 'active' AND s.import_user_id IS NULL
        AND w.organization_key = s.import_org AND w.lower_external_user_key = s.import_lower_key
        AND w.course_key = s.course_key;
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

CREATE OR REPLACE FUNCTION enrolldb_import.classify_program_course_enrollment_links()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The course enrollment a row points at: the export's kept row, else (merge) the
    -- database's (a refused one has refused the row already, by the foreign key).
    WITH ce AS (
        SELECT k.id, k.user_id, k.course_id, k.is_active
        FROM enrolldb_import.student_courseenrollment AS k
        WHERE k.import_rule IS NULL
        UNION ALL
        SELECT d.id, d.user_id, d.course_id, d.is_active
        FROM enrolldb.student_courseenrollment AS d
        WHERE NOT EXISTS (
            SELECT FROM enrolldb_import.student_courseenrollment AS k
            WHERE k.id = d.id AND k.import_rule IS NULL
        )
    )

    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        import_rule = 'programcourseenrollment_course_enrollment_match_ck',
        import_detail = pg_catalog.format(
            'course enrollment id %s belongs to user %s and course %s; the program enrollment to '
            || 'user %s and this row to course %s', ce.id, ce.user_id, ce.course_id,
            COALESCE(s.import_user_id::text, 'none (waiting)'), s.course_key
        )
    FROM ce
    WHERE
        s.course_enrollment_id = ce.id AND s.import_rule IS NULL
        AND (ce.user_id IS DISTINCT FROM s.import_user_id OR ce.course_id <> s.course_key);
    PERFORM enrolldb_import.refuse(
        'program_enrollments_programcourseenrollment', 'realized_without_course_enrollment',
        's.import_user_id IS NOT NULL AND s.course_enrollment_id IS NULL',
        '''the program enrollment is linked to user '' || s.import_user_id '
        || '|| '' but this row has no course enrollment'''
    );

    -- An active row pointing at an inactive course enrollment gives no access: it is imported
    -- inactive (doctor: active_enrollment_without_access), so it cannot win the one-active
    -- rules.
    WITH ce AS (
        SELECT k.id, k.is_active
        FROM enrolldb_import.student_courseenrollment AS k
        WHERE k.import_rule IS NULL
        UNION ALL
        SELECT d.id, d.is_active
        FROM enrolldb.student_courseenrollment AS d
        WHERE NOT EXISTS (
            SELECT FROM enrolldb_import.student_courseenrollment AS k
            WHERE k.id = d.id AND k.import_rule IS NULL
        )
    )

    UPDATE enrolldb_import.program_enrollments_programcourseenrollment AS s
    SET
        status = 'inactive',
        import_changes = pg_catalog.concat_ws(
            '; ', s.import_changes,
            'status active -> inactive (course enrollment ' || s.course_enrollment_id
            || ' is inactive: active_enrollment_without_access)'
        )
    FROM ce
    WHERE
        s.course_enrollment_id = ce.id AND s.import_rule IS NULL AND s.status = 'active'
        AND NOT ce.is_active;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_program_course_enrollment_links() IS
'Program course enrollments and their course enrollments (the export''s, or the database''s): '
'the match rule, realized rows without one, active rows on an inactive one made inactive '
'(part of classify).';

CREATE OR REPLACE FUNCTION enrolldb_import.classify_dependents()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A masters course enrollment that no kept active program course enrollment backs (nor,
    -- merge, an active one of the database) would be unbacked_masters_enrollment for doctor:
    -- it is imported inactive.
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
        )
        AND NOT EXISTS (
            SELECT FROM enrolldb.program_enrollments_programcourseenrollment AS p
            WHERE p.course_enrollment_id = s.id AND p.status = 'active'
        );

    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_courseaccessroleassignment', 'courseaccessroleassignment_pk', 'id',
        'TRUE', 'id'
    );
    PERFORM enrolldb_import.mark_existing(
        'program_enrollments_courseaccessroleassignment', 'id', 'courseaccessroleassignment_pk'
    );
    PERFORM enrolldb_import.refuse(
        'program_enrollments_courseaccessroleassignment', 'courseaccessroleassignment_role_ck',
        's.role <> ''staff''', '''role '' || pg_catalog.quote_literal(s.role) || '' is not staff'''
    );
    PERFORM enrolldb_import.refuse_orphans(
        'program_enrollments_courseaccessroleassignment', 'courseaccessroleassignment_enrollment_fk',
        'enrollment_id', 'program_enrollments_programcourseenrollment', 'id'
    );
    PERFORM enrolldb_import.refuse_existing_collisions(
        'program_enrollments_courseaccessroleassignment',
        'courseaccessroleassignment_role_enrollment_uq', 'role, enrollment_id', 'TRUE', 'TRUE'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_courseaccessroleassignment',
        'courseaccessroleassignment_role_enrollment_uq', 'role, enrollment_id', 'TRUE', 'id'
    );
    -- Linking grants the role of an active row of an active user and deletes the assignment;
    -- one still pending there is what doctor reports as unfulfilled_role_assignment.
    -- The program course enrollment and its user: the export's kept rows, else (merge) the
    -- database's.
    PERFORM enrolldb_import.refuse(
        'program_enrollments_courseaccessroleassignment', 'unfulfilled_role_assignment',
        'EXISTS (SELECT FROM ('
        '  SELECT p.id, p.import_user_id AS user_id FROM '
        '  enrolldb_import.program_enrollments_programcourseenrollment AS p '
        '  WHERE p.import_rule IS NULL AND p.status = ''active'' '
        '  AND p.course_enrollment_id IS NOT NULL '
        '  UNION ALL SELECT p.id, pe.user_id '
        '  FROM enrolldb.program_enrollments_programcourseenrollment AS p '
        '  INNER JOIN enrolldb.program_enrollments_programenrollment AS pe '
        '  ON p.program_enrollment_id = pe.id '
        '  WHERE p.status = ''active'' AND p.course_enrollment_id IS NOT NULL '
        '  AND NOT EXISTS (SELECT FROM '
        '    enrolldb_import.program_enrollments_programcourseenrollment AS k '
        '    WHERE k.id = p.id AND k.import_rule IS NULL)'
        ') AS p INNER JOIN ('
        '  SELECT u.id, u.is_active FROM enrolldb_import.auth_user AS u '
        '  WHERE u.import_rule IS NULL '
        '  UNION ALL SELECT u.id, u.is_active FROM enrolldb.auth_user AS u '
        '  WHERE NOT EXISTS (SELECT FROM enrolldb_import.auth_user AS k '
        '    WHERE k.id = u.id AND k.import_rule IS NULL)'
        ') AS u ON p.user_id = u.id '
        'WHERE p.id = s.enrollment_id AND u.is_active)',
        '''the program course enrollment is active and linked to an active user: the role '
        || 'belongs in student_courseaccessrole'''
    );

    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_learneridentity', 'learneridentity_pk', 'id', 'TRUE', 'id'
    );
    PERFORM enrolldb_import.mark_existing(
        'program_enrollments_learneridentity', 'id', 'learneridentity_pk'
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
    PERFORM enrolldb_import.refuse_existing_collisions(
        'program_enrollments_learneridentity', 'learneridentity_org_key_uq',
        'organization_key, pg_catalog.lower(external_user_key)', 'TRUE', 'TRUE', 'id',
        'organization_key, lower(external_user_key)'
    );
    PERFORM enrolldb_import.refuse_duplicates(
        'program_enrollments_learneridentity', 'learneridentity_org_key_uq',
        'organization_key, pg_catalog.lower(external_user_key)', 'TRUE', 'id',
        'organization_key, lower(external_user_key)'
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.classify_dependents() IS
'After the program course enrollments: unbacked masters course enrollments, role '
'assignments, learner identities (part of classify).';

REVOKE ALL ON FUNCTION enrolldb_import.classify() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_lms_tables() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_history(text, text, text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_program_enrollments() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_program_course_enrollments() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_program_course_enrollment_links() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.classify_dependents() FROM public;
