-- Undo 0018_inlinable_key_functions: the definitions of 0008 and 0001 (same results, called
-- rather than inlined).

CREATE OR REPLACE FUNCTION enrolldb.canonical_external_key(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
RETURN (
    SELECT
        pg_catalog.regexp_replace(
            pg_catalog.normalize(s.k, 'NFC'),
            '^' || s.invisible || '+|' || s.invisible || '+$',
            '',
            'g'
        )
    FROM (
        SELECT
            p_key AS k,
            '[\u0009-\u000d\u0020\u0085\u00a0\u00ad\u034f\u061c\u115f-\u1160'
            '\u1680\u17b4-\u17b5\u180b-\u180f\u2000-\u200a\u200b-\u200f\u2028-\u2029'
            '\u202a-\u202e\u202f\u205f\u2060-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff'
            '\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a'
            '\U000e0000-\U000e0fff]' AS invisible
    ) AS s
);

CREATE OR REPLACE FUNCTION enrolldb.is_canonical_external_key(p_key text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
RETURN pg_catalog.char_length(p_key) BETWEEN 1 AND 255
AND p_key = enrolldb.canonical_external_key(p_key);
