-- The key functions inline into the statements that call them: same results, a fifth of the
-- cost of a link's key handling.
-- depends: 0017_pinned_trigger_plans

-- Why (measured, 100,000 keys 'KEY-<i>' in a table, one run):
--   SELECT count(enrolldb.comparable_external_key(k))    3,486 ms before, 535 ms after
--   SELECT count(enrolldb.is_canonical_external_key(k))  2,948 ms before, 116 ms after
-- A SQL function is inlined into the calling statement only when its body is a plain
-- expression: no sub-select, and, for a STRICT function, nothing that is not strict (AND is
-- not: NULL AND false is false). Neither function qualified: canonical_external_key built its
-- pattern in a sub-select (0008), and is_canonical_external_key is STRICT with an AND. Each
-- was called as a function instead, about 30 microseconds a call, three times per key in
-- comparable_external_key, and once per row in the CHECKs of the tables holding keys, on
-- every INSERT and UPDATE of those rows (a link's UPDATE of program enrollments included).
-- Linking 100,000 learners computed comparable keys twice per key (the Python client's
-- chunking, then the link itself): about 7 of its 30 seconds.
--
-- canonical_external_key: the same regular expression, written as one constant (the
-- sub-select of 0008 concatenated '^' || class || '+|' || class || '+$'; adjacent string
-- constants below are one constant). The character class is still the one of 0008's list.
-- Checked when written: both definitions give the same result for 'a' || chr(i) and for
-- chr(i) || 'b' || chr(i), for every code point i; tests/test_key_canonical.py checks every
-- code point at each end against the list, and that the three functions are inlined.
CREATE OR REPLACE FUNCTION enrolldb.canonical_external_key(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
RETURN pg_catalog.regexp_replace(
    pg_catalog.normalize(p_key, 'NFC'),
    '^[\u0009-\u000d\u0020\u0085\u00a0\u00ad\u034f\u061c\u115f-\u1160'
    '\u1680\u17b4-\u17b5\u180b-\u180f\u2000-\u200a\u200b-\u200f\u2028-\u2029'
    '\u202a-\u202e\u202f\u205f\u2060-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff'
    '\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a'
    '\U000e0000-\U000e0fff]+'
    '|[\u0009-\u000d\u0020\u0085\u00a0\u00ad\u034f\u061c\u115f-\u1160'
    '\u1680\u17b4-\u17b5\u180b-\u180f\u2000-\u200a\u200b-\u200f\u2028-\u2029'
    '\u202a-\u202e\u202f\u205f\u2060-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff'
    '\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a'
    '\U000e0000-\U000e0fff]+$',
    '',
    'g'
);

-- is_canonical_external_key: no longer STRICT, so that it can be inlined. Its result for
-- NULL is still NULL (char_length(NULL) is NULL, and NULL AND NULL is NULL), which a CHECK
-- accepts, as before (a program enrollment's key may be NULL; the identities' may not).
CREATE OR REPLACE FUNCTION enrolldb.is_canonical_external_key(p_key text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
CALLED ON NULL INPUT
PARALLEL SAFE
RETURN pg_catalog.char_length(p_key) BETWEEN 1 AND 255
AND p_key = enrolldb.canonical_external_key(p_key);
