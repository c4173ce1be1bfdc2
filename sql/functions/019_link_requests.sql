-- The steps of link_program_enrollments (020, 021), each over the call's elements as one
-- array of enrolldb_internal.link_request: the arguments' checks, rules 1-3 (no lock), the
-- program enrollments' locks, rules 4 and 5 (on the locked rows), the units handed to
-- link_locked, and the failures as the jsonb object of the json and jsonb forms.
-- docs/reference.md, link_program_enrollments. Lock order and plan shapes: 011_locks.sql.
--
-- Every step keeps the plan settings of the array form: custom plans (the arrays are
-- planned as values, estimated at their real length) and no JIT.

CREATE OR REPLACE FUNCTION enrolldb_internal.check_link_arguments(
    p_program_uuid uuid,
    p_external_user_keys text[],
    p_usernames text[]
)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
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
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.check_link_arguments(uuid, text[], text[]) IS
'Internal: raises the errors of a malformed link_program_enrollments call (NULLs: 22004; '
'arrays of other shapes or lengths, an unknown program: 22023).';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_requests(
    p_external_user_keys text[],
    p_usernames text[]
)
RETURNS enrolldb_internal.link_request[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    -- Rules 1-3, which need no lock: the key's shape, duplicates in the call, the user.
    RETURN ARRAY(
        SELECT
            ROW(
                c.ord,
                c.k,
                c.u,
                c.low,
                c.user_id,
                CASE
                    WHEN c.low IS NULL THEN enrolldb_internal.invalid_key_message(c.k)
                    WHEN c.n_same > 1 THEN enrolldb_internal.duplicate_key_message(c.k)
                    WHEN c.user_id IS NULL THEN enrolldb_internal.unknown_user_message(c.u)
                END,
                FALSE
            )::enrolldb_internal.link_request
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
        ) AS c
        ORDER BY c.ord
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_requests(text[], text[]) IS
'Internal: the elements of a link_program_enrollments call in input order, with rules 1-3 '
'applied (invalid key, key given twice, unknown username: the first as error).';

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_requested_program_enrollments(
    p_program_uuid uuid,
    p_requests enrolldb_internal.link_request[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
DECLARE
    v_pe_ids integer[];
BEGIN
    -- The program's enrollments of the elements still without error, in id order. Every
    -- statement reaches the tables from the input, one index probe per element (LATERAL ...
    -- OFFSET 0), as in 011_locks.sql: with stale statistics a join of the input with the
    -- program's enrollments was planned as a nested loop rescanning the whole input for each
    -- enrollment (10,000 learners: 17.9 s, "Rows Removed by Join Filter: 49995000").
    -- The program is tested outside the sub-select, so that the probe can only use the key's
    -- index: with `program_uuid = ...` inside it, statistics from before the program existed
    -- made programenrollment_program_idx look like one row, and every probe read the whole
    -- program (10,000 learners: 20.3 s, "Rows Removed by Filter: 9999" per probe).
    SELECT pg_catalog.array_agg(r.id ORDER BY r.id)
    INTO v_pe_ids
    FROM unnest(p_requests) AS e
    CROSS JOIN LATERAL (
        SELECT pe.id, pe.program_uuid
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pg_catalog.lower(pe.external_user_key) = e.lower_key
        OFFSET 0
    ) AS r
    WHERE e.error IS NULL AND r.program_uuid = p_program_uuid;

    PERFORM 1
    FROM unnest(v_pe_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT pe.id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = t.id
        OFFSET 0
        FOR UPDATE OF pe
    ) AS locked;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_requested_program_enrollments(
    uuid, enrolldb_internal.link_request[]
) IS
'Internal: locks FOR UPDATE, in id order, the program''s enrollments of the link elements that '
'have no error yet (the first lock of the global lock order).';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_requests_on_locked_rows(
    p_program_uuid uuid,
    p_requests enrolldb_internal.link_request[]
)
RETURNS enrolldb_internal.link_request[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    -- Rules 4 and 5, on the locked rows; and whether the element relinks.
    RETURN ARRAY(
        SELECT
            ROW(
                e.ord,
                e.external_user_key,
                e.username,
                e.lower_key,
                e.user_id,
                COALESCE(e.error, m.err),
                COALESCE(m.relinked, FALSE)
            )::enrolldb_internal.link_request
        FROM unnest(p_requests) AS e
        LEFT JOIN LATERAL (
            SELECT
                CASE
                    WHEN pg_catalog.count(pe.id) = 0
                        THEN enrolldb_internal.no_program_enrollment_message(
                            p_program_uuid, e.external_user_key
                        )
                    WHEN pg_catalog.bool_and(pe.user_id IS NOT DISTINCT FROM e.user_id)
                        THEN enrolldb_internal.already_linked_message(
                            (pg_catalog.array_agg(pe.external_user_key ORDER BY pe.id))[1],
                            e.username
                        )
                END AS err,
                COALESCE(pg_catalog.bool_or(pe.user_id <> e.user_id), FALSE) AS relinked
            FROM (
                SELECT x.id, x.user_id, x.external_user_key::text AS external_user_key, x.program_uuid
                FROM enrolldb.program_enrollments_programenrollment AS x
                WHERE pg_catalog.lower(x.external_user_key) = e.lower_key
                OFFSET 0
            ) AS pe
            WHERE pe.program_uuid = p_program_uuid
        ) AS m ON e.error IS NULL
        ORDER BY e.ord
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_requests_on_locked_rows(
    uuid, enrolldb_internal.link_request[]
) IS
'Internal: the link elements with rules 4 and 5 applied to the program''s (locked) enrollments '
'of their keys (none found, all already linked to the user), and relinked set.';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_request_units(
    p_program_uuid uuid,
    p_requests enrolldb_internal.link_request[]
)
RETURNS enrolldb_internal.link_unit[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    -- One unit per element (its position): its enrollments not yet linked to the target user.
    RETURN ARRAY(
        SELECT ROW(e.ord, pe.id, e.user_id)::enrolldb_internal.link_unit
        FROM unnest(p_requests) AS e
        CROSS JOIN LATERAL (
            SELECT x.id, x.user_id, x.program_uuid
            FROM enrolldb.program_enrollments_programenrollment AS x
            WHERE pg_catalog.lower(x.external_user_key) = e.lower_key
            OFFSET 0
        ) AS pe
        WHERE
            e.error IS NULL
            AND pe.program_uuid = p_program_uuid
            AND pe.user_id IS DISTINCT FROM e.user_id
        ORDER BY pe.id
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_request_units(
    uuid, enrolldb_internal.link_request[]
) IS
'Internal: the units link_locked links for the link elements without error: each element''s '
'program enrollments not yet linked to its user (unit = the element''s position).';

CREATE OR REPLACE FUNCTION enrolldb_internal.check_link_object(
    p_object_type text,
    p_username_types text[]
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    IF p_object_type <> 'object' THEN
        RAISE EXCEPTION 'link_program_enrollments: expected a JSON object '
            '{external_user_key: username}, got a JSON %', p_object_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF 'null' = ANY(p_username_types) THEN
        RAISE EXCEPTION 'link_program_enrollments: the username of an external user key is null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT FROM unnest(p_username_types) AS t (typ) WHERE t.typ <> 'string') THEN
        RAISE EXCEPTION 'link_program_enrollments: every username must be a JSON string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.check_link_object(text, text[]) IS
'Internal: raises the errors of a json or jsonb link_program_enrollments argument that is not '
'an object of strings, given its JSON type and the JSON types of its values.';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_failures_object(
    p_program_uuid uuid,
    p_external_user_keys text[],
    p_usernames text[]
)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET jit = off
AS $$
BEGIN
    -- PL/pgSQL, not a SQL function: its body is not checked at CREATE time, when the array
    -- form (020) may not exist yet.
    RETURN (
        SELECT
            COALESCE(
                pg_catalog.jsonb_object_agg(r.external_user_key, r.error)
                FILTER (WHERE r.error IS NOT NULL),
                '{}'::jsonb
            )
        FROM enrolldb.link_program_enrollments(
            p_program_uuid, p_external_user_keys, p_usernames
        ) AS r
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_failures_object(uuid, text[], text[]) IS
'Internal: the result of the json and jsonb forms of link_program_enrollments: links with the '
'array form and returns {external_user_key: error} of the failures ({} when none).';
