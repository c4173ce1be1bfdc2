-- retire_user: remove a retired user's external keys. docs/reference.md, retire_user.

CREATE OR REPLACE FUNCTION enrolldb.retire_user(p_user_id integer)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'retire_user', TRUE
    );
    v_pe_ids integer[];
    v_orgs text[];
    v_lows text[];
    v_locked bigint[] := '{}';
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'retire_user: the user id may not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    -- lock order: docs/design.md#lock-order
    -- The learner key locks of every key the user is known by first (the global lock order):
    -- its identities and the keys of its enrollments, each with its organization. A registrar
    -- write or a sign-in of one of those keys then either committed before (and the reads
    -- below, new snapshots under READ COMMITTED, see its enrollment or identity, which this
    -- call retires) or waits for this call (and then finds the identity gone: it creates a
    -- waiting enrollment, not one realized for the retired user). A key that reached the user
    -- while this call waited is locked in the next round; the loop ends when a round finds no
    -- new key (a handful of rounds at most, not one per learner).
    LOOP
        SELECT pg_catalog.array_agg(k.org), pg_catalog.array_agg(k.low)
        INTO v_orgs, v_lows
        FROM (
            SELECT li.organization_key AS org, pg_catalog.lower(li.external_user_key) AS low
            FROM enrolldb.program_enrollments_learneridentity AS li
            WHERE li.user_id = p_user_id
            UNION
            SELECT p.authoring_organization_key, pg_catalog.lower(pe.external_user_key)
            FROM enrolldb.program_enrollments_programenrollment AS pe
            INNER JOIN enrolldb.program_enrollments_program AS p
                ON pe.program_uuid = p.program_uuid
            WHERE
                pe.user_id = p_user_id
                AND pe.external_user_key IS NOT NULL
                AND NOT EXISTS (
                    SELECT FROM enrolldb.retired_program_enrollment AS r
                    WHERE r.program_enrollment_id = pe.id
                )
        ) AS k
        WHERE enrolldb_internal.learner_key_lock_id(k.org, k.low) <> ALL(v_locked);
        EXIT WHEN v_orgs IS NULL;
        v_locked := v_locked || enrolldb_internal.lock_learner_key_pairs(v_orgs, v_lows);
    END LOOP;

    SELECT pg_catalog.array_agg(l.id ORDER BY l.id)
    INTO v_pe_ids
    FROM (
        SELECT pe.id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.user_id = p_user_id
        ORDER BY pe.id
        FOR UPDATE
    ) AS l;
    IF v_pe_ids IS NULL THEN
        RETURN FALSE;
    END IF;

    IF NOT EXISTS (SELECT FROM enrolldb.retirement_salt) THEN
        RAISE EXCEPTION 'retire_user: enrolldb.retirement_salt has no row, so no key can be retired'
            USING
                ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'Insert a new random salt (the migration made one); keys retired before '
                'keep their retired form.';
    END IF;

    -- Idempotent: an enrollment retired before keeps its retired key. Any other key is
    -- retired, whatever it looks like (one that a registrar wrote starting with
    -- retired_external_key_ included). The digest covers the enrollment id, so one key
    -- retired on several enrollments (re-enrolment after a retirement, two programs of one
    -- organization) gives distinct keys: no unique index and no waiting-learner row collides.
    WITH newly AS (
        INSERT INTO enrolldb.retired_program_enrollment (program_enrollment_id)
        SELECT pe.id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = ANY(v_pe_ids) AND pe.external_user_key IS NOT NULL
        ON CONFLICT ON CONSTRAINT retiredprogramenrollment_pk DO NOTHING
        RETURNING program_enrollment_id
    )

    UPDATE enrolldb.program_enrollments_programenrollment AS pe
    SET external_user_key = enrolldb_internal.retired_external_key(pe.id, pe.external_user_key)
    FROM newly
    WHERE pe.id = newly.program_enrollment_id;

    -- Every history row of these enrollments carries the retired key of the live row.
    UPDATE enrolldb.program_enrollments_historicalprogramenrollment AS h
    SET external_user_key = pe.external_user_key
    FROM enrolldb.program_enrollments_programenrollment AS pe
    WHERE
        h.id = pe.id
        AND pe.id = ANY(v_pe_ids)
        AND h.external_user_key IS DISTINCT FROM pe.external_user_key;

    -- The identities learned at sign-in hold the same keys.
    DELETE FROM enrolldb.program_enrollments_learneridentity AS li
    WHERE li.user_id = p_user_id;

    RETURN TRUE;
END;
$$;

COMMENT ON FUNCTION enrolldb.retire_user(integer) IS
'Replaces the external_user_key of every program enrollment of the user, in the live rows and '
'in all their history rows, by retired_external_key_ followed by a salted sha256 hex digest '
'unique to the enrollment (retired_external_key()), and forgets the user''s SSO identities. '
'Returns whether the user had any program enrollment. Idempotent: an enrollment retired before '
'is left as it is.';

REVOKE ALL ON FUNCTION enrolldb.retire_user(integer) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.retire_user(integer) TO enrolldb_app;
