-- link_program_enrollments(uuid, json): the Django contract on the text as sent.
-- docs/reference.md, link_program_enrollments.
-- jsonb keeps only the last of two equal keys before any function sees them; json keeps
-- every pair, so a key written twice reaches the array form twice and fails by its rule 2.

CREATE OR REPLACE FUNCTION enrolldb.link_program_enrollments(
    p_program_uuid uuid,
    p_external_keys_to_usernames json
)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'link_program_enrollments', TRUE
    );
    v_keys text[];
    v_usernames text[];
    v_types text[];
    v_errors jsonb;
BEGIN
    IF p_program_uuid IS NULL OR p_external_keys_to_usernames IS NULL THEN
        RAISE EXCEPTION 'link_program_enrollments: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.json_typeof(p_external_keys_to_usernames) <> 'object' THEN
        RAISE EXCEPTION 'link_program_enrollments: expected a JSON object '
            '{external_user_key: username}, got a JSON %',
            pg_catalog.json_typeof(p_external_keys_to_usernames)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Every pair, in the order sent, duplicates included.
    SELECT
        COALESCE(pg_catalog.array_agg(e.key ORDER BY e.n), '{}'),
        COALESCE(pg_catalog.array_agg(e.value #>> '{}' ORDER BY e.n), '{}'),
        COALESCE(pg_catalog.array_agg(pg_catalog.json_typeof(e.value) ORDER BY e.n), '{}')
    INTO v_keys, v_usernames, v_types
    FROM pg_catalog.json_each(p_external_keys_to_usernames) WITH ORDINALITY AS e (key, value, n);
    IF 'null' = ANY(v_types) THEN
        RAISE EXCEPTION 'link_program_enrollments: the username of an external user key is null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.unnest(v_types) AS t (typ) WHERE t.typ <> 'string') THEN
        RAISE EXCEPTION 'link_program_enrollments: every username must be a JSON string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

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

COMMENT ON FUNCTION enrolldb.link_program_enrollments(uuid, json) IS
'The Django contract on the JSON text as sent: takes {external_user_key: username}, returns '
'{external_user_key: error} for the failures only ({} when all succeeded). Unlike the jsonb '
'form, a key written twice is seen twice and fails ("provided multiple times").';

REVOKE ALL ON FUNCTION enrolldb.link_program_enrollments(uuid, json) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.link_program_enrollments(uuid, json) TO enrolldb_app;
