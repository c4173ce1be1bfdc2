-- write_program_enrollments: the registrar creates and updates program enrollments.
-- docs/reference.md, write_program_enrollments.
-- Also the internal lock_learner_keys, shared with write_program_course_enrollments (080).

CREATE OR REPLACE FUNCTION enrolldb.lock_learner_keys(
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
    -- The learners' key locks first (rows of learner_key_lock, which no other role can lock):
    -- two writes for one learner of one organization serialise, so that neither creates a
    -- second enrollment for the key nor a second active program course enrollment on an old
    -- snapshot, and a write and an SSO sign-in of the key serialise, so that whichever
    -- commits second sees the first.
    PERFORM enrolldb_internal.lock_learner_key_rows(p_organization_key, p_lower_keys);

    -- lock order: docs/design.md#lock-order
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

COMMENT ON FUNCTION enrolldb.lock_learner_keys(uuid, text, text[]) IS
'Internal: locks the learner key rows (lock_learner_key_rows) of the program''s organization '
'for the given lowered keys, then the program''s enrollments of those keys in id order; taken '
'by the registrar writes before any other lock.';

REVOKE ALL ON FUNCTION enrolldb.lock_learner_keys(uuid, text, text[]) FROM public;

CREATE OR REPLACE FUNCTION enrolldb.check_write_requests(
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
    -- The whole-call checks shared by the registrar writes; messages start with p_function.
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

COMMENT ON FUNCTION enrolldb.check_write_requests(
    text, jsonb, boolean, boolean, text, text[], text
) IS
'Internal: the whole-call checks of the registrar writes (flags, a JSON array of objects with '
'string external_user_key and status, the optional field''s JSON type); raises 22023 or 22004.';

REVOKE ALL ON FUNCTION enrolldb.check_write_requests(
    text, jsonb, boolean, boolean, text, text[], text
) FROM public;

CREATE OR REPLACE FUNCTION enrolldb.write_program_enrollments(
    p_program_uuid uuid,
    p_requests jsonb,
    p_create boolean,
    p_update boolean
)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
-- Custom plans: a call carries 1 to 10,000 requests, and only a plan made for the real array
-- lengths keeps every join linear (a generic plan estimates every unnest() at 10 rows).
SET plan_cache_mode = force_custom_plan
-- No JIT: a 10,000-request statement costs enough to be compiled, and compiling takes longer
-- than running it.
SET jit = off
AS $$#variable_conflict use_column
DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'write_program_enrollments', TRUE
    );
    v_org text;
    v_ords integer[];
    v_keys text[];
    v_lows text[];
    v_statuses text[];
    v_curricula uuid[];
    v_outcomes text[];
    v_found boolean[];
    v_user_ids integer[];
BEGIN
    IF p_program_uuid IS NULL OR p_requests IS NULL OR p_create IS NULL OR p_update IS NULL THEN
        RAISE EXCEPTION 'write_program_enrollments: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM enrolldb.check_write_requests(
        'write_program_enrollments', p_requests, p_create, p_update,
        'curriculum_uuid', ARRAY['string', 'null'],
        'curriculum_uuid a string or null'
    );

    SELECT p.authoring_organization_key INTO v_org
    FROM enrolldb.program_enrollments_program AS p
    WHERE p.program_uuid = p_program_uuid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'write_program_enrollments: unknown program uuid=%', p_program_uuid
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_array_length(p_requests) = 0 THEN
        RETURN '{}'::jsonb;
    END IF;

    -- The requests, with the outcomes that need no lock: key shape, duplicates, status.
    SELECT
        pg_catalog.array_agg(c.ord ORDER BY c.ord),
        pg_catalog.array_agg(c.k ORDER BY c.ord),
        pg_catalog.array_agg(c.low ORDER BY c.ord),
        pg_catalog.array_agg(c.status ORDER BY c.ord),
        pg_catalog.array_agg(
            CASE
                WHEN
                    c.curriculum
                    ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
                    THEN c.curriculum::uuid
            END
            ORDER BY c.ord
        ),
        pg_catalog.array_agg(
            CASE
                WHEN c.low IS NULL THEN 'invalid-key'
                WHEN c.nth > 1 THEN 'duplicated'
                WHEN c.status NOT IN ('enrolled', 'pending', 'suspended', 'canceled', 'ended')
                    THEN 'invalid-status'
            END
            ORDER BY c.ord
        )
    INTO v_ords, v_keys, v_lows, v_statuses, v_curricula, v_outcomes
    FROM (
        SELECT
            r.ord::integer AS ord,
            r.req ->> 'external_user_key' AS k,
            r.req ->> 'status' AS status,
            r.req ->> 'curriculum_uuid' AS curriculum,
            kk.low,
            pg_catalog.row_number() OVER (PARTITION BY kk.low ORDER BY r.ord) AS nth
        FROM pg_catalog.jsonb_array_elements(p_requests) WITH ORDINALITY AS r (req, ord)
        CROSS JOIN LATERAL (
            SELECT enrolldb.comparable_external_key(r.req ->> 'external_user_key') AS low
        ) AS kk
    ) AS c;

    -- Locks: the learners' keys, then the program's enrollments of those keys (id order), then
    -- the users the identities name (a created enrollment may be realized at once).
    PERFORM enrolldb.lock_learner_keys(
        p_program_uuid,
        v_org,
        ARRAY(SELECT e.low FROM unnest(v_lows, v_outcomes) AS e (low, o) WHERE e.o IS NULL)
    );

    -- Existing enrollments: conflict or update; missing ones: not-in-program, invalid
    -- curriculum or create, with the user the organization's identity of the key names.
    SELECT
        pg_catalog.array_agg(
            CASE
                WHEN e.o IS NOT NULL THEN e.o
                WHEN x.found AND NOT p_update THEN 'conflict'
                WHEN x.found THEN e.status
                WHEN NOT p_create THEN 'not-in-program'
                WHEN e.curriculum IS NULL THEN 'invalid-curriculum'
                ELSE e.status
            END
            ORDER BY e.ord
        ),
        pg_catalog.array_agg(x.found ORDER BY e.ord),
        pg_catalog.array_agg(li.user_id ORDER BY e.ord)
    INTO v_outcomes, v_found, v_user_ids
    FROM unnest(v_ords, v_lows, v_statuses, v_curricula, v_outcomes)
        AS e (ord, low, status, curriculum, o)
    CROSS JOIN LATERAL (
        SELECT EXISTS (
            SELECT FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE
                pe.program_uuid = p_program_uuid
                AND pg_catalog.lower(pe.external_user_key) = e.low
        ) AS found
    ) AS x
    LEFT JOIN enrolldb.program_enrollments_learneridentity AS li
        ON li.organization_key = v_org AND pg_catalog.lower(li.external_user_key) = e.low;

    PERFORM enrolldb_internal.lock_users(ARRAY(
        SELECT e.user_id
        FROM unnest(v_user_ids, v_found, v_outcomes, v_statuses) AS e (user_id, found, o, status)
        WHERE NOT e.found AND e.o = e.status
    ));

    -- Status changes of existing enrollments (every curriculum of the key), only where the
    -- status differs: no needless history row. The enrollments are found by one probe of
    -- programenrollment_key_program_curriculum_uq per request (LATERAL ... OFFSET 0 is never
    -- flattened), then updated by id: joined on the lowered key directly, a stale estimate
    -- made this a nested loop over requests x enrollments (1,500 x 1,500 rows).
    UPDATE enrolldb.program_enrollments_programenrollment AS pe
    SET status = m.status
    FROM (
        SELECT x.id, e.status
        FROM unnest(v_lows, v_statuses, v_outcomes, v_found) AS e (low, status, o, found)
        CROSS JOIN LATERAL (
            SELECT q.id
            FROM enrolldb.program_enrollments_programenrollment AS q
            WHERE q.program_uuid = p_program_uuid AND pg_catalog.lower(q.external_user_key) = e.low
            OFFSET 0
        ) AS x
        WHERE e.found AND e.o = e.status
    ) AS m
    WHERE pe.id = m.id AND pe.status <> m.status;

    -- New enrollments: realized at once when the organization's identity of the key is known,
    -- unless that user already has an enrollment in the program and curriculum, or another new
    -- enrollment of this call would take the same user, program and curriculum: those wait
    -- (linking or sign-in will report the collision).
    INSERT INTO enrolldb.program_enrollments_programenrollment (
        user_id, external_user_key, program_uuid, curriculum_uuid, status
    )
    SELECT
        CASE
            WHEN
                n.user_id IS NOT NULL
                AND pg_catalog.count(*) OVER (PARTITION BY n.user_id, n.curriculum) = 1
                AND NOT EXISTS (
                    SELECT FROM enrolldb.program_enrollments_programenrollment AS q
                    WHERE
                        q.user_id = n.user_id
                        AND q.program_uuid = p_program_uuid
                        AND q.curriculum_uuid = n.curriculum
                )
                THEN n.user_id
        END,
        enrolldb.canonical_external_key(n.k),
        p_program_uuid,
        n.curriculum,
        n.status
    FROM unnest(v_ords, v_keys, v_statuses, v_curricula, v_outcomes, v_found, v_user_ids)
        AS n (ord, k, status, curriculum, o, found, user_id)
    WHERE NOT n.found AND n.o = n.status
    ORDER BY n.ord;

    RETURN (
        SELECT pg_catalog.jsonb_object_agg(r.k, r.o ORDER BY r.o = 'duplicated', r.ord)
        FROM unnest(v_ords, v_keys, v_outcomes) AS r (ord, k, o)
    );
