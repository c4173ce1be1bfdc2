-- check_integrity's rules, part two: the match rule, shared course enrollments, keys, role
-- assignments and history (one internal function per rule, as in 060_integrity_rules.sql;
-- enrolldb.check_integrity() in 065 is their union).

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_course_enrollment_mismatch()
RETURNS TABLE (
    violation text,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    course_enrollment_id integer,
    detail text
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    -- States the constraints make impossible: reported in case a constraint or trigger was
    -- dropped or disabled.
    SELECT
        'course_enrollment_mismatch',
        pe.id,
        pce.id,
        ce.id,
        pg_catalog.format(
            'course enrollment of user id=%s for %s backs program course enrollment of user id=%s '
            'for %s',
            ce.user_id, ce.course_id, pe.user_id, pce.course_key
        )
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    INNER JOIN enrolldb.student_courseenrollment AS ce ON pce.course_enrollment_id = ce.id
    WHERE ce.user_id IS DISTINCT FROM pe.user_id OR ce.course_id <> pce.course_key;
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_course_enrollment_mismatch() IS
'check_integrity rule course_enrollment_mismatch: The match rule (triggers of 0014): a course '
'enrollment of another user or course backing a program course enrollment. Reported in case a '
'trigger was disabled.';

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_shared_active_course_enrollment()
RETURNS TABLE (
    violation text,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    course_enrollment_id integer,
    detail text
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    SELECT
        'shared_active_course_enrollment',
        NULL::integer,
        pce.id,
        pce.course_enrollment_id,
        'more than one active program course enrollment points at this course enrollment'
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    WHERE
        pce.status = 'active'
        AND pce.course_enrollment_id IN (
            SELECT dpce.course_enrollment_id
            FROM enrolldb.program_enrollments_programcourseenrollment AS dpce
            WHERE dpce.status = 'active' AND dpce.course_enrollment_id IS NOT NULL
            GROUP BY dpce.course_enrollment_id
            HAVING pg_catalog.count(*) > 1
        );
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_shared_active_course_enrollment() IS
'check_integrity rule shared_active_course_enrollment: Two or more active program course '
'enrollments pointing at one course enrollment (index '
'programcourseenrollment_active_course_enrollment_uq). Reported in case the index was '
'dropped.';

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_noncanonical_external_key()
RETURNS TABLE (
    violation text,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    course_enrollment_id integer,
    detail text
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    SELECT
        'noncanonical_external_key',
        pe.id,
        NULL::integer,
        NULL::integer,
        pg_catalog.format('external_user_key %L is not canonical', pe.external_user_key)
    FROM enrolldb.program_enrollments_programenrollment AS pe
    WHERE NOT enrolldb.is_canonical_external_key(pe.external_user_key);
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_noncanonical_external_key() IS
'check_integrity rule noncanonical_external_key: A program enrollment key that '
'is_canonical_external_key refuses (CHECK programenrollment_key_canonical_ck). Reported in '
'case the constraint was dropped.';

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_unfulfilled_role_assignment()
RETURNS TABLE (
    violation text,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    course_enrollment_id integer,
    detail text
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    -- A pending role that linking should already have granted.
    SELECT
        'unfulfilled_role_assignment',
        pe.id,
        pce.id,
        pce.course_enrollment_id,
        pg_catalog.format('role %s for %s is still pending for active user id=%s', a.role,
            pce.course_key, pe.user_id)
    FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
    INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
        ON a.enrollment_id = pce.id
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    INNER JOIN enrolldb.auth_user AS u ON pe.user_id = u.id
    WHERE pce.status = 'active' AND u.is_active AND pce.course_enrollment_id IS NOT NULL;
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_unfulfilled_role_assignment() IS
'check_integrity rule unfulfilled_role_assignment: A pending course role of an active program '
'course enrollment of an active user, which linking should already have granted.';

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_history_out_of_date()
RETURNS TABLE (
    violation text,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    course_enrollment_id integer,
    detail text
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    -- Nothing lost: the newest history row of every live row equals the row.
    SELECT
        'history_out_of_date',
        pe.id,
        NULL::integer,
        NULL::integer,
        'the newest history row of this program enrollment differs from the row, or is missing'
    FROM enrolldb.program_enrollments_programenrollment AS pe
    LEFT JOIN LATERAL (
        SELECT h.user_id, h.external_user_key, h.program_uuid, h.curriculum_uuid, h.status
        FROM enrolldb.program_enrollments_historicalprogramenrollment AS h
        WHERE h.id = pe.id
        ORDER BY h.history_id DESC
        LIMIT 1
    ) AS lh ON TRUE
    WHERE
        (lh.user_id, lh.external_user_key, lh.program_uuid, lh.curriculum_uuid, lh.status)
        IS DISTINCT FROM
        (pe.user_id, pe.external_user_key, pe.program_uuid, pe.curriculum_uuid, pe.status)


    UNION ALL
    SELECT
        'history_out_of_date',
        pce.program_enrollment_id,
        pce.id,
        pce.course_enrollment_id,
        'the newest history row of this program course enrollment differs from the row, or is '
        'missing'
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    LEFT JOIN LATERAL (
        SELECT h.program_enrollment_id, h.course_enrollment_id, h.course_key, h.status
        FROM enrolldb.program_enrollments_historicalprogramcourseenrollment AS h
        WHERE h.id = pce.id
        ORDER BY h.history_id DESC
        LIMIT 1
    ) AS lh ON TRUE
    WHERE
        (lh.program_enrollment_id, lh.course_enrollment_id, lh.course_key, lh.status)
        IS DISTINCT FROM
        (pce.program_enrollment_id, pce.course_enrollment_id, pce.course_key, pce.status)


    UNION ALL
    SELECT
        'history_out_of_date',
        NULL::integer,
        NULL::integer,
        ce.id,
        'the newest history row of this course enrollment differs from the row, or is missing'
    FROM enrolldb.student_courseenrollment AS ce
    LEFT JOIN LATERAL (
        SELECT h.user_id, h.course_id, h.is_active, h.mode
        FROM enrolldb.student_courseenrollment_history AS h
        WHERE h.id = ce.id
        ORDER BY h.history_id DESC
        LIMIT 1
    ) AS lh ON TRUE
    WHERE
        (lh.user_id, lh.course_id, lh.is_active, lh.mode)
        IS DISTINCT FROM (ce.user_id, ce.course_id, ce.is_active, ce.mode);
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_history_out_of_date() IS
'check_integrity rule history_out_of_date: A live row (program enrollment, program course '
'enrollment, course enrollment) whose newest history row differs from it or is missing.';
