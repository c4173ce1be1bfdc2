-- enrolldb import, the steps the client calls in one transaction: begin_import, (COPY),
-- classify (091, 092), write_kept_rows (093), summary, report, end_import. Owner only:
-- EXECUTE is revoked from PUBLIC and granted to nobody (the staging schema enrolldb_import is
-- the owner's alone).

CREATE OR REPLACE FUNCTION enrolldb_import.tables()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN ARRAY[
    'auth_user',
    'course_overviews_courseoverview',
    'course_modes_coursemode',
    'student_courseenrollment',
    'student_courseaccessrole',
    'program_enrollments_program',
    'program_enrollments_programenrollment',
    'program_enrollments_programcourseenrollment',
    'program_enrollments_courseaccessroleassignment',
    'program_enrollments_learneridentity',
    'program_enrollments_historicalprogramenrollment',
    'program_enrollments_historicalprogramcourseenrollment',
    'student_courseenrollment_history'
];

COMMENT ON FUNCTION enrolldb_import.tables() IS
'The tables enrolldb import reads, in the order it classifies and writes them (parents first).';

CREATE OR REPLACE FUNCTION enrolldb_import.begin_import(p_merge boolean DEFAULT FALSE)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text;
    v_nonempty text[] := ARRAY[]::text [];
    v_has_rows boolean;
BEGIN
    -- Readers go on; no API call can write these tables until the import's transaction ends.
    LOCK TABLE
        enrolldb.auth_user,
        enrolldb.course_overviews_courseoverview,
        enrolldb.course_modes_coursemode,
        enrolldb.student_courseenrollment,
        enrolldb.student_courseaccessrole,
        enrolldb.program_enrollments_program,
        enrolldb.program_enrollments_programenrollment,
        enrolldb.program_enrollments_programcourseenrollment,
        enrolldb.program_enrollments_courseaccessroleassignment,
        enrolldb.program_enrollments_learneridentity,
        enrolldb.program_enrollments_historicalprogramenrollment,
        enrolldb.program_enrollments_historicalprogramcourseenrollment,
        enrolldb.student_courseenrollment_history
    IN EXCLUSIVE MODE;
    -- Without p_merge the database must hold none of the imported tables' rows. With it,
    -- classify() merges by id: the rules read the database's rows as well as the export's
    -- (they find nothing in an empty database, so one policy serves both).
    IF NOT p_merge THEN
        FOREACH v_table IN ARRAY enrolldb_import.tables() LOOP
            EXECUTE pg_catalog.format('SELECT EXISTS (SELECT FROM enrolldb.%I)', v_table)
            INTO v_has_rows;
            IF v_has_rows THEN
                v_nonempty := v_nonempty || v_table;
            END IF;
        END LOOP;
    END IF;
    IF pg_catalog.cardinality(v_nonempty) > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'the database already holds rows in '
            || pg_catalog.array_to_string(v_nonempty, ', '),
            HINT = 'enrolldb import adopts an export into a freshly migrated database; '
            || '--merge merges it into the rows there by id';
    END IF;
    FOREACH v_table IN ARRAY enrolldb_import.tables() LOOP
        EXECUTE pg_catalog.format('TRUNCATE enrolldb_import.%I RESTART IDENTITY', v_table);
        EXECUTE pg_catalog.format(
            'TRUNCATE enrolldb_import.%I RESTART IDENTITY', v_table || '_raw'
        );
    END LOOP;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.begin_import(boolean) IS
'First step of an import: locks the target tables against writers, refuses a database that '
'holds rows already unless p_merge (merge by id), empties the staging tables.';

CREATE OR REPLACE FUNCTION enrolldb_import.summary()
RETURNS TABLE (
    table_name text, read bigint, imported bigint, changed bigint, present bigint, refused bigint
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT u.t, u.r, u.i, u.c, u.p, u.x FROM (' || (
        SELECT pg_catalog.string_agg(
            pg_catalog.format(
                'SELECT %2$s AS o, %1$L::text AS t, pg_catalog.count(*) AS r, '
                'pg_catalog.count(*) FILTER (WHERE s.import_rule IS NULL '
                '  AND s.import_changes IS NULL) AS i, '
                'pg_catalog.count(*) FILTER (WHERE s.import_rule IS NULL '
                '  AND s.import_changes IS NOT NULL) AS c, '
                'pg_catalog.count(*) FILTER (WHERE s.import_rule = ''already_present'') AS p, '
                'pg_catalog.count(*) FILTER (WHERE s.import_rule <> ''already_present'') AS x '
                'FROM enrolldb_import.%1$I AS s',
                t.name, t.ord
            ),
            ' UNION ALL ' ORDER BY t.ord
        )
        FROM unnest(enrolldb_import.tables()) WITH ORDINALITY AS t (name, ord)
    ) || ') AS u ORDER BY u.o';
END;
$$;

COMMENT ON FUNCTION enrolldb_import.summary() IS
'Per table: rows read, imported as is, imported changed, already present (merge: the same id '
'with the same values in the database), refused; they add up to read.';

CREATE OR REPLACE FUNCTION enrolldb_import.report()
RETURNS TABLE (
    table_name text, line bigint, id text, fate text, rule text, detail text, changes text,
    input text
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT u.t, u.l, u.i, u.f, u.r, u.d, u.c, u.j FROM (' || (
        SELECT pg_catalog.string_agg(
            pg_catalog.format(
                'SELECT %2$s AS o, %1$L::text AS t, s.import_line AS l, '
                'COALESCE(pg_catalog.to_jsonb(s) ->> ''id'', '
                '  pg_catalog.to_jsonb(s) ->> ''program_uuid'') AS i, '
                'CASE WHEN s.import_rule IS NULL THEN ''changed'' ELSE ''refused'' END AS f, '
                's.import_rule AS r, s.import_detail AS d, s.import_changes AS c, '
                '(pg_catalog.to_jsonb(s) - ''{import_line,import_rule,import_detail,'
                'import_changes,import_org,import_user_id,import_lower_key}''::text [])::text AS j '
                'FROM enrolldb_import.%1$I AS s '
                'WHERE (s.import_rule IS NOT NULL OR s.import_changes IS NOT NULL) '
                'AND s.import_rule IS DISTINCT FROM ''already_present''',
                t.name, t.ord
            ),
            ' UNION ALL ' ORDER BY t.ord
        )
        FROM unnest(enrolldb_import.tables()) WITH ORDINALITY AS t (name, ord)
    ) || ') AS u ORDER BY u.o, u.l';
END;
$$;

COMMENT ON FUNCTION enrolldb_import.report() IS
'Every staged row changed or refused (not those imported as is or already present): its '
'table, input line, id, fate (changed or refused), '
'rule, detail, changes and the row as staged (JSON; keys already canonical).';

CREATE OR REPLACE FUNCTION enrolldb_import.end_import()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY enrolldb_import.tables() LOOP
        EXECUTE pg_catalog.format('TRUNCATE enrolldb_import.%I', v_table);
        EXECUTE pg_catalog.format('TRUNCATE enrolldb_import.%I', v_table || '_raw');
    END LOOP;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.end_import() IS
'Last step of an import, before its commit: empties the staging and raw input tables.';

REVOKE ALL ON FUNCTION enrolldb_import.tables() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.begin_import(boolean) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.summary() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.report() FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.end_import() FROM public;
