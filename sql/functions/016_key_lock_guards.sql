-- Learner key locks for the callers that do not write keys themselves: retire_user (every key
-- a user is known by, across organizations) and, under REPEATABLE READ or SERIALIZABLE only,
-- link_program_enrollments and unlink_program_enrollment (the snapshot guard). See the lock
-- order and the isolation levels in docs/design.md.
-- lock order: docs/design.md#lock-order

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_learner_key_pairs(
    p_organization_keys text[],
    p_lower_keys text[]
)
RETURNS bigint[]
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$DECLARE
    v_lock_ids bigint[];
BEGIN
    -- As lock_learner_key_rows, for keys of several organizations in one statement: all in
    -- ascending lock_id, so no caller of either function can deadlock with it.
    WITH locked AS (
        INSERT INTO enrolldb.learner_key_lock AS l (lock_id)
        SELECT DISTINCT enrolldb_internal.learner_key_lock_id(t.org, t.low) AS lock_id
        FROM unnest(p_organization_keys, p_lower_keys) AS t (org, low)
        WHERE t.org IS NOT NULL AND t.low IS NOT NULL
        ORDER BY lock_id
        ON CONFLICT ON CONSTRAINT learnerkeylock_pk DO UPDATE SET lock_id = excluded.lock_id
        RETURNING l.lock_id
    )

    SELECT COALESCE(pg_catalog.array_agg(locked.lock_id), '{}') INTO v_lock_ids
    FROM locked;
    RETURN v_lock_ids;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_learner_key_pairs(text[], text[]) IS
'Internal: locks the learner_key_lock rows of (organization, lowered key) pairs given as two '
'parallel arrays (pairs with a NULL ignored), creating missing ones, in ascending lock_id; '
'returns the lock ids. lock_learner_key_rows for keys of several organizations.';

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_program_keys_for_snapshot(
    p_program_uuid uuid,
    p_external_user_keys text[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- READ COMMITTED: nothing. Each statement of the caller takes a new snapshot after its
    -- row locks, and the bulk link takes no key lock (its cost stays one call).
    IF pg_catalog.current_setting('transaction_isolation') = 'read committed' THEN
        RETURN;
    END IF;
    -- REPEATABLE READ or SERIALIZABLE: the snapshot predates the call. Every write and sign-in
    -- of a key writes its key lock row, so writing it here too raises 40001 when another
    -- holder of one of the keys committed after the snapshot was taken (a course enrollment
    -- this snapshot does not see), and makes a holder that comes later wait for this call.
    PERFORM enrolldb_internal.lock_learner_key_rows(
        (
            SELECT p.authoring_organization_key
            FROM enrolldb.program_enrollments_program AS p
            WHERE p.program_uuid = p_program_uuid
        ),
        ARRAY(
            SELECT enrolldb.comparable_external_key(t.k)
            FROM unnest(p_external_user_keys) AS t (k)
        )
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_program_keys_for_snapshot(uuid, text[]) IS
'Internal: under REPEATABLE READ or SERIALIZABLE, locks (writes) the learner key rows of the '
'given keys for the program''s organization, so that a snapshot older than another writer''s '
'commit of one of those keys gets 40001 rather than a stale result; under READ COMMITTED does '
'nothing. Called first by link_program_enrollments and unlink_program_enrollment.';
