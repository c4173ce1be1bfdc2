-- matriculate_learner: the SSO path. docs/reference.md, matriculate_learner. Its steps:
-- 029_matriculate_steps.sql.

CREATE OR REPLACE FUNCTION enrolldb.matriculate_learner(
    p_user_id integer,
    p_organization_key text,
    p_external_user_key text
)
RETURNS TABLE (program_enrollment_id integer, program_uuid uuid, error text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$#variable_conflict use_column
DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'matriculate_learner', TRUE
    );
    v_key text;
    v_username text;
    v_user_active boolean;
    v_low text;
    v_pe_ids integer[];
    v_failed integer[];
    v_errors text[];
BEGIN
    SELECT a.o_key, a.o_username, a.o_user_active INTO v_key, v_username, v_user_active
    FROM enrolldb_internal.check_matriculate_arguments(
        p_user_id, p_organization_key, p_external_user_key
    ) AS a;
    -- The key's comparable form: lower() of the canonical key just checked (one
    -- canonical_external_key call per sign-in; each costs a plan of its own per transaction).
    v_low := pg_catalog.lower(v_key);

    -- The learner key lock first, as every registrar write of the key takes it: a write that
    -- committed before this point is seen by every statement below (READ COMMITTED takes a
    -- snapshot per statement), and one that comes later waits for this transaction and then
    -- sees the identity recorded here.
    PERFORM enrolldb_internal.lock_learner_key_rows(p_organization_key, ARRAY[v_low]);

    -- Record (or move) the identity learned at this sign-in.
    INSERT INTO enrolldb.program_enrollments_learneridentity AS li (
        organization_key, external_user_key, user_id
    )
    VALUES (p_organization_key, v_key, p_user_id)
    ON CONFLICT (organization_key, pg_catalog.lower(external_user_key))
    DO UPDATE SET user_id = excluded.user_id
    WHERE li.user_id <> excluded.user_id;

    v_pe_ids := enrolldb_internal.lock_waiting_enrollments(p_user_id, p_organization_key, v_low);
    IF v_pe_ids IS NULL THEN
        RETURN;
    END IF;

    SELECT pg_catalog.array_agg(f.program_enrollment_id), pg_catalog.array_agg(f.message)
    INTO v_failed, v_errors
    FROM enrolldb_internal.matriculate_failures(p_user_id, v_username, v_pe_ids) AS f;

    PERFORM enrolldb_internal.matriculate_write(p_user_id, v_user_active, ARRAY(
        SELECT t.id FROM unnest(v_pe_ids) AS t (id)
        WHERE t.id <> ALL(COALESCE(v_failed, '{}'))
        ORDER BY t.id
    ));

    RETURN QUERY
    SELECT pe.id, pe.program_uuid, f.error
    FROM unnest(v_pe_ids) AS t (id)
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe ON t.id = pe.id
    LEFT JOIN unnest(v_failed, v_errors) AS f (unit, error) ON t.id = f.unit
    ORDER BY pe.id;
END;
$$;

COMMENT ON FUNCTION enrolldb.matriculate_learner(integer, text, text) IS
'SSO sign-in: takes the learner key lock of (organization, key), records the (organization, '
'key) -> user identity and links every waiting program enrollment of the organization''s '
'programs with that key (case-insensitive), in id order, each atomically. One row per '
'enrollment attempted; error is NULL on success. Never aborts the caller''s transaction for a '
'per-enrollment failure. A NULL argument: 22004; an unknown user: 23503; an invalid key or an '
'organization key empty after trimming or over 255 characters: 22023.';

REVOKE ALL ON FUNCTION enrolldb.matriculate_learner(integer, text, text) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.matriculate_learner(integer, text, text) TO enrolldb_app;
