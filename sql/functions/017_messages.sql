-- The error texts of linking (docs/reference.md, link_program_enrollments and Linking one
-- enrollment; docs/errors.md): one builder per error kind, called by every function that
-- reports it (020 array form, 013 link planning, 030 matriculate_learner). A text is written
-- here and nowhere else.
--
-- SQL functions evaluated only for the elements that fail (inside a CASE branch or an error
-- row), so their call costs nothing on the path that succeeds.

CREATE OR REPLACE FUNCTION enrolldb_internal.invalid_key_message(p_key text)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'Invalid external user key %s', p_key
);

COMMENT ON FUNCTION enrolldb_internal.invalid_key_message(text) IS
'Rule 1 of linking (docs/reference.md, Linking one enrollment) and matriculate_learner''s '
'22023: the key, as given, is not valid (is_canonical_external_key of its canonical form).';

CREATE OR REPLACE FUNCTION enrolldb_internal.duplicate_key_message(p_key text)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'external user key %s provided multiple times', p_key
);

COMMENT ON FUNCTION enrolldb_internal.duplicate_key_message(text) IS
'Rule 2 of linking: the key (as given) is the comparable form of another element of the call.';

CREATE OR REPLACE FUNCTION enrolldb_internal.unknown_user_message(p_username text)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'No user found with username %s', p_username
);

COMMENT ON FUNCTION enrolldb_internal.unknown_user_message(text) IS
'Rule 3 of linking: no LMS user has the username.';

CREATE OR REPLACE FUNCTION enrolldb_internal.no_program_enrollment_message(
    p_program_uuid uuid,
    p_key text
)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'No program enrollment found for program uuid=%s and external student key=%s',
    p_program_uuid,
    p_key
);

COMMENT ON FUNCTION enrolldb_internal.no_program_enrollment_message(uuid, text) IS
'Rule 4 of linking: the program has no enrollment with the key (as given).';

CREATE OR REPLACE FUNCTION enrolldb_internal.already_linked_message(
    p_stored_key text,
    p_username text
)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'Program enrollment with external_student_key=%s is already linked to target account '
    'username=%s',
    p_stored_key,
    p_username
);

COMMENT ON FUNCTION enrolldb_internal.already_linked_message(text, text) IS
'Rule 5 of linking: every enrollment of the key (stored key) is already linked to the user.';

CREATE OR REPLACE FUNCTION enrolldb_internal.user_has_program_enrollment_message(
    p_username text,
    p_program_enrollment_id integer,
    p_program_uuid uuid,
    p_curriculum_uuid uuid
)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'IntegrityError: user %s already has program enrollment id=%s in program uuid=%s and '
    'curriculum uuid=%s (programenrollment_user_program_curriculum_uq)',
    p_username,
    p_program_enrollment_id,
    p_program_uuid,
    p_curriculum_uuid
);

COMMENT ON FUNCTION enrolldb_internal.user_has_program_enrollment_message(
    text, integer, uuid, uuid
) IS
'Linking (link_program_enrollments, matriculate_learner): the user already has another '
'enrollment in the program and curriculum.';

CREATE OR REPLACE FUNCTION enrolldb_internal.user_linked_twice_message(
    p_username text,
    p_program_uuid uuid,
    p_curriculum_uuid uuid
)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'IntegrityError: user %s would be linked to program uuid=%s and curriculum uuid=%s by more '
    'than one external user key of this call (programenrollment_user_program_curriculum_uq)',
    p_username,
    p_program_uuid,
    p_curriculum_uuid
);

COMMENT ON FUNCTION enrolldb_internal.user_linked_twice_message(text, uuid, uuid) IS
'Linking: two elements of one call would give the user two enrollments in one program and '
'curriculum.';

CREATE OR REPLACE FUNCTION enrolldb_internal.nonexistent_course_message(p_course_key text)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'NonExistentCourseError: %s does not exist', p_course_key
);

COMMENT ON FUNCTION enrolldb_internal.nonexistent_course_message(text) IS
'Linking: a program course enrollment''s course has no course overview.';

CREATE OR REPLACE FUNCTION enrolldb_internal.course_conflict_message(
    p_username text,
    p_course_key text,
    p_program_uuid uuid
)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.format(
    'ConflictError: %s already has an active program course enrollment for %s in program '
    'uuid=%s',
    p_username,
    p_course_key,
    p_program_uuid
);

COMMENT ON FUNCTION enrolldb_internal.course_conflict_message(text, text, uuid) IS
'Linking: the user''s course enrollment for the course is already used by an active program '
'course enrollment of the program (p_program_uuid).';
