-- Schema enrolldb_internal: the functions the API is built from, out of the API's schema.
-- depends: 0010_key_columns_without_statistics

-- Why: schema enrolldb holds the tables and exactly the documented API, so `\df enrolldb.*`
-- is the API and nothing else. Internal helpers (locks, planning, writes) live here. The
-- API functions are SECURITY DEFINER and owned by the owner, so they reach this schema as
-- the owner; no other role is ever granted USAGE on it (sql/functions/000_privileges.sql
-- resets its privileges on every migrate, 999_internal_privileges.sql takes EXECUTE back
-- from PUBLIC on every function in it).

CREATE SCHEMA enrolldb_internal;

COMMENT ON SCHEMA enrolldb_internal IS
'enrolldb internals: the functions the API functions are built from. Owner only, never granted.';

REVOKE ALL ON SCHEMA enrolldb_internal FROM public;
