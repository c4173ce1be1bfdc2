-- How every API function compares external user keys.

-- Why no SET clause and not STRICT, unlike other functions: a SQL function is inlined into
-- the calling statement only without them (and without a sub-select), and so are the two
-- key helpers it calls since migration 0018. Inlined, the three cost a few regular-expression
-- evaluations per key (5 microseconds); called, about 35 microseconds per key (0018 says
-- why), once or twice per element of a link. Every name in it is schema-qualified, so no
-- search_path can change it; a NULL key still gives NULL.
CREATE OR REPLACE FUNCTION enrolldb.comparable_external_key(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE
    WHEN enrolldb.is_canonical_external_key(enrolldb.canonical_external_key(p_key))
        THEN pg_catalog.lower(enrolldb.canonical_external_key(p_key))
END;

COMMENT ON FUNCTION enrolldb.comparable_external_key(text) IS
'The form in which keys are compared (as the stored keys are, docs/reference.md, Schema): '
'lower() of the canonical key; NULL when the key is not valid (its canonical form is not '
'is_canonical_external_key: empty after trimming or longer than 255 characters). Two keys are '
'the same learner''s key when their comparable forms are equal.';

REVOKE ALL ON FUNCTION enrolldb.comparable_external_key(text) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.comparable_external_key(text) TO enrolldb_app, enrolldb_readonly;
