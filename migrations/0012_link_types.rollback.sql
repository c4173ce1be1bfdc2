-- Undo 0012_link_types: the composite types of linking, with the internal functions that use
-- them (CASCADE; the function files of the release rolled back to define their own).
DROP TYPE enrolldb_internal.role_grant CASCADE;
DROP TYPE enrolldb_internal.course_enrollment_need CASCADE;
DROP TYPE enrolldb_internal.link_error CASCADE;
DROP TYPE enrolldb_internal.link_course_taken CASCADE;
DROP TYPE enrolldb_internal.link_course CASCADE;
DROP TYPE enrolldb_internal.link_target CASCADE;
DROP TYPE enrolldb_internal.link_unit CASCADE;
DROP TYPE enrolldb_internal.link_request CASCADE;
