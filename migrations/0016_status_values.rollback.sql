-- Undo 0016_status_values: the constraints list the values again; the enum types go. The
-- function files of sql/functions read the types, so run this only to go back to a release
-- before 0016 (or migrate again at once).
ALTER TABLE enrolldb.program_enrollments_programenrollment
DROP CONSTRAINT programenrollment_status_ck,
ADD CONSTRAINT programenrollment_status_ck
CHECK (status IN ('enrolled', 'pending', 'suspended', 'canceled', 'ended'));

ALTER TABLE enrolldb.program_enrollments_programcourseenrollment
DROP CONSTRAINT programcourseenrollment_status_ck,
ADD CONSTRAINT programcourseenrollment_status_ck CHECK (status IN ('active', 'inactive'));

DROP TYPE enrolldb_internal.program_course_enrollment_status;
DROP TYPE enrolldb_internal.program_enrollment_status;
