-- link_program_enrollments: link a program's waiting (or otherwise linked) enrollments to LMS
-- users by external key, in bulk. docs/reference.md, link_program_enrollments. The array form
-- runs the steps of 019_link_requests.sql and link_locked (018); the jsonb form is a thin
-- wrapper over it.

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
    v_requests enrolldb_internal.link_request[];
    v_failed_ords integer[];
    v_failed_errors text[];
BEGIN
    PERFORM enrolldb_internal.check_link_arguments(
        p_program_uuid, p_external_user_keys, p_usernames
    );
    IF pg_catalog.cardinality(p_external_user_keys) = 0 THEN
        RETURN;
    END IF;
    -- Under REPEATABLE READ or SERIALIZABLE only: the call's key locks first, so that a
    -- snapshot older than a concurrent write of one of the keys gets 40001 instead of a link
    -- that misses that write (016_key_lock_guards.sql). Nothing under READ COMMITTED.
    PERFORM enrolldb_internal.lock_program_keys_for_snapshot(p_program_uuid, p_external_user_keys);

    -- Rules 1-3 (no lock), the program enrollments' locks, rules 4 and 5 on the locked rows.
    v_requests := enrolldb_internal.link_requests(p_external_user_keys, p_usernames);
    PERFORM enrolldb_internal.lock_requested_program_enrollments(p_program_uuid, v_requests);
    v_requests := enrolldb_internal.link_requests_on_locked_rows(p_program_uuid, v_requests);

    SELECT pg_catalog.array_agg(f.unit), pg_catalog.array_agg(f.error)
    INTO v_failed_ords, v_failed_errors
    FROM enrolldb_internal.link_locked(
        enrolldb_internal.link_request_units(p_program_uuid, v_requests)
    ) AS f;

    RETURN QUERY
    SELECT
        e.external_user_key,
        e.username,
        CASE
            WHEN COALESCE(e.error, f.error) IS NOT NULL THEN 'failed'
            WHEN e.relinked THEN 'relinked'
            ELSE 'linked'
        END,
        COALESCE(e.error, f.error)
    FROM unnest(v_requests) AS e
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
BEGIN
    IF p_program_uuid IS NULL OR p_external_keys_to_usernames IS NULL THEN
        RAISE EXCEPTION 'link_program_enrollments: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM enrolldb_internal.check_link_object(
        pg_catalog.jsonb_typeof(p_external_keys_to_usernames),
        CASE WHEN pg_catalog.jsonb_typeof(p_external_keys_to_usernames) = 'object' THEN ARRAY(
            SELECT pg_catalog.jsonb_typeof(j.value)
            FROM pg_catalog.jsonb_each(p_external_keys_to_usernames) AS j
        ) END
    );

    SELECT
        COALESCE(pg_catalog.array_agg(j.key ORDER BY j.key), '{}'),
        COALESCE(pg_catalog.array_agg(j.value ORDER BY j.key), '{}')
    INTO v_keys, v_usernames
    FROM pg_catalog.jsonb_each_text(p_external_keys_to_usernames) AS j;

    RETURN enrolldb_internal.link_failures_object(p_program_uuid, v_keys, v_usernames);
END;
$$;

COMMENT ON FUNCTION enrolldb.link_program_enrollments(uuid, jsonb) IS
'The Django contract: takes {external_user_key: username}, returns {external_user_key: error} '
'for the failures only ({} when all succeeded).';

REVOKE ALL ON FUNCTION enrolldb.link_program_enrollments(uuid, text[], text[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.link_program_enrollments(uuid, jsonb) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.link_program_enrollments(uuid, text[], text[]) TO enrolldb_app;
GRANT EXECUTE ON FUNCTION enrolldb.link_program_enrollments(uuid, jsonb) TO enrolldb_app;
