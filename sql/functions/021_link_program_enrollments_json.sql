-- link_program_enrollments(uuid, json): the Django contract on the text as sent.
-- docs/reference.md, link_program_enrollments.
-- jsonb keeps only the last of two equal keys before any function sees them; json keeps
-- every pair, so a key written twice reaches the array form twice and fails by its rule 2.
-- A thin wrapper: the checks and the result are the jsonb form's (019_link_requests.sql).

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
BEGIN
    IF p_program_uuid IS NULL OR p_external_keys_to_usernames IS NULL THEN
        RAISE EXCEPTION 'link_program_enrollments: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM enrolldb_internal.check_link_object(
        pg_catalog.json_typeof(p_external_keys_to_usernames), '{}'
    );

    -- Every pair, in the order sent, duplicates included.
    SELECT
        COALESCE(pg_catalog.array_agg(e.key ORDER BY e.n), '{}'),
        COALESCE(pg_catalog.array_agg(e.value #>> '{}' ORDER BY e.n), '{}'),
        COALESCE(pg_catalog.array_agg(pg_catalog.json_typeof(e.value) ORDER BY e.n), '{}')
    INTO v_keys, v_usernames, v_types
    FROM pg_catalog.json_each(p_external_keys_to_usernames) WITH ORDINALITY AS e (key, value, n);
    PERFORM enrolldb_internal.check_link_object('object', v_types);

    RETURN enrolldb_internal.link_failures_object(p_program_uuid, v_keys, v_usernames);
END;
$$;

COMMENT ON FUNCTION enrolldb.link_program_enrollments(uuid, json) IS
'The Django contract on the JSON text as sent: takes {external_user_key: username}, returns '
'{external_user_key: error} for the failures only ({} when all succeeded). Unlike the jsonb '
'form, a key written twice is seen twice and fails ("provided multiple times").';

REVOKE ALL ON FUNCTION enrolldb.link_program_enrollments(uuid, json) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.link_program_enrollments(uuid, json) TO enrolldb_app;
