-- Keys lose every invisible character at both ends; retirement digests per enrollment, salt
-- readable by the owner alone.
-- depends: 0007_learner_key_lock

-- The history rows this migration writes say why.
DO $$
BEGIN
    PERFORM pg_catalog.set_config(
        'enrolldb.history_change_reason',
        '0008_invisible_key_characters_and_private_retirement',
        TRUE
    );
END;
$$;

-- 1. Canonical keys ---------------------------------------------------------------------------
-- The one definition of the characters a key loses at both ends: Unicode White_Space plus
-- Default_Ignorable_Code_Point, as listed by the Unicode Character Database 14.0.0
-- (PropList.txt White_Space; DerivedCoreProperties.txt Default_Ignorable_Code_Point, i.e.
-- Other_Default_Ignorable_Code_Point + Cf + Variation_Selector - White_Space - FFF9..FFFB
-- - 13430..13438 - Prepended_Concatenation_Mark). One range per line below, in code point
-- order; WS = White_Space, DI = Default_Ignorable_Code_Point.
--   WS 0009-000D, WS 0020, WS 0085, WS 00A0, DI 00AD, DI 034F, DI 061C, DI 115F-1160,
--   WS 1680, DI 17B4-17B5, DI 180B-180F, WS 2000-200A, DI 200B-200F, WS 2028-2029,
--   DI 202A-202E, WS 202F, WS 205F, DI 2060-206F, WS 3000, DI 3164, DI FE00-FE0F, DI FEFF,
--   DI FFA0, DI FFF0-FFF8, DI 1BCA0-1BCA3, DI 1D173-1D17A, DI E0000-E0FFF.
-- Every other function (is_canonical_external_key and so the CHECKs, comparable_external_key
-- and so every lookup and the Python client's chunking) goes through this one.
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

COMMENT ON FUNCTION enrolldb.canonical_external_key(text) IS
'The canonical form of an external user key: Unicode NFC, without leading or trailing invisible '
'characters (Unicode 14.0 White_Space plus Default_Ignorable_Code_Point: bidi marks, zero-width '
'characters, soft hyphen, variation selectors, tags, Hangul fillers, ...). Stored keys are '
'canonical; lookups compare lower(canonical_external_key(input)) with lower(stored key).';

-- An index on an expression of these functions would hold values of the old definition.
DO $$
DECLARE
    v_index regclass;
BEGIN
    FOR v_index IN
        SELECT i.indexrelid::regclass
        FROM pg_catalog.pg_index AS i
        INNER JOIN pg_catalog.pg_class AS c ON i.indexrelid = c.oid
        WHERE
            c.relnamespace = 'enrolldb'::regnamespace
            AND pg_catalog.pg_get_indexdef(i.indexrelid) ~ '(canonical|comparable)_external_key'
    LOOP
        EXECUTE pg_catalog.format('REINDEX INDEX %s', v_index);
    END LOOP;
END;
$$;

-- Existing keys that the new definition changes (e.g. 'GT-5' followed by U+200E) are
-- canonicalised in place, unless that would make a key empty or make two rows one learner's:
-- then nothing is changed and the migration stops, naming the rows to repair first.
DO $$
DECLARE
    v_problems text;
BEGIN
    SELECT pg_catalog.string_agg(p.problem, '; ' ORDER BY p.problem)
    INTO v_problems
    FROM (
        SELECT pg_catalog.format(
            'program enrollment id=%s: key %L is empty without its invisible characters',
            pe.id, pe.external_user_key
        ) AS problem
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE enrolldb.canonical_external_key(pe.external_user_key) = ''
        UNION ALL
        SELECT pg_catalog.format(
            'learner identity id=%s: key %L is empty without its invisible characters',
            li.id, li.external_user_key
        )
        FROM enrolldb.program_enrollments_learneridentity AS li
        WHERE enrolldb.canonical_external_key(li.external_user_key) = ''
        UNION ALL
        SELECT pg_catalog.format(
            'program enrollments id=%s would hold one key in one program and curriculum',
            pg_catalog.string_agg(pe.id::text, ',' ORDER BY pe.id)
        )
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.external_user_key IS NOT NULL
        GROUP BY
            pg_catalog.lower(enrolldb.canonical_external_key(pe.external_user_key)),
            pe.program_uuid,
            pe.curriculum_uuid
        HAVING pg_catalog.count(*) > 1
        UNION ALL
        SELECT pg_catalog.format(
            'learner identities id=%s would hold one key of one organization',
            pg_catalog.string_agg(li.id::text, ',' ORDER BY li.id)
        )
        FROM enrolldb.program_enrollments_learneridentity AS li
        GROUP BY
            li.organization_key, pg_catalog.lower(enrolldb.canonical_external_key(li.external_user_key))
        HAVING pg_catalog.count(*) > 1
        UNION ALL
        SELECT pg_catalog.format(
            'program course enrollments id=%s would be two active rows of one waiting learner '
            'in course %s',
            pg_catalog.string_agg(pce.id::text, ',' ORDER BY pce.id),
            pce.course_key
        )
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
            ON pce.program_enrollment_id = pe.id
        INNER JOIN enrolldb.program_enrollments_program AS p ON pe.program_uuid = p.program_uuid
        WHERE pce.status = 'active' AND pe.user_id IS NULL AND pe.external_user_key IS NOT NULL
        GROUP BY
            p.authoring_organization_key,
            pg_catalog.lower(enrolldb.canonical_external_key(pe.external_user_key)),
            pce.course_key
        HAVING pg_catalog.count(*) > 1
    ) AS p;
    IF v_problems IS NOT NULL THEN
        RAISE EXCEPTION 'enrolldb 0008: keys that differ only by invisible characters at their ends '
            'are one learner''s from now on, and these rows cannot be canonicalised: %', v_problems
            USING
                ERRCODE = 'check_violation',
                HINT = 'Repair these rows (delete the duplicate, or retire or change one key), then '
                'migrate again. Nothing was changed.';
    END IF;
END;
$$;

UPDATE enrolldb.program_enrollments_programenrollment AS pe
SET external_user_key = enrolldb.canonical_external_key(pe.external_user_key)
WHERE pe.external_user_key <> enrolldb.canonical_external_key(pe.external_user_key);

UPDATE enrolldb.program_enrollments_learneridentity AS li
SET external_user_key = enrolldb.canonical_external_key(li.external_user_key)
WHERE li.external_user_key <> enrolldb.canonical_external_key(li.external_user_key);

-- 2. Retirement -------------------------------------------------------------------------------
-- The salt is the owner's alone: with it and the history, any reader could recompute the
-- digest of every candidate key of an institution (keys have little entropy). A new salt
-- replaces the one that every reader could read until now.
REVOKE ALL ON enrolldb.retirement_salt FROM enrolldb_app, enrolldb_readonly, public;

UPDATE enrolldb.retirement_salt
SET salt = pg_catalog.replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

COMMENT ON TABLE enrolldb.retirement_salt IS
'One row: the per-database salt of retired external keys. Readable by the owner alone (and so by '
'retire_user, SECURITY DEFINER): whoever reads it can recompute retired keys.';

CREATE TABLE enrolldb.retired_program_enrollment (
    program_enrollment_id integer NOT NULL,
    retired timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT retiredprogramenrollment_pk PRIMARY KEY (program_enrollment_id),
    CONSTRAINT retiredprogramenrollment_program_enrollment_fk FOREIGN KEY (program_enrollment_id)
    REFERENCES enrolldb.program_enrollments_programenrollment (id) ON DELETE CASCADE
);

COMMENT ON TABLE enrolldb.retired_program_enrollment IS
'The program enrollments whose external_user_key retire_user has replaced: retiring them again '
'changes nothing (idempotent), whatever their key looks like.';

GRANT SELECT ON enrolldb.retired_program_enrollment TO enrolldb_app, enrolldb_readonly;

CREATE FUNCTION enrolldb.retired_external_key(p_program_enrollment_id integer, p_key text)
RETURNS text
LANGUAGE sql
STABLE
STRICT
PARALLEL SAFE
SET search_path = pg_catalog, enrolldb, pg_temp
RETURN (
    -- The salt is hex and the id digits: ':' separates the three parts unambiguously.
    SELECT
        'retired_external_key_' || pg_catalog.encode(
            pg_catalog.sha256(
                pg_catalog.convert_to(
                    s.salt || ':' || a.id::text || ':' || a.k, 'UTF8'
                )
            ),
            'hex'
        )
    FROM (
        SELECT
            p_program_enrollment_id AS id,
            p_key AS k
    ) AS a
    CROSS JOIN enrolldb.retirement_salt AS s
);

COMMENT ON FUNCTION enrolldb.retired_external_key(integer, text) IS
'The key that replaces p_key on program enrollment p_program_enrollment_id when its user is '
'retired: retired_external_key_ || sha256(salt:id:key) in hex. Unique per enrollment, so one '
'key retired on several enrollments never collides. Executable by the owner alone.';

REVOKE ALL ON FUNCTION enrolldb.retired_external_key(integer, text) FROM public;

-- Keys retired by 0.1.0 (sha256(salt || key), with a salt every reader could read) are
-- retired again under the new salt and scheme, live and history rows, and recorded as
-- retired. They are recognised by their form; no registrar-issued key looks like that.
INSERT INTO enrolldb.retired_program_enrollment (program_enrollment_id)
SELECT pe.id
FROM enrolldb.program_enrollments_programenrollment AS pe
WHERE pe.external_user_key ~ '^retired_external_key_[0-9a-f]{64}$';

UPDATE enrolldb.program_enrollments_programenrollment AS pe
SET external_user_key = enrolldb.retired_external_key(pe.id, pe.external_user_key)
WHERE pe.id IN (SELECT r.program_enrollment_id FROM enrolldb.retired_program_enrollment AS r);

UPDATE enrolldb.program_enrollments_historicalprogramenrollment AS h
SET external_user_key = pe.external_user_key
FROM enrolldb.program_enrollments_programenrollment AS pe
WHERE
    h.id = pe.id
    AND pe.id IN (SELECT r.program_enrollment_id FROM enrolldb.retired_program_enrollment AS r)
    AND h.external_user_key IS DISTINCT FROM pe.external_user_key;
