-- Composite types of linking: the rows that travel between the internal functions of
-- sql/functions/011-030 as arrays of one type, instead of parallel arrays zipped back
-- together with unnest(a, b, c, ...).
-- depends: 0011_internal_schema

-- Why a migration: sql/functions is re-deployed on every migrate and a type cannot be
-- replaced while functions use it; types are schema, like tables. Only the owner uses them
-- (schema enrolldb_internal is never granted).

CREATE TYPE enrolldb_internal.link_request AS (
    ord integer,
    external_user_key text,
    username text,
    lower_key text,
    user_id integer,
    error text,
    relinked boolean
);

COMMENT ON TYPE enrolldb_internal.link_request IS
'One element of a link_program_enrollments call: its position (ord, from 1), the key and '
'username as given, the key''s comparable form (lower_key, NULL when invalid), the user found '
'for the username, the first error of the rules checked so far (NULL: none) and whether it '
'takes an enrollment from another user (relinked).';

CREATE TYPE enrolldb_internal.link_unit AS (
    unit integer,
    program_enrollment_id integer,
    user_id integer
);

COMMENT ON TYPE enrolldb_internal.link_unit IS
'A program enrollment to be linked to a user, with the unit it belongs to: the enrollments of '
'one unit succeed or fail together (link_locked).';

CREATE TYPE enrolldb_internal.link_target AS (
    unit integer,
    program_enrollment_id integer,
    user_id integer,
    username text,
    old_user_id integer,
    program_uuid uuid,
    curriculum_uuid uuid
);

COMMENT ON TYPE enrolldb_internal.link_target IS
'A link_unit as link planning reads it: the target user''s username, the enrollment''s current '
'user (old_user_id, NULL when waiting), its program and curriculum.';

CREATE TYPE enrolldb_internal.link_course AS (
    unit integer,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    user_id integer,
    username text,
    program_uuid uuid,
    course_key text,
    status text
);

COMMENT ON TYPE enrolldb_internal.link_course IS
'A program course enrollment of a link_target (user_id: the target user), as link planning '
'reads it.';

CREATE TYPE enrolldb_internal.link_course_taken AS (
    unit integer,
    program_enrollment_id integer,
    program_course_enrollment_id integer,
    username text,
    course_key text,
    other_program_enrollment_id integer
);

COMMENT ON TYPE enrolldb_internal.link_course_taken IS
'An active link_course whose course enrollment of the target user is already used by another '
'active program course enrollment, of program enrollment other_program_enrollment_id.';

CREATE TYPE enrolldb_internal.link_error AS (
    unit integer,
    program_enrollment_id integer,
    phase integer,
    course_key text,
    message text
);

COMMENT ON TYPE enrolldb_internal.link_error IS
'A reason a unit of a link fails. The first per unit is reported: by program enrollment, then '
'course_key ('''' for the user collision), then phase (0 user, 1 missing course, 2 conflict).';

CREATE TYPE enrolldb_internal.course_enrollment_need AS (
    user_id integer,
    course_key text,
    any_active boolean,
    course_enrollment_id integer
);

COMMENT ON TYPE enrolldb_internal.course_enrollment_need IS
'A (user, course) that realized program course enrollments need a course enrollment for: '
'whether any of them is active, and the course enrollment that exists (NULL: none yet).';

CREATE TYPE enrolldb_internal.role_grant AS (
    assignment_id integer,
    user_id integer,
    org text,
    course_key text,
    role text
);

COMMENT ON TYPE enrolldb_internal.role_grant IS
'A pending course access role assignment that becomes a course access role of the user.';
