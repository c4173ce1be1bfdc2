-- Staging tables of `enrolldb import`, in a schema of the owner's alone.
-- depends: 0008_invisible_key_characters_and_private_retirement

-- Why a schema of its own, never granted: an export holds every learner's keys; only the
-- owner that runs the import may read what is staged. The tables are UNLOGGED (a crash loses
-- only a run that is rolled back anyway) and hold rows only inside an import's transaction:
-- each run empties them first and last.

CREATE SCHEMA enrolldb_import;

COMMENT ON SCHEMA enrolldb_import IS
'enrolldb import: staging tables and the import''s functions. Owner only, never granted.';

REVOKE ALL ON SCHEMA enrolldb_import FROM public;

-- Every staging table has the columns of its Django table, typed like the target (keys,
-- statuses and other values the import checks are text, so a bad value is refused by rule
-- rather than by the COPY), plus:
--   import_line     the data row's number in its file (1 = the first row after the header)
--   import_rule     the rule that refuses the row; NULL while it is kept
--   import_detail   why, naming the rows it collides with
--   import_changes  what the import changed in the row (NULL: imported as is)

CREATE UNLOGGED TABLE enrolldb_import.auth_user (
    id integer,
    username text,
    email text DEFAULT '',
    is_active boolean DEFAULT TRUE,
    date_joined timestamptz DEFAULT pg_catalog.now(),
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.course_overviews_courseoverview (
    id text,
    org text,
    display_name text,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.course_modes_coursemode (
    id integer,
    course_id text,
    mode_slug text,
    mode_display_name text DEFAULT '',
    min_price integer DEFAULT 0,
    currency text DEFAULT 'usd',
    expiration_datetime timestamptz,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.student_courseenrollment (
    id integer,
    user_id integer,
    course_id text,
    created timestamptz DEFAULT pg_catalog.now(),
    is_active boolean DEFAULT TRUE,
    mode text DEFAULT 'audit',
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.student_courseaccessrole (
    id integer,
    user_id integer,
    org text DEFAULT '',
    course_id text DEFAULT '',
    role text,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_program (
    program_uuid uuid,
    authoring_organization_key text,
    title text DEFAULT '',
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_programenrollment (
    id integer,
    created timestamptz DEFAULT pg_catalog.now(),
    modified timestamptz DEFAULT pg_catalog.now(),
    user_id integer,
    external_user_key text,
    program_uuid uuid,
    curriculum_uuid uuid,
    status text,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text,
    -- Filled by the classification: the program's organization (for the waiting rule).
    import_org text
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_programcourseenrollment (
    id integer,
    created timestamptz DEFAULT pg_catalog.now(),
    modified timestamptz DEFAULT pg_catalog.now(),
    program_enrollment_id integer,
    course_enrollment_id integer,
    course_key text,
    status text,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text,
    -- Filled by the classification from the kept program enrollment: its user, or (waiting)
    -- its organization and lowered canonical key.
    import_user_id integer,
    import_org text,
    import_lower_key text
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_courseaccessroleassignment (
    id integer,
    created timestamptz DEFAULT pg_catalog.now(),
    modified timestamptz DEFAULT pg_catalog.now(),
    role text,
    enrollment_id integer,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_learneridentity (
    id integer,
    organization_key text,
    external_user_key text,
    user_id integer,
    created timestamptz DEFAULT pg_catalog.now(),
    modified timestamptz DEFAULT pg_catalog.now(),
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

-- History files (optional): the rows of Django's history tables, kept before the one row
-- with reason 'import' that each imported row gets.

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_historicalprogramenrollment (
    id integer,
    created timestamptz,
    modified timestamptz,
    user_id integer,
    external_user_key text,
    program_uuid uuid,
    curriculum_uuid uuid,
    status text,
    history_id bigint,
    history_date timestamptz,
    history_type text,
    history_change_reason text,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.program_enrollments_historicalprogramcourseenrollment (
    id integer,
    created timestamptz,
    modified timestamptz,
    program_enrollment_id integer,
    course_enrollment_id integer,
    course_key text,
    status text,
    history_id bigint,
    history_date timestamptz,
    history_type text,
    history_change_reason text,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

CREATE UNLOGGED TABLE enrolldb_import.student_courseenrollment_history (
    id integer,
    user_id integer,
    course_id text,
    created timestamptz,
    is_active boolean,
    mode text,
    history_id bigint,
    history_date timestamptz,
    history_type text,
    history_change_reason text,
    import_line bigint GENERATED ALWAYS AS IDENTITY,
    import_rule text,
    import_detail text,
    import_changes text
);

COMMENT ON TABLE enrolldb_import.auth_user IS
'Staging of auth_user.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.course_overviews_courseoverview IS
'Staging of course_overviews_courseoverview.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.course_modes_coursemode IS
'Staging of course_modes_coursemode.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.student_courseenrollment IS
'Staging of student_courseenrollment.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.student_courseaccessrole IS
'Staging of student_courseaccessrole.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.program_enrollments_program IS
'Staging of program_enrollments_program.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.program_enrollments_programenrollment IS
'Staging of program_enrollments_programenrollment.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.program_enrollments_programcourseenrollment IS
'Staging of program_enrollments_programcourseenrollment.csv during an import (empty outside '
'one).';
COMMENT ON TABLE enrolldb_import.program_enrollments_courseaccessroleassignment IS
'Staging of program_enrollments_courseaccessroleassignment.csv during an import (empty outside '
'one).';
COMMENT ON TABLE enrolldb_import.program_enrollments_learneridentity IS
'Staging of program_enrollments_learneridentity.csv during an import (empty outside one).';
COMMENT ON TABLE enrolldb_import.program_enrollments_historicalprogramenrollment IS
'Staging of program_enrollments_historicalprogramenrollment.csv during an import (empty outside '
'one).';
COMMENT ON TABLE enrolldb_import.program_enrollments_historicalprogramcourseenrollment IS
'Staging of program_enrollments_historicalprogramcourseenrollment.csv during an import (empty '
'outside one).';
COMMENT ON TABLE enrolldb_import.student_courseenrollment_history IS
'Staging of student_courseenrollment_history.csv during an import (empty outside one).';
