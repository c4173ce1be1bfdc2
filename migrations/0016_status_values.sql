-- The status values of program enrollments and program course enrollments, defined once.
-- depends: 0015_write_request_types

-- Why: the lists were written in the tables' CHECK constraints, in both registrar writes and
-- in the Python client. Each list is now one enum type, in order; the constraints (same names:
-- the Python client and the docs map errors by them) and the writes' invalid-status test read
-- it with enum_range, and the client's copy is compared with it by tests/test_registrar_writes.py.
-- The columns stay varchar(9): their type, history copies and clients are unchanged.
-- (sqlfluff reads ANY in a CHECK as a function name: CP03 is off around it.)

CREATE TYPE enrolldb_internal.program_enrollment_status AS ENUM (
    'enrolled', 'pending', 'suspended', 'canceled', 'ended'
);

COMMENT ON TYPE enrolldb_internal.program_enrollment_status IS
'The statuses of a program enrollment (program_enrollments_programenrollment.status, checked '
'by programenrollment_status_ck), the one list of them.';

CREATE TYPE enrolldb_internal.program_course_enrollment_status AS ENUM ('active', 'inactive');

COMMENT ON TYPE enrolldb_internal.program_course_enrollment_status IS
'The statuses of a program course enrollment (program_enrollments_programcourseenrollment.status, '
'checked by programcourseenrollment_status_ck), the one list of them.';

ALTER TABLE enrolldb.program_enrollments_programenrollment
DROP CONSTRAINT programenrollment_status_ck,
ADD CONSTRAINT programenrollment_status_ck CHECK (
    -- noqa: disable=CP03
    status = ANY(pg_catalog.enum_range(NULL::enrolldb_internal.program_enrollment_status)::text[])
    -- noqa: enable=CP03
);

ALTER TABLE enrolldb.program_enrollments_programcourseenrollment
DROP CONSTRAINT programcourseenrollment_status_ck,
ADD CONSTRAINT programcourseenrollment_status_ck CHECK (
    -- noqa: disable=CP03
    status
    = ANY(pg_catalog.enum_range(NULL::enrolldb_internal.program_course_enrollment_status)::text[])
    -- noqa: enable=CP03
);
