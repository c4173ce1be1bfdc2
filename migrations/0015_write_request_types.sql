-- The row types the registrar writes pass between their steps (parse, plan, apply).
-- depends: 0014_trigger_functions_internal

-- Why: the writes used to carry each request's state in up to seven parallel arrays zipped
-- back together by unnest(a, b, c, ...) in every statement; a column added to one array had
-- to be added to each zip. One row type per stage keeps a request's fields together, and the
-- steps (sql/functions/070-082) take and return arrays of them. Owner only, like the schema.

CREATE TYPE enrolldb_internal.write_request AS (
    request_number integer,
    external_user_key text,
    lower_key text,
    status text,
    curriculum_uuid uuid,
    course_staff boolean,
    outcome text
);

COMMENT ON TYPE enrolldb_internal.write_request IS
'One parsed request of a registrar write, numbered from 1 in input order: the key as '
'requested and as compared (comparable_external_key; NULL when invalid), the status as '
'requested, curriculum_uuid (program writes; NULL when missing or not a UUID), course_staff '
'(course writes), and the outcome parsing decided (invalid-key, duplicated, invalid-status; '
'NULL: left to the plan).';

CREATE TYPE enrolldb_internal.write_result AS (
    request_number integer,
    external_user_key text,
    outcome text,
    applied boolean
);

COMMENT ON TYPE enrolldb_internal.write_result IS
'One request''s answer of a registrar write: its number (input order), the key as requested, '
'the outcome, and whether it was applied (then the outcome is the status written).';

CREATE TYPE enrolldb_internal.program_enrollment_write AS (
    request_number integer,
    external_user_key text,
    lower_key text,
    status text,
    curriculum_uuid uuid,
    found boolean,
    user_id integer,
    outcome text,
    applied boolean
);

COMMENT ON TYPE enrolldb_internal.program_enrollment_write IS
'One request of write_program_enrollments as planned: whether the program has an enrollment '
'with the key (found), the user the organization''s identity of the key names (for a create), '
'the outcome and whether it is applied.';

CREATE TYPE enrolldb_internal.program_course_enrollment_write AS (
    request_number integer,
    external_user_key text,
    lower_key text,
    status text,
    course_staff boolean,
    program_enrollment_id integer,
    user_id integer,
    program_course_enrollment_id integer,
    outcome text,
    applied boolean
);

COMMENT ON TYPE enrolldb_internal.program_course_enrollment_write IS
'One request of write_program_course_enrollments as planned: the program enrollment it '
'writes for, its user, its existing row for the course (NULL: to create), the outcome and '
'whether it is applied.';
