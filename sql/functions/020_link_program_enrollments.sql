-- link_program_enrollments: link a program's waiting (or otherwise linked) enrollments to LMS
-- users by external key, in bulk. docs/reference.md, link_program_enrollments.

CREATE OR REPLACE FUNCTION enrolldb.link_program_enrollments(
    p_program_uuid uuid,
    p_external_user_keys text[],
    p_usernames text[]
)
RETURNS TABLE (external_user_key text, username text, result text, error text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$#variable_conflict use_column
DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'link_program_enrollments', TRUE
    );
    v_ords integer[];
    v_keys text[];
    v_usernames text[];
    v_lows text[];
    v_user_ids integer[];
    v_pe_ids integer[];
    v_errors text[];
    v_relinked boolean[];
    v_unit_ords integer[];
    v_unit_pe_ids integer[];
    v_unit_user_ids integer[];
    v_failed_ords integer[];
    v_failed_errors text[];
BEGIN
    IF p_program_uuid IS NULL OR p_external_user_keys IS NULL OR p_usernames IS NULL THEN
        RAISE EXCEPTION 'link_program_enrollments: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF COALESCE(pg_catalog.array_ndims(p_external_user_keys), 1) <> 1
        OR COALESCE(pg_catalog.array_ndims(p_usernames), 1) <> 1 THEN
        RAISE EXCEPTION 'link_program_enrollments: external user keys and usernames must be '
            'one-dimensional arrays'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.cardinality(p_external_user_keys) <> pg_catalog.cardinality(p_usernames) THEN
        RAISE EXCEPTION 'link_program_enrollments: % external user keys but % usernames',
            pg_catalog.cardinality(p_external_user_keys), pg_catalog.cardinality(p_usernames)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.array_position(p_external_user_keys, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'link_program_enrollments: external user key number % is NULL',
            pg_catalog.array_position(p_external_user_keys, NULL)
                - pg_catalog.array_lower(p_external_user_keys, 1) + 1
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.array_position(p_usernames, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'link_program_enrollments: username number % is NULL',
            pg_catalog.array_position(p_usernames, NULL) - pg_catalog.array_lower(p_usernames, 1) + 1
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (
        SELECT FROM enrolldb.program_enrollments_program AS p
        WHERE p.program_uuid = p_program_uuid
    ) THEN
        RAISE EXCEPTION 'link_program_enrollments: unknown program uuid=%', p_program_uuid
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.cardinality(p_external_user_keys) = 0 THEN
        RETURN;
    END IF;
    -- Under REPEATABLE READ or SERIALIZABLE only: the call's key locks first, so that a
    -- snapshot older than a concurrent write of one of the keys gets 40001 instead of a link
    -- that misses that write (016_key_lock_guards.sql). Nothing under READ COMMITTED.
    PERFORM enrolldb_internal.lock_program_keys_for_snapshot(p_program_uuid, p_external_user_keys);

    -- Rules 1-3, which need no lock: the key's shape, duplicates in the call, the user.
    SELECT
        pg_catalog.array_agg(c.ord ORDER BY c.ord),
        pg_catalog.array_agg(c.k ORDER BY c.ord),
        pg_catalog.array_agg(c.u ORDER BY c.ord),
        pg_catalog.array_agg(c.low ORDER BY c.ord),
        pg_catalog.array_agg(c.user_id ORDER BY c.ord),
        pg_catalog.array_agg(
            CASE
                WHEN c.low IS NULL
                    THEN pg_catalog.format('Invalid external user key %s', c.k)
                WHEN c.n_same > 1
                    THEN pg_catalog.format('external user key %s provided multiple times', c.k)
                WHEN c.user_id IS NULL
                    THEN pg_catalog.format('No user found with username %s', c.u)
            END
            ORDER BY c.ord
        )
    INTO v_ords, v_keys, v_usernames, v_lows, v_user_ids, v_errors
    FROM (
        SELECT
            t.ord::integer AS ord,
            t.k,
            t.u,
            k.low,
            pg_catalog.count(*) OVER (PARTITION BY k.low) AS n_same,
            au.id AS user_id
        FROM unnest(p_external_user_keys, p_usernames) WITH ORDINALITY AS t (k, u, ord)
        CROSS JOIN LATERAL (SELECT enrolldb.comparable_external_key(t.k) AS low) AS k
        LEFT JOIN LATERAL (
            SELECT a.id FROM enrolldb.auth_user AS a WHERE a.username = t.u OFFSET 0
        ) AS au ON TRUE
    ) AS c;

    -- Lock the program's enrollments of the remaining keys, in id order. Every statement
    -- reaches the tables from the input, one index probe per element (LATERAL ... OFFSET 0),
    -- as in 010_link_internals.sql: with stale statistics a join of the input with the
    -- program's enrollments was planned as a nested loop rescanning the whole input for each
    -- enrollment (10,000 learners: 17.9 s, "Rows Removed by Join Filter: 49995000").
    -- The program is tested outside the sub-select, so that the probe can only use the key's
    -- index: with `program_uuid = ...` inside it, statistics from before the program existed
    -- made programenrollment_program_idx look like one row, and every probe read the whole
    -- program (10,000 learners: 20.3 s, "Rows Removed by Filter: 9999" per probe).
    SELECT pg_catalog.array_agg(r.id ORDER BY r.id)
    INTO v_pe_ids
    FROM unnest(v_lows, v_errors) AS e (low, err)
    CROSS JOIN LATERAL (
        SELECT pe.id, pe.program_uuid
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pg_catalog.lower(pe.external_user_key) = e.low
        OFFSET 0
    ) AS r
    WHERE e.err IS NULL AND r.program_uuid = p_program_uuid;

    PERFORM 1
    FROM unnest(v_pe_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT pe.id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = t.id
        OFFSET 0
        FOR UPDATE OF pe
    ) AS locked;

    -- Rules 4 and 5, on the locked rows.
    SELECT
        pg_catalog.array_agg(COALESCE(e.err, m.err) ORDER BY e.ord),
        pg_catalog.array_agg(COALESCE(m.relinked, FALSE) ORDER BY e.ord)
    INTO v_errors, v_relinked
    FROM unnest(v_ords, v_keys, v_usernames, v_lows, v_user_ids, v_errors)
        AS e (ord, k, u, low, user_id, err)
    LEFT JOIN LATERAL (
        SELECT
            CASE
                WHEN pg_catalog.count(pe.id) = 0
                    THEN pg_catalog.format(
                        'No program enrollment found for program uuid=%s and external student '
                        'key=%s',
                        p_program_uuid, e.k
                    )
                WHEN pg_catalog.bool_and(pe.user_id IS NOT DISTINCT FROM e.user_id)
                    THEN pg_catalog.format(
                        'Program enrollment with external_student_key=%s is already linked to '
                        'target account username=%s',
                        (pg_catalog.array_agg(pe.external_user_key ORDER BY pe.id))[1], e.u
                    )
            END AS err,
            COALESCE(pg_catalog.bool_or(pe.user_id <> e.user_id), FALSE) AS relinked
        FROM (
            SELECT x.id, x.user_id, x.external_user_key, x.program_uuid
            FROM enrolldb.program_enrollments_programenrollment AS x
            WHERE pg_catalog.lower(x.external_user_key) = e.low
            OFFSET 0
        ) AS pe
        WHERE pe.program_uuid = p_program_uuid
    ) AS m ON e.err IS NULL;

    -- One unit per element: its enrollments not yet linked to the target user.
    SELECT
        pg_catalog.array_agg(e.ord ORDER BY pe.id),
        pg_catalog.array_agg(pe.id ORDER BY pe.id),
        pg_catalog.array_agg(e.user_id ORDER BY pe.id)
    INTO v_unit_ords, v_unit_pe_ids, v_unit_user_ids
    FROM unnest(v_ords, v_lows, v_user_ids, v_errors) AS e (ord, low, user_id, err)
    CROSS JOIN LATERAL (
        SELECT x.id, x.user_id, x.program_uuid
        FROM enrolldb.program_enrollments_programenrollment AS x
        WHERE pg_catalog.lower(x.external_user_key) = e.low
        OFFSET 0
    ) AS pe
    WHERE
        e.err IS NULL
        AND pe.program_uuid = p_program_uuid
        AND pe.user_id IS DISTINCT FROM e.user_id;

    SELECT pg_catalog.array_agg(f.unit), pg_catalog.array_agg(f.error)
    INTO v_failed_ords, v_failed_errors
    FROM enrolldb_internal.link_locked(
        COALESCE(v_unit_ords, '{}'), COALESCE(v_unit_pe_ids, '{}'), COALESCE(v_unit_user_ids, '{}')
    ) AS f;

    RETURN QUERY
    SELECT
        e.k,
        e.u,
        CASE
            WHEN COALESCE(e.err, f.error) IS NOT NULL THEN 'failed'
            WHEN e.relinked THEN 'relinked'
            ELSE 'linked'
        END,
        COALESCE(e.err, f.error)
    FROM unnest(v_ords, v_keys, v_usernames, v_errors, v_relinked)
        AS e (ord, k, u, err, relinked)
    LEFT JOIN unnest(v_failed_ords, v_failed_errors) AS f (ord, error)
        ON e.ord = f.ord
    ORDER BY e.ord;
END;
$$;

COMMENT ON FUNCTION enrolldb.link_program_enrollments(uuid, text[], text[]) IS
'Links the program''s enrollments of each external key to the LMS user with that username. One '
'row per input element, in input order: result linked, relinked or failed, with '
'docs/reference.md, link_program_enrollments '
'error text. A failing element changes nothing; the others are unaffected.';

CREATE OR REPLACE FUNCTION enrolldb.link_program_enrollments(
    p_program_uuid uuid,
    p_external_keys_to_usernames jsonb
)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'link_program_enrollments', TRUE
    );
    v_keys text[];
    v_usernames text[];
    v_errors jsonb;
BEGIN
    IF p_program_uuid IS NULL OR p_external_keys_to_usernames IS NULL THEN
        RAISE EXCEPTION 'link_program_enrollments: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.jsonb_typeof(p_external_keys_to_usernames) <> 'object' THEN
        RAISE EXCEPTION 'link_program_enrollments: expected a JSON object '
            '{external_user_key: username}, got a JSON %',
            pg_catalog.jsonb_typeof(p_external_keys_to_usernames)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (
        SELECT FROM pg_catalog.jsonb_each(p_external_keys_to_usernames) AS j
        WHERE pg_catalog.jsonb_typeof(j.value) = 'null'
    ) THEN
        RAISE EXCEPTION 'link_program_enrollments: the username of an external user key is null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (
        SELECT FROM pg_catalog.jsonb_each(p_external_keys_to_usernames) AS j
        WHERE pg_catalog.jsonb_typeof(j.value) <> 'string'
    ) THEN
        RAISE EXCEPTION 'link_program_enrollments: every username must be a JSON string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT
        COALESCE(pg_catalog.array_agg(j.key ORDER BY j.key), '{}'),
        COALESCE(pg_catalog.array_agg(j.value ORDER BY j.key), '{}')
    INTO v_keys, v_usernames
    FROM pg_catalog.jsonb_each_text(p_external_keys_to_usernames) AS j;

    SELECT
        COALESCE(
            pg_catalog.jsonb_object_agg(r.external_user_key, r.error)
            FILTER (WHERE r.error IS NOT NULL),
            '{}'::jsonb
        )
    INTO v_errors
    FROM enrolldb.link_program_enrollments(p_program_uuid, v_keys, v_usernames) AS r;

    RETURN v_errors;
END;
$$;

COMMENT ON FUNCTION enrolldb.link_program_enrollments(uuid, jsonb) IS
'The Django contract: takes {external_user_key: username}, returns {external_user_key: error} '
'for the failures only ({} when all succeeded).';

REVOKE ALL ON FUNCTION enrolldb.link_program_enrollments(uuid, text[], text[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.link_program_enrollments(uuid, jsonb) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.link_program_enrollments(uuid, text[], text[]) TO enrolldb_app;
GRANT EXECUTE ON FUNCTION enrolldb.link_program_enrollments(uuid, jsonb) TO enrolldb_app;
