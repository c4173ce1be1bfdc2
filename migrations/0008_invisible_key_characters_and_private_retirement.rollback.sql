-- Undo 0008_invisible_key_characters_and_private_retirement. Keys canonicalised or retired
-- again stay as they are (they are canonical under the old definition too). The salt stays
-- readable by the owner alone, unlike 0.1.0: it is the live salt of the keys retired so far,
-- and a role that can read it can reverse a retired key by trying candidate keys, so no
-- rollback hands it out (retire_user, SECURITY DEFINER, reads it with the owner's rights).
DROP FUNCTION enrolldb.retired_external_key(integer, text);
DROP TABLE enrolldb.retired_program_enrollment;

COMMENT ON TABLE enrolldb.retirement_salt IS
'One row: the per-database salt of retired external keys (retired_external_key_ || '
'sha256(salt || key)). Generated at migration; a DBA may replace it before any retirement.';

CREATE OR REPLACE FUNCTION enrolldb.canonical_external_key(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
RETURN pg_catalog.regexp_replace(
    pg_catalog.normalize(p_key, 'NFC'),
    -- Unicode White_Space plus the zero-width characters U+180E, U+200B-U+200D, U+2060, U+FEFF.
    '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u180e\u2000-\u200d\u2028\u2029\u202f'
    '\u205f\u2060\u3000\ufeff]+'
    '|[\u0009-\u000d\u0020\u0085\u00a0\u1680\u180e\u2000-\u200d\u2028\u2029\u202f'
    '\u205f\u2060\u3000\ufeff]+$',
    '',
    'g'
);

COMMENT ON FUNCTION enrolldb.canonical_external_key(text) IS
'The canonical form of an external user key: Unicode NFC, without leading or trailing '
'whitespace (Unicode whitespace and zero-width characters included). Stored keys are canonical; '
'lookups compare lower(canonical_external_key(input)) with lower(stored key).';
