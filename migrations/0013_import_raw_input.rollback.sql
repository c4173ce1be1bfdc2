-- Rollback of 0013: the raw input tables.

DROP TABLE enrolldb_import.auth_user_raw;
DROP TABLE enrolldb_import.course_overviews_courseoverview_raw;
DROP TABLE enrolldb_import.course_modes_coursemode_raw;
DROP TABLE enrolldb_import.student_courseenrollment_raw;
DROP TABLE enrolldb_import.student_courseaccessrole_raw;
DROP TABLE enrolldb_import.program_enrollments_program_raw;
DROP TABLE enrolldb_import.program_enrollments_programenrollment_raw;
DROP TABLE enrolldb_import.program_enrollments_programcourseenrollment_raw;
DROP TABLE enrolldb_import.program_enrollments_courseaccessroleassignment_raw;
DROP TABLE enrolldb_import.program_enrollments_learneridentity_raw;
DROP TABLE enrolldb_import.program_enrollments_historicalprogramenrollment_raw;
DROP TABLE enrolldb_import.program_enrollments_historicalprogramcourseenrollment_raw;
DROP TABLE enrolldb_import.student_courseenrollment_history_raw;

-- The import functions whose signature or result changed with 0013 (the function files of
-- this version define them): an older version's files could not CREATE OR REPLACE them
-- (`summary()` gained the column `present`), so its `enrolldb migrate` would stop.
DROP FUNCTION IF EXISTS enrolldb_import.summary();
DROP FUNCTION IF EXISTS enrolldb_import.begin_import(boolean);
