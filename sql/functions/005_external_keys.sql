-- How every API function compares external user keys.

CREATE OR REPLACE FUNCTION enrolldb.comparable_external_key(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN (
    SELECT CASE WHEN pg_catalog.char_length(c.k) BETWEEN 1 AND 255 THEN pg_catalog.lower(c.k) END
    FROM (SELECT enrolldb.canonical_external_key(p_key) AS k) AS c
);

COMMENT ON FUNCTION enrolldb.comparable_external_key(text) IS
'The form in which keys are compared (as the stored keys are, docs/reference.md, Schema): '
'lower() of the canonical '
'key; NULL when the key is not valid (empty after trimming or longer than 255 characters). Two '
'keys are the same learner''s key when their comparable forms are equal.';

REVOKE ALL ON FUNCTION enrolldb.comparable_external_key(text) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.comparable_external_key(text) TO enrolldb_app, enrolldb_readonly;
