-- matriculate_learner: the SSO path. SPEC 4.2.

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
SET plan_cache_mode = force_custom_plan
AS $$#variable_conflict use_column
DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'matriculate_learner', TRUE
    );
    v_key text;
    v_pe_ids integer[];
    v_pe_id integer;
    v_error text;
BEGIN
    IF p_user_id IS NULL OR p_organization_key IS NULL OR p_external_user_key IS NULL THEN
        RAISE EXCEPTION 'matriculate_learner: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM enrolldb.auth_user AS u WHERE u.id = p_user_id) THEN
        RAISE EXCEPTION 'matriculate_learner: no user with id=% exists', p_user_id
            USING ERRCODE = 'foreign_key_violation',
            CONSTRAINT = 'learneridentity_user_fk',
            TABLE = 'program_enrollments_learneridentity',
            SCHEMA = 'enrolldb';
    END IF;
    v_key := enrolldb.canonical_external_key(p_external_user_key);
    IF NOT enrolldb.is_canonical_external_key(v_key) THEN
        RAISE EXCEPTION 'Invalid external user key %', p_external_user_key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Record (or move) the identity learned at this sign-in.
    INSERT INTO enrolldb.program_enrollments_learneridentity AS li (
        organization_key, external_user_key, user_id
    )
    VALUES (p_organization_key, v_key, p_user_id)
    ON CONFLICT (organization_key, pg_catalog.lower(external_user_key))
    DO UPDATE SET user_id = excluded.user_id
    WHERE li.user_id <> excluded.user_id;

    -- The waiting enrollments of this organization's programs with this key, locked in id order.
    SELECT pg_catalog.array_agg(w.id ORDER BY w.id)
    INTO v_pe_ids
    FROM (
        SELECT pe.id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        INNER JOIN enrolldb.program_enrollments_program AS p
            ON pe.program_uuid = p.program_uuid
        WHERE
            pg_catalog.lower(pe.external_user_key) = pg_catalog.lower(v_key)
            AND pe.user_id IS NULL
            AND p.authoring_organization_key = p_organization_key
        ORDER BY pe.id
        FOR UPDATE OF pe
    ) AS w;

    -- Each enrollment is linked atomically, in id order: an enrollment sees the links of the
    -- ones before it. A learner has one enrollment per program and curriculum, so this loop
    -- runs a handful of times, never once per learner of a bulk operation.
    FOREACH v_pe_id IN ARRAY COALESCE(v_pe_ids, '{}') LOOP
        SELECT f.error INTO v_error
        FROM enrolldb.link_locked(ARRAY[v_pe_id], ARRAY[v_pe_id], ARRAY[p_user_id]) AS f;

        RETURN QUERY
        SELECT pe.id, pe.program_uuid, v_error
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = v_pe_id;
        v_error := NULL;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION enrolldb.matriculate_learner(integer, text, text) IS
'SSO sign-in: records the (organization, key) -> user identity and links every waiting program '
'enrollment of the organization''s programs with that key (case-insensitive), in id order, each '
'atomically. One row per enrollment attempted; error is NULL on success. Never aborts the '
'caller''s transaction for a per-enrollment failure.';

REVOKE ALL ON FUNCTION enrolldb.matriculate_learner(integer, text, text) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.matriculate_learner(integer, text, text) TO enrolldb_app;
