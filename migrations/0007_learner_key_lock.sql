-- The key registry: one row per (organization, lowered external user key) ever written or
-- signed in, the row that registrar writes and SSO sign-ins lock for that learner.
-- depends: 0006_linear_trigger_plans

CREATE TABLE enrolldb.learner_key_lock (
    lock_id bigint NOT NULL,
    CONSTRAINT learnerkeylock_pk PRIMARY KEY (lock_id)
);

COMMENT ON TABLE enrolldb.learner_key_lock IS
'Maintained by the API, never written by hand: one row per learner key of an organization, '
'created on demand and locked by every registrar write and SSO sign-in of that key, so that '
'the two serialise (whichever commits second sees the first). lock_id is '
'enrolldb.learner_key_lock_id(organization, lowered key), a 64-bit hash: the table holds no '
'key in clear (retired keys stay retired), and a collision only serialises two learners. '
'Readable by the owner alone (a hash of a low-entropy key can be reversed by trying keys), and '
'no other role can lock its rows (a row lock needs UPDATE, a table lock that blocks writes '
'needs more than SELECT): no role but the API can hold a lock that the API waits on.';
COMMENT ON COLUMN enrolldb.learner_key_lock.lock_id IS
'enrolldb.learner_key_lock_id(organization_key, lower(canonical external_user_key)).';

REVOKE ALL ON enrolldb.learner_key_lock FROM public, enrolldb_app, enrolldb_readonly;
