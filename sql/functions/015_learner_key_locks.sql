-- The learner key locks: one row lock per (organization, lowered external user key), taken
-- first by every registrar write and SSO sign-in (the global lock order starts here; see
-- docs/design.md). Rows of enrolldb.learner_key_lock (migration 0007), which only the owner
-- can read or lock: no other role can hold a lock that these wait on.
-- lock order: docs/design.md#lock-order

CREATE OR REPLACE FUNCTION enrolldb_internal.learner_key_lock_id(
    p_organization_key text,
    p_lower_key text
)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN pg_catalog.hashtextextended(
    -- Length-prefixed, so no two (organization, key) pairs spell the same text.
    pg_catalog.char_length(p_organization_key)::text || ':' || p_organization_key || '/'
    || p_lower_key,
    48203
);

COMMENT ON FUNCTION enrolldb_internal.learner_key_lock_id(text, text) IS
'Internal: the learner_key_lock row of an organization''s learner key (the key as '
'comparable_external_key gives it): a 64-bit hash, stable across PostgreSQL versions '
'(hashtextextended is what hash partitioning relies on).';

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_learner_key_rows(
    p_organization_key text,
    p_lower_keys text[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- One statement creates the missing rows and locks the existing ones, in ascending
    -- lock_id (two calls sharing keys queue up instead of deadlocking). A row another
    -- transaction has just inserted makes this wait for that transaction, as a lock would.
    -- DO UPDATE rather than DO NOTHING + FOR UPDATE: the row is written, not only locked,
    -- so a REPEATABLE READ or SERIALIZABLE caller whose snapshot predates the commit of
    -- another holder of the key gets 40001 here instead of acting on a snapshot that misses
    -- that holder's sign-in or enrollment (an update is HOT: lock_id keeps its value).
    -- The plan does not depend on estimates: sort of the input, one index probe per key.
    INSERT INTO enrolldb.learner_key_lock AS l (lock_id)
    SELECT DISTINCT enrolldb_internal.learner_key_lock_id(p_organization_key, t.low) AS lock_id
    FROM unnest(p_lower_keys) AS t (low)
    WHERE t.low IS NOT NULL
    ORDER BY lock_id
    ON CONFLICT ON CONSTRAINT learnerkeylock_pk DO UPDATE SET lock_id = excluded.lock_id;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_learner_key_rows(text, text[]) IS
'Internal: locks the learner_key_lock rows of an organization''s learner keys (lowered, as '
'comparable_external_key gives them; NULLs ignored), creating missing ones, in ascending '
'lock_id. Taken before any other lock by registrar writes and SSO sign-ins.';
