-- Raw input of `enrolldb import`: every column text, so a value that is not of its
-- column's type is refused by rule (type:<column>) for its row instead of stopping the COPY.
-- depends: 0012_link_types

-- Each enrolldb_import.<table>_raw mirrors the data columns of enrolldb_import.<table> as
-- text, plus import_line (the data row's number in its file). COPY fills it; the import's
-- stage() casts every row into the typed staging table (a row with a value that does not
-- cast is staged with NULL there and refused by type:<column>) and empties it. UNLOGGED and
-- empty outside an import's transaction, like the staging tables (migration 0009).

CREATE UNLOGGED TABLE enrolldb_import.auth_user_raw (
    id text,
    username text,
    email text,
    is_active text,
    date_joined text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.course_overviews_courseoverview_raw (
    id text,
    org text,
    display_name text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.course_modes_coursemode_raw (
    id text,
    course_id text,
    mode_slug text,
    mode_display_name text,
    min_price text,
    currency text,
    expiration_datetime text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.student_courseenrollment_raw (
    id text,
    user_id text,
    course_id text,
    created text,
    is_active text,
    mode text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.student_courseaccessrole_raw (
    id text,
    user_id text,
    org text,
    course_id text,
    role text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_program_raw (
    program_uuid text,
    authoring_organization_key text,
    title text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_programenrollment_raw (
    id text,
    created text,
    modified text,
    user_id text,
    external_user_key text,
    program_uuid text,
    curriculum_uuid text,
    status text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_programcourseenrollment_raw (
    id text,
    created text,
    modified text,
    program_enrollment_id text,
    course_enrollment_id text,
    course_key text,
    status text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_courseaccessroleassignment_raw (
    id text,
    created text,
    modified text,
    role text,
    enrollment_id text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_learneridentity_raw (
    id text,
    organization_key text,
    external_user_key text,
    user_id text,
    created text,
    modified text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_historicalprogramenrollment_raw (
    id text,
    created text,
    modified text,
    user_id text,
    external_user_key text,
    program_uuid text,
    curriculum_uuid text,
    status text,
    history_id text,
    history_date text,
    history_type text,
    history_change_reason text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_historicalprogramcourseenrollment_raw (
    id text,
    created text,
    modified text,
    program_enrollment_id text,
    course_enrollment_id text,
    course_key text,
    status text,
    history_id text,
    history_date text,
    history_type text,
    history_change_reason text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

CREATE UNLOGGED TABLE enrolldb_import.student_courseenrollment_history_raw (
    id text,
    user_id text,
    course_id text,
    created text,
    is_active text,
    mode text,
    history_id text,
    history_date text,
    history_type text,
    history_change_reason text,
    import_line bigint GENERATED ALWAYS AS IDENTITY
);

COMMENT ON TABLE enrolldb_import.auth_user_raw IS
'Raw input of auth_user.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.course_overviews_courseoverview_raw IS
'Raw input of course_overviews_courseoverview.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.course_modes_coursemode_raw IS
'Raw input of course_modes_coursemode.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.student_courseenrollment_raw IS
'Raw input of student_courseenrollment.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.student_courseaccessrole_raw IS
'Raw input of student_courseaccessrole.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.program_enrollments_program_raw IS
'Raw input of program_enrollments_program.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.program_enrollments_programenrollment_raw IS
'Raw input of program_enrollments_programenrollment.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.program_enrollments_programcourseenrollment_raw IS
'Raw input of program_enrollments_programcourseenrollment.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.program_enrollments_courseaccessroleassignment_raw IS
'Raw input of program_enrollments_courseaccessroleassignment.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.program_enrollments_learneridentity_raw IS
'Raw input of program_enrollments_learneridentity.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.program_enrollments_historicalprogramenrollment_raw IS
'Raw input of program_enrollments_historicalprogramenrollment.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.program_enrollments_historicalprogramcourseenrollment_raw IS
'Raw input of program_enrollments_historicalprogramcourseenrollment.csv, every column text '
'(empty outside an import).';
COMMENT ON TABLE enrolldb_import.student_courseenrollment_history_raw IS
'Raw input of student_courseenrollment_history.csv, every column text '
'(empty outside an import).';

-- The import's functions whose signature or result changes with this version (--merge,
-- the present count): the post-apply hook creates them again.
DROP FUNCTION IF EXISTS enrolldb_import.begin_import();
DROP FUNCTION IF EXISTS enrolldb_import.summary();