END;
$$;

COMMENT ON FUNCTION enrolldb.write_program_enrollments(uuid, jsonb, boolean, boolean) IS
'The registrar''s writes (docs/reference.md, write_program_enrollments). p_requests is a JSON '
'array of {external_user_key, status, '
'curriculum_uuid}; returns {key as requested: outcome}. Per request, first match wins: '
'invalid-key (empty after trimming or over 255 characters); duplicated (a later occurrence of a '
'key, compared as stored keys are; not applied; when the same spelling occurs twice the object '
'says duplicated); invalid-status; an existing enrollment of the program with the key (all its '
'curricula): conflict without p_update, else its status is set (written only when it differs) '
'and returned; none: not-in-program without p_create; invalid-curriculum when curriculum_uuid is '
'missing, null or not a UUID; else created and its status returned, realized at once (user_id '
'set) when program_enrollments_learneridentity knows the key for the program''s organization, '
'waiting instead when that user already has an enrollment in the program and curriculum or the '
'call would give it two. The curriculum of an existing enrollment is never changed. Whole-call '
'errors: a NULL argument or a null key or status in a request (22004); neither flag, a malformed '
'request array, an unknown program (22023).';

REVOKE ALL ON FUNCTION enrolldb.write_program_enrollments(uuid, jsonb, boolean, boolean)
FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.write_program_enrollments(uuid, jsonb, boolean, boolean)
TO enrolldb_app;
