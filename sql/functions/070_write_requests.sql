-- The registrar writes' shared steps (docs/registrar-writes.md): the whole-call checks and
-- their messages, the request parser (jsonb -> enrolldb_internal.write_request[]), and the
-- learner key locks taken first. Used by 071 (write_program_enrollments) and 080-082
-- (write_program_course_enrollments). Internal: schema enrolldb_internal, owner only.
--
-- Every write runs the same steps: check the arguments and parse the requests (this file,
-- read only); look the program (and course) up; lock; plan every request's outcome (read only,
-- under the locks); apply the plan; return one enrolldb_internal.write_result per request in
-- input order, `applied` saying which ones were written. The internals take no SET clauses:
-- they run under the API function's (custom plans, no JIT, its search_path).

CREATE OR REPLACE FUNCTION enrolldb_internal.check_write_arguments(
    p_function text,
    p_any_null boolean
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_any_null THEN
        RAISE EXCEPTION '%: no argument may be NULL', p_function
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.check_write_arguments(text, boolean) IS
'Internal: raises 22004 "<function>: no argument may be NULL" when p_any_null; the one place '
'of that text for the registrar writes.';

CREATE OR REPLACE FUNCTION enrolldb_internal.write_program_organization(
    p_function text,
    p_program_uuid uuid
)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_org text;
BEGIN
    SELECT p.authoring_organization_key INTO v_org
    FROM enrolldb.program_enrollments_program AS p
    WHERE p.program_uuid = p_program_uuid;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: unknown program uuid=%', p_function, p_program_uuid
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_org;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.write_program_organization(text, uuid) IS
'Internal: the program''s authoring organization key; raises 22023 "<function>: unknown program '
'uuid=<uuid>" when there is no such program.';

CREATE OR REPLACE FUNCTION enrolldb_internal.write_course_organization(
    p_function text,
    p_course_key text
)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_org text;
BEGIN
    SELECT co.org INTO v_org
    FROM enrolldb.course_overviews_courseoverview AS co
    WHERE co.id = p_course_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: course % does not exist', p_function, p_course_key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_org;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.write_course_organization(text, text) IS
'Internal: the course''s organization; raises 22023 "<function>: course <course_key> does not '
'exist" when there is no such course.';

CREATE OR REPLACE FUNCTION enrolldb_internal.check_write_requests(
    p_function text,
    p_requests jsonb,
    p_create boolean,
    p_update boolean,
    p_optional_field text,
    p_optional_types text[],
    p_optional_rule text
)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_bad bigint;
BEGIN
    IF NOT (p_create OR p_update) THEN
        RAISE EXCEPTION '%: at least one of create, update must be true', p_function
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(p_requests) <> 'array' THEN
        RAISE EXCEPTION '%: expected a JSON array of requests, got a JSON %',
            p_function, pg_catalog.jsonb_typeof(p_requests)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT pg_catalog.min(r.ord) INTO v_bad
    FROM pg_catalog.jsonb_array_elements(p_requests) WITH ORDINALITY AS r (req, ord)
    WHERE pg_catalog.jsonb_typeof(r.req) <> 'object';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION '%: request number % is not a JSON object', p_function, v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.min(r.ord) INTO v_bad
    FROM pg_catalog.jsonb_array_elements(p_requests) WITH ORDINALITY AS r (req, ord)
    WHERE
        pg_catalog.jsonb_typeof(r.req -> 'external_user_key') = 'null'
        OR pg_catalog.jsonb_typeof(r.req -> 'status') = 'null';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION '%: request number % has a null external_user_key or status',
            p_function, v_bad
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT pg_catalog.min(r.ord) INTO v_bad
    FROM pg_catalog.jsonb_array_elements(p_requests) WITH ORDINALITY AS r (req, ord)
    WHERE
        pg_catalog.jsonb_typeof(r.req -> 'external_user_key') IS DISTINCT FROM 'string'
        OR pg_catalog.jsonb_typeof(r.req -> 'status') IS DISTINCT FROM 'string'
        OR pg_catalog.jsonb_typeof(r.req -> p_optional_field) <> ALL(p_optional_types);
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION '%: request number % needs string external_user_key and status (and %)',
            p_function, v_bad, p_optional_rule
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.check_write_requests(
    text, jsonb, boolean, boolean, text, text[], text
) IS
'Internal: the whole-call checks of the registrar writes (flags, a JSON array of objects with '
'string external_user_key and status, the optional field''s JSON type); raises 22023 or 22004. '
'The one place of these messages.';

CREATE OR REPLACE FUNCTION enrolldb_internal.write_requests(
    p_function text,
    p_requests jsonb,
    p_create boolean,
    p_update boolean,
    p_statuses text[],
    p_optional_field text,
    p_optional_types text[],
    p_optional_rule text
)
RETURNS enrolldb_internal.write_request[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    PERFORM enrolldb_internal.check_write_requests(
        p_function, p_requests, p_create, p_update,
        p_optional_field, p_optional_types, p_optional_rule
    );
    -- The outcomes that need no lock: key shape, a later occurrence of a key (compared as
    -- stored keys are), status. Only the optional field named is read.
    RETURN ARRAY(
        SELECT
            ROW(
                c.ord,
                c.k,
                c.low,
                c.status,
                CASE
                    WHEN
                        p_optional_field = 'curriculum_uuid'
                        AND c.optional
                        ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
                        THEN c.optional::uuid
                END,
                CASE WHEN p_optional_field = 'course_staff' THEN c.optional::boolean END,
                CASE
                    WHEN c.low IS NULL THEN 'invalid-key'
                    WHEN c.nth > 1 THEN 'duplicated'
                    WHEN c.status <> ALL(p_statuses) THEN 'invalid-status'
                END
            )::enrolldb_internal.write_request
        FROM (
            SELECT
                r.ord::integer AS ord,
                r.req ->> 'external_user_key' AS k,
                r.req ->> 'status' AS status,
                r.req ->> p_optional_field AS optional,
                kk.low,
                pg_catalog.row_number() OVER (PARTITION BY kk.low ORDER BY r.ord) AS nth
            FROM pg_catalog.jsonb_array_elements(p_requests) WITH ORDINALITY AS r (req, ord)
            CROSS JOIN LATERAL (
                SELECT enrolldb.comparable_external_key(r.req ->> 'external_user_key') AS low
            ) AS kk
        ) AS c
        ORDER BY c.ord
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.write_requests(
    text, jsonb, boolean, boolean, text[], text, text[], text
) IS
'Internal: the request parser of both registrar writes. Checks the call (check_write_requests), '
'then returns the requests in input order as write_request rows, with the outcomes that need '
'no lock: invalid-key (comparable_external_key is NULL), duplicated (a later occurrence of a '
'key, compared as stored keys are), invalid-status (not one of p_statuses). Only '
'p_optional_field (curriculum_uuid or course_staff) is read.';

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_learner_keys(
    p_program_uuid uuid,
    p_organization_key text,
    p_lower_keys text[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- lock order: docs/design.md#lock-order
    -- The learners' key locks first (rows of learner_key_lock, which no other role can lock):
    -- two writes for one learner of one organization serialise, so that neither creates a
    -- second enrollment for the key nor a second active program course enrollment on an old
    -- snapshot, and a write and an SSO sign-in of the key serialise, so that whichever
    -- commits second sees the first.
    PERFORM enrolldb_internal.lock_learner_key_rows(p_organization_key, p_lower_keys);

    -- Then the program's enrollments of those keys, in id order (the global lock order):
    -- one probe of programenrollment_key_program_curriculum_uq per key.
    PERFORM 1
    FROM unnest(p_lower_keys) AS t (low)
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pg_catalog.lower(pe.external_user_key) = t.low
    WHERE pe.program_uuid = p_program_uuid
    ORDER BY pe.id
    FOR UPDATE OF pe;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_learner_keys(uuid, text, text[]) IS
'Internal: locks the learner key rows (lock_learner_key_rows) of the program''s organization '
'for the given lowered keys, then the program''s enrollments of those keys in id order; taken '
'by the registrar writes before any other lock.';
