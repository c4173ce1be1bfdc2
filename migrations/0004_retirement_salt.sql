-- The salt that retire_user mixes into the digests of retired external keys.
-- depends: 0003_integrity_triggers

CREATE TABLE enrolldb.retirement_salt (
    singleton boolean NOT NULL DEFAULT TRUE,
    salt text NOT NULL,
    CONSTRAINT retirement_salt_pk PRIMARY KEY (singleton),
    CONSTRAINT retirement_salt_singleton_ck CHECK (singleton)
);

COMMENT ON TABLE enrolldb.retirement_salt IS
'One row: the per-database salt of retired external keys (retired_external_key_ || '
'sha256(salt || key)). Generated at migration; a DBA may replace it before any retirement.';

INSERT INTO enrolldb.retirement_salt (salt)
VALUES (
    pg_catalog.replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
);

GRANT SELECT ON enrolldb.retirement_salt TO enrolldb_app, enrolldb_readonly;
