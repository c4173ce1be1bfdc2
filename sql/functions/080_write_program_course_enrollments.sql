-- write_program_course_enrollments: the registrar creates and updates a program's enrollments in
-- one course, under the one-active rule. docs/reference.md, write_program_course_enrollments and
-- write_program_course_enrollment_rows; docs/registrar-writes.md. Steps: 070 (arguments,
-- request parser, key locks), 081 (find, lock, plan), 082 (apply).

CREATE OR REPLACE FUNCTION enrolldb_internal.write_program_course_enrollments(
    p_program_uuid uuid,
    p_course_key text,
    p_requests enrolldb_internal.write_request[],
    p_create boolean,
    p_update boolean
)
RETURNS SETOF enrolldb_internal.write_result
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_org text := enrolldb_internal.write_program_organization(
        'write_program_course_enrollments', p_program_uuid
    );
    v_course_org text := enrolldb_internal.write_course_organization(
        'write_program_course_enrollments', p_course_key
    );
    v_plan enrolldb_internal.program_course_enrollment_write[];
BEGIN
    IF pg_catalog.cardinality(p_requests) = 0 THEN
        RETURN;
    END IF;
    -- The history triggers label every row this call writes with its name (set here: a
    -- custom setting in a SET clause needs a superuser).
    PERFORM pg_catalog.set_config(
        'enrolldb.history_change_reason', 'write_program_course_enrollments', TRUE
    );
    -- Locks, in the global order (docs/design.md): learner keys, then the program's
    -- enrollments of those keys, then (once the requests' rows are known) users, program
    -- course enrollments and course enrollments.
    PERFORM enrolldb_internal.lock_learner_keys(
        p_program_uuid,
        v_org,
        ARRAY(SELECT r.lower_key FROM unnest(p_requests) AS r WHERE r.outcome IS NULL)
    );
    v_plan := ARRAY(
        SELECT w
        FROM enrolldb_internal.find_program_course_enrollments(
            p_program_uuid, p_course_key, p_requests
        ) AS w
    );
    PERFORM enrolldb_internal.lock_program_course_enrollments(p_course_key, v_plan);
    v_plan := ARRAY(
        SELECT w
        FROM enrolldb_internal.plan_program_course_enrollment_writes(
            v_org, p_course_key, v_plan, p_create, p_update
        ) AS w
    );
    PERFORM enrolldb_internal.apply_program_course_enrollment_writes(p_course_key, v_plan);
    PERFORM enrolldb_internal.apply_course_staff(p_course_key, v_course_org, v_plan);
    RETURN QUERY
    SELECT w.request_number, w.external_user_key, w.outcome, w.applied
    FROM unnest(v_plan) AS w
    ORDER BY w.request_number;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.write_program_course_enrollments(
    uuid, text, enrolldb_internal.write_request[], boolean, boolean
) IS
'Internal, the core of write_program_course_enrollments: parsed requests in, one write_result '
'per request out, in input order. Looks the program and the course up (22023 when unknown), '
'locks, finds each request''s rows, plans under the one-active rule, applies.';

CREATE OR REPLACE FUNCTION enrolldb.write_program_course_enrollment_rows(
    p_program_uuid uuid,
    p_course_key text,
    p_requests jsonb,
    p_create boolean,
    p_update boolean
)
RETURNS TABLE (request_number integer, external_user_key text, outcome text, applied boolean)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
-- Custom plans: a call carries 1 to 10,000 requests, and only a plan made for the real array
-- lengths keeps every join linear (a generic plan estimates every unnest() at 10 rows). The
-- internals it calls run under these settings.
SET plan_cache_mode = force_custom_plan
-- No JIT: a 10,000-request statement costs enough to be compiled, and compiling takes longer
-- than running it.
SET jit = off
AS $$
BEGIN
    PERFORM enrolldb_internal.check_write_arguments(
        'write_program_course_enrollments',
        p_program_uuid IS NULL OR p_course_key IS NULL OR p_requests IS NULL OR p_create IS NULL
        OR p_update IS NULL
    );
    RETURN QUERY
    SELECT r.request_number, r.external_user_key, r.outcome, r.applied
    FROM enrolldb_internal.write_program_course_enrollments(
        p_program_uuid,
        p_course_key,
        enrolldb_internal.write_requests(
            'write_program_course_enrollments', p_requests, p_create, p_update,
            pg_catalog.enum_range(
                NULL::enrolldb_internal.program_course_enrollment_status
            )::text[],
            'course_staff', ARRAY['boolean', 'null'], 'course_staff true, false or null'
        ),
        p_create,
        p_update
    ) AS r;
END;
$$;

COMMENT ON FUNCTION enrolldb.write_program_course_enrollment_rows(
    uuid, text, jsonb, boolean, boolean
) IS
'write_program_course_enrollments with one row per request, in input order (docs/reference.md, '
'write_program_course_enrollment_rows): request_number (from 1), the key as requested, the '
'outcome, and applied (true: the row was created or its status set; the outcome is then the '
'status). Same arguments, rules, errors and error texts as write_program_course_enrollments.';

CREATE OR REPLACE FUNCTION enrolldb.write_program_course_enrollments(
    p_program_uuid uuid,
    p_course_key text,
    p_requests jsonb,
    p_create boolean,
    p_update boolean
)
RETURNS jsonb
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    -- In input order: when one spelling occurs twice, the later occurrence's outcome
    -- (duplicated) is the one the object keeps.
    SELECT COALESCE(
        pg_catalog.jsonb_object_agg(r.external_user_key, r.outcome ORDER BY r.request_number),
        '{}'::jsonb
    )
    FROM enrolldb.write_program_course_enrollment_rows(
        p_program_uuid, p_course_key, p_requests, p_create, p_update
    ) AS r;
$$;

COMMENT ON FUNCTION enrolldb.write_program_course_enrollments(uuid, text, jsonb, boolean, boolean)
IS
'The registrar''s writes for one course of a program (docs/reference.md, '
'write_program_course_enrollments). p_requests is a JSON array of '
'{external_user_key, status (active|inactive), course_staff (true|false|null, may be absent)}; '
'returns {key as requested: outcome}. Per request, first match wins: invalid-key (empty after '
'trimming or over 255 characters); duplicated (a later occurrence of a key, not applied; the '
'same spelling twice says duplicated); invalid-status; not-in-program (no enrollment of the '
'program with the key; with several curricula the newest enrollment that has a row for the '
'course, else the newest, is used); conflict when active is requested while the learner - the '
'same user, or the same key of the program''s organization, waiting or realized - holds an '
'active program course enrollment for the course in another program enrollment (or another '
'request of the call would give that user one); conflict when the row exists and p_update is '
'false; not-found when it is missing and p_create is false; else the row is created or its '
'status set (written only when it differs) and the status returned. A realized learner''s course '
'enrollment follows as in linking: created or activated rows get one through '
'attach_course_enrollments (created, reactivated or converted to masters; inactive rows only '
'point); a deactivated row deactivates it (mode kept) unless another active program course '
'enrollment points at it. course_staff true grants the staff role (realized) or records a '
'pending assignment (waiting); false revokes the role and deletes the assignment; null leaves '
'them; only for successful requests. Whole-call errors: a NULL argument or a null key or status '
'in a request (22004); neither flag, a malformed request array, an unknown program or course '
'(22023). The rows of write_program_course_enrollment_rows, as an object.';

REVOKE ALL ON FUNCTION enrolldb.write_program_course_enrollment_rows(
    uuid, text, jsonb, boolean, boolean
) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.write_program_course_enrollment_rows(
    uuid, text, jsonb, boolean, boolean
) TO enrolldb_app;
REVOKE ALL ON FUNCTION enrolldb.write_program_course_enrollments(
    uuid, text, jsonb, boolean, boolean
) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.write_program_course_enrollments(
    uuid, text, jsonb, boolean, boolean
) TO enrolldb_app;
