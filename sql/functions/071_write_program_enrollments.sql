-- write_program_enrollments: the registrar creates and updates program enrollments.
-- docs/reference.md, write_program_enrollments and write_program_enrollment_rows;
-- docs/registrar-writes.md. Steps in 070: arguments, request parser, key locks.

CREATE OR REPLACE FUNCTION enrolldb_internal.plan_program_enrollment_writes(
    p_program_uuid uuid,
    p_organization_key text,
    p_requests enrolldb_internal.write_request[],
    p_create boolean,
    p_update boolean
)
RETURNS SETOF enrolldb_internal.program_enrollment_write
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- Existing enrollments: conflict or update; missing ones: not-in-program, invalid
    -- curriculum or create, with the user the organization's identity of the key names.
    RETURN QUERY
    SELECT
        e.request_number,
        e.external_user_key,
        e.lower_key,
        e.status,
        e.curriculum_uuid,
        x.found,
        li.user_id,
        COALESCE(d.refusal, e.status),
        d.refusal IS NULL
    FROM unnest(p_requests) AS e
    CROSS JOIN LATERAL (
        SELECT EXISTS (
            SELECT FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE
                pe.program_uuid = p_program_uuid
                AND pg_catalog.lower(pe.external_user_key) = e.lower_key
        ) AS found
    ) AS x
    LEFT JOIN enrolldb.program_enrollments_learneridentity AS li
        ON
            li.organization_key = p_organization_key
            AND pg_catalog.lower(li.external_user_key) = e.lower_key
    CROSS JOIN LATERAL (
        SELECT
            CASE
                WHEN e.outcome IS NOT NULL THEN e.outcome
                WHEN x.found AND NOT p_update THEN 'conflict'
                WHEN NOT x.found AND NOT p_create THEN 'not-in-program'
                WHEN NOT x.found AND e.curriculum_uuid IS NULL THEN 'invalid-curriculum'
            END AS refusal
    ) AS d;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.plan_program_enrollment_writes(
    uuid, text, enrolldb_internal.write_request[], boolean, boolean
) IS
'Internal, read only: every request''s outcome of write_program_enrollments, decided under '
'the key locks: the parser''s outcome; conflict (exists, no update); not-in-program (missing, '
'no create); invalid-curriculum (to create without a curriculum); else applied, the outcome '
'being the status.';

