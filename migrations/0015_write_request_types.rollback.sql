-- Undo 0015_write_request_types: the registrar writes' row types. The function files of
-- sql/functions use them: CASCADE drops the internal functions taking or returning them
-- (the next migrate deploys them again), so run this only to go back to a release before 0015.
DROP TYPE enrolldb_internal.program_course_enrollment_write CASCADE;
DROP TYPE enrolldb_internal.program_enrollment_write CASCADE;
DROP TYPE enrolldb_internal.write_result CASCADE;
DROP TYPE enrolldb_internal.write_request CASCADE;
