-- check_integrity: report states that break the rules of enrolldb. docs/reference.md,
-- check_integrity. One internal function per rule (060_integrity_rules.sql); this is their
-- union, in one order.

CREATE OR REPLACE FUNCTION enrolldb.check_integrity()
RETURNS TABLE (
    violation text,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    course_enrollment_id integer,
    detail text
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET jit = off
AS $$
    SELECT * FROM enrolldb_internal.integrity_active_enrollment_without_access()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_unbacked_masters_enrollment()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_double_active_course()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_realized_without_course_enrollment()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_course_enrollment_mismatch()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_shared_active_course_enrollment()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_noncanonical_external_key()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_unfulfilled_role_assignment()
    UNION ALL
    SELECT * FROM enrolldb_internal.integrity_history_out_of_date()
    ORDER BY 1, 2, 3, 4;
$$;

COMMENT ON FUNCTION enrolldb.check_integrity() IS
'Health check: no rows means healthy. Reports active_enrollment_without_access, '
'unbacked_masters_enrollment, double_active_course, realized_without_course_enrollment, '
'unfulfilled_role_assignment, history_out_of_date, and states the constraints make impossible '
'(course_enrollment_mismatch, shared_active_course_enrollment, noncanonical_external_key).';

REVOKE ALL ON FUNCTION enrolldb.check_integrity() FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.check_integrity() TO enrolldb_app, enrolldb_readonly;