CREATE OR REPLACE FUNCTION enrolldb_internal.apply_program_enrollment_writes(
    p_program_uuid uuid,
    p_plan enrolldb_internal.program_enrollment_write[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- lock order: docs/design.md#lock-order
    -- The users the identities name (a created enrollment may be realized at once).
    PERFORM enrolldb_internal.lock_users(ARRAY(
        SELECT w.user_id FROM unnest(p_plan) AS w WHERE w.applied AND NOT w.found
    ));

    -- Status changes of existing enrollments (every curriculum of the key), only where the
    -- status differs: no needless history row. The enrollments are found by one probe of
    -- programenrollment_key_program_curriculum_uq per request (LATERAL ... OFFSET 0 is never
    -- flattened), then updated by id: joined on the lowered key directly, a stale estimate
    -- made this a nested loop over requests x enrollments (1,500 x 1,500 rows).
    UPDATE enrolldb.program_enrollments_programenrollment AS pe
    SET status = m.status
    FROM (
        SELECT x.id, w.status
        FROM unnest(p_plan) AS w
        CROSS JOIN LATERAL (
            SELECT q.id
            FROM enrolldb.program_enrollments_programenrollment AS q
            WHERE
                q.program_uuid = p_program_uuid
                AND pg_catalog.lower(q.external_user_key) = w.lower_key
            OFFSET 0
        ) AS x
        WHERE w.applied AND w.found
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
                AND pg_catalog.count(*) OVER (PARTITION BY n.user_id, n.curriculum_uuid) = 1
                AND NOT EXISTS (
                    SELECT FROM enrolldb.program_enrollments_programenrollment AS q
                    WHERE
                        q.user_id = n.user_id
                        AND q.program_uuid = p_program_uuid
                        AND q.curriculum_uuid = n.curriculum_uuid
                )
                THEN n.user_id
        END,
        enrolldb.canonical_external_key(n.external_user_key),
        p_program_uuid,
        n.curriculum_uuid,
        n.status
    FROM unnest(p_plan) AS n
    WHERE n.applied AND NOT n.found
    ORDER BY n.request_number;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.apply_program_enrollment_writes(
    uuid, enrolldb_internal.program_enrollment_write[]
) IS
'Internal: writes the applied requests of a write_program_enrollments plan: locks the users '
'of the creates, sets the status of existing enrollments (every curriculum; only where it '
'differs), creates the missing ones (realized at once when the identity is known and the user '
'has no enrollment in the program and curriculum, nor a second one in this call; else waiting).';

CREATE OR REPLACE FUNCTION enrolldb_internal.write_program_enrollments(
    p_program_uuid uuid,
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
        'write_program_enrollments', p_program_uuid
    );
    v_plan enrolldb_internal.program_enrollment_write[];
BEGIN
    IF pg_catalog.cardinality(p_requests) = 0 THEN
        RETURN;
    END IF;
    -- The history triggers label every row this call writes with its name. Set here, not by
    -- a SET clause: a custom setting in a function's SET clause needs a superuser (PostgreSQL
    -- 15+), and the owner that deploys us is not one.
    PERFORM pg_catalog.set_config(
        'enrolldb.history_change_reason', 'write_program_enrollments', TRUE
    );
    -- Locks: the learners' keys, then the program's enrollments of those keys (id order); the
    -- apply step then locks the users (the global order, docs/design.md).
    PERFORM enrolldb_internal.lock_learner_keys(
        p_program_uuid,
        v_org,
        ARRAY(SELECT r.lower_key FROM unnest(p_requests) AS r WHERE r.outcome IS NULL)
    );
    v_plan := ARRAY(
        SELECT w
        FROM enrolldb_internal.plan_program_enrollment_writes(
            p_program_uuid, v_org, p_requests, p_create, p_update
        ) AS w
    );
    PERFORM enrolldb_internal.apply_program_enrollment_writes(p_program_uuid, v_plan);
    RETURN QUERY
    SELECT w.request_number, w.external_user_key, w.outcome, w.applied
    FROM unnest(v_plan) AS w
    ORDER BY w.request_number;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.write_program_enrollments(
    uuid, enrolldb_internal.write_request[], boolean, boolean
) IS
'Internal, the core of write_program_enrollments: parsed requests in, one write_result per '
'request out, in input order. Looks the program up (22023 when unknown), locks the keys, plans '
'(plan_program_enrollment_writes), applies (apply_program_enrollment_writes).';

CREATE OR REPLACE FUNCTION enrolldb.write_program_enrollment_rows(
    p_program_uuid uuid,
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
        'write_program_enrollments',
        p_program_uuid IS NULL OR p_requests IS NULL OR p_create IS NULL OR p_update IS NULL
    );
    RETURN QUERY
    SELECT r.request_number, r.external_user_key, r.outcome, r.applied
    FROM enrolldb_internal.write_program_enrollments(
        p_program_uuid,
        enrolldb_internal.write_requests(
            'write_program_enrollments', p_requests, p_create, p_update,
            pg_catalog.enum_range(NULL::enrolldb_internal.program_enrollment_status)::text[],
            'curriculum_uuid', ARRAY['string', 'null'], 'curriculum_uuid a string or null'
        ),
        p_create,
        p_update
    ) AS r;
END;
$$;

COMMENT ON FUNCTION enrolldb.write_program_enrollment_rows(uuid, jsonb, boolean, boolean) IS
'write_program_enrollments with one row per request, in input order (docs/reference.md, '
'write_program_enrollment_rows): request_number (from 1), the key as requested, the outcome, '
'and applied (true: the status was written or the enrollment created; the outcome is then the '
'status). Same arguments, rules, errors and error texts as write_program_enrollments.';

CREATE OR REPLACE FUNCTION enrolldb.write_program_enrollments(
    p_program_uuid uuid,
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
    FROM enrolldb.write_program_enrollment_rows(
        p_program_uuid, p_requests, p_create, p_update
    ) AS r;
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
'request array, an unknown program (22023). The rows of write_program_enrollment_rows, as an '
'object.';

REVOKE ALL ON FUNCTION enrolldb.write_program_enrollment_rows(uuid, jsonb, boolean, boolean)
FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.write_program_enrollment_rows(uuid, jsonb, boolean, boolean)
TO enrolldb_app;
REVOKE ALL ON FUNCTION enrolldb.write_program_enrollments(uuid, jsonb, boolean, boolean)
FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.write_program_enrollments(uuid, jsonb, boolean, boolean)
TO enrolldb_app;
