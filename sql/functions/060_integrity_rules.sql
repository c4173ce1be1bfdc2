-- The rules check_integrity reports, one internal function each (docs/reference.md,
-- check_integrity; docs/design.md, Rules). Each returns the rows of its violation, in the
-- columns of enrolldb.check_integrity(), which unions them (065_check_integrity.sql).

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_active_enrollment_without_access()
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
    -- An active program course enrollment whose course enrollment gives no access.
    SELECT
        'active_enrollment_without_access',
        pce.program_enrollment_id,
        pce.id,
        ce.id,
        pg_catalog.format(
            'active program course enrollment for %s points at inactive course enrollment (mode %s)',
            pce.course_key, ce.mode
        )
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    INNER JOIN enrolldb.student_courseenrollment AS ce ON pce.course_enrollment_id = ce.id
    WHERE pce.status = 'active' AND NOT ce.is_active;
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_active_enrollment_without_access() IS
'check_integrity rule active_enrollment_without_access: An active program course enrollment '
'whose course enrollment gives no access (inactive).';

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_unbacked_masters_enrollment()
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
    -- An active masters course enrollment that no active program course enrollment backs.
    SELECT
        'unbacked_masters_enrollment',
        NULL::integer,
        NULL::integer,
        ce.id,
        pg_catalog.format('user id=%s, course %s', ce.user_id, ce.course_id)
    FROM enrolldb.student_courseenrollment AS ce
    WHERE
        ce.is_active
        AND ce.mode = 'masters'
        AND NOT EXISTS (
            SELECT FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.course_enrollment_id = ce.id AND pce.status = 'active'
        );
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_unbacked_masters_enrollment() IS
'check_integrity rule unbacked_masters_enrollment: An active masters course enrollment that '
'no active program course enrollment backs.';

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_double_active_course()
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
    -- One user with two active program course enrollments for one course.
    SELECT
        'double_active_course',
        pe.id,
        pce.id,
        pce.course_enrollment_id,
        pg_catalog.format(
            'user id=%s has %s active program course enrollments for %s',
            pe.user_id, d.n, pce.course_key
        )
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    INNER JOIN (
        SELECT dpe.user_id, dpce.course_key, pg_catalog.count(*) AS n
        FROM enrolldb.program_enrollments_programcourseenrollment AS dpce
        INNER JOIN enrolldb.program_enrollments_programenrollment AS dpe
            ON dpce.program_enrollment_id = dpe.id
        WHERE dpce.status = 'active' AND dpe.user_id IS NOT NULL
        GROUP BY dpe.user_id, dpce.course_key
        HAVING pg_catalog.count(*) > 1
    ) AS d ON pe.user_id = d.user_id AND pce.course_key = d.course_key
    WHERE pce.status = 'active'


    UNION ALL
    -- One organization's waiting key with two active program course enrollments for one course.
    SELECT
        'double_active_course',
        pe.id,
        pce.id,
        NULL::integer,
        pg_catalog.format(
            'waiting key %s of organization %s has %s active program course enrollments for %s',
            pe.external_user_key, p.authoring_organization_key, d.n, pce.course_key
        )
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    INNER JOIN enrolldb.program_enrollments_program AS p ON pe.program_uuid = p.program_uuid
    INNER JOIN (
        SELECT
            dp.authoring_organization_key,
            pg_catalog.lower(dpe.external_user_key) AS low,
            dpce.course_key,
            pg_catalog.count(*) AS n
        FROM enrolldb.program_enrollments_programcourseenrollment AS dpce
        INNER JOIN enrolldb.program_enrollments_programenrollment AS dpe
            ON dpce.program_enrollment_id = dpe.id
        INNER JOIN enrolldb.program_enrollments_program AS dp
            ON dpe.program_uuid = dp.program_uuid
        WHERE dpce.status = 'active' AND dpe.user_id IS NULL
        GROUP BY dp.authoring_organization_key, pg_catalog.lower(dpe.external_user_key), dpce.course_key
        HAVING pg_catalog.count(*) > 1
    ) AS d
        ON
            p.authoring_organization_key = d.authoring_organization_key
            AND pg_catalog.lower(pe.external_user_key) = d.low
            AND pce.course_key = d.course_key
    WHERE pce.status = 'active' AND pe.user_id IS NULL;
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_double_active_course() IS
'check_integrity rule double_active_course: The one-active rule: a user, or a waiting '
'(organization, lowered key), with two or more active program course enrollments for one '
'course; one row per such program course enrollment.';

CREATE OR REPLACE FUNCTION enrolldb_internal.integrity_realized_without_course_enrollment()
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
    -- A realized program enrollment whose program course enrollment was never given its course
    -- enrollment.
    SELECT
        'realized_without_course_enrollment',
        pe.id,
        pce.id,
        NULL::integer,
        pg_catalog.format(
            'program enrollment is linked to user id=%s but its %s program course enrollment for '
            '%s has no course enrollment',
            pe.user_id, pce.status, pce.course_key
        )
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    WHERE pe.user_id IS NOT NULL AND pce.course_enrollment_id IS NULL;
$$;

COMMENT ON FUNCTION enrolldb_internal.integrity_realized_without_course_enrollment() IS
'check_integrity rule realized_without_course_enrollment: A program course enrollment of a '
'realized (linked) program enrollment that has no course enrollment.';
