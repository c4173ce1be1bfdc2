-- enrolldb import: from raw input to typed staging. COPY writes every value as text into
-- enrolldb_import.<table>_raw (migration 0014); stage() casts each row into the typed staging
-- table in one INSERT ... SELECT. A value that is not of its column's type does not stop the
-- run: its row is staged with NULL in that column and refused by rule type:<column>, the
-- value quoted in the detail.

CREATE OR REPLACE FUNCTION enrolldb_import.castable(p_value text, p_type regtype)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The slow path (a subtransaction per call): only for a value the fast patterns of
    -- valid_input_sql do not recognise, e.g. ' 7', '2024-02-29 10:00', 'yes', 'abc'.
    EXECUTE pg_catalog.format('SELECT %L::%s', p_value, p_type);
    RETURN TRUE;
EXCEPTION
    WHEN data_exception THEN
        RETURN FALSE;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.castable(text, regtype) IS
'Whether p_value casts to p_type (as COPY would read it). Slow path of valid_input_sql.';

CREATE OR REPLACE FUNCTION enrolldb_import.valid_input_sql(p_column text, p_type regtype)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
-- Each pattern accepts only values that cast; anything else is tried by castable(). Days
-- above 28 take the slow path (the pattern does not know month lengths).
RETURN pg_catalog.format(
    '(r.%1$I IS NULL OR r.%1$I ~ %2$L OR enrolldb_import.castable(r.%1$I, %3$L))',
    p_column,
    CASE p_type
        WHEN 'integer'::regtype THEN '^[+-]?[0-9]{1,9}$'
        WHEN 'bigint'::regtype THEN '^[+-]?[0-9]{1,18}$'
        WHEN 'boolean'::regtype THEN '^([tf]|true|false|[01])$'
        WHEN 'uuid'::regtype
            THEN '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$'
        WHEN 'timestamp with time zone'::regtype
            THEN
                '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])[ T]([01][0-9]|2[0-3])'
                || ':[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?'
                || '(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$'
        ELSE '^$.'
    END,
    p_type
);

COMMENT ON FUNCTION enrolldb_import.valid_input_sql(text, regtype) IS
'SQL expression (raw row alias r): true when raw column p_column is NULL or casts to p_type; '
'a fast pattern first, castable() for the rest.';

CREATE OR REPLACE FUNCTION enrolldb_import.stage(p_table text, p_columns text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns text;
    v_checks text;
    v_values text;
    v_rule text;
    v_detail text;
BEGIN
    -- Columns of the file only (the others take the staging table's defaults). Each typed
    -- column's check is computed once per row (v.<column>, in a subquery kept apart by
    -- OFFSET 0), then used for the value, the rule and the detail.
    SELECT
        pg_catalog.string_agg(pg_catalog.format('%I', a.attname), ', ' ORDER BY a.attnum),
        pg_catalog.string_agg(
            pg_catalog.format(
                '%s AS %I', enrolldb_import.valid_input_sql(a.attname, a.atttypid),
                'ok_' || a.attname
            ),
            ', ' ORDER BY a.attnum
        ) FILTER (WHERE a.atttypid <> 'text'::regtype),
        pg_catalog.string_agg(
            CASE
                WHEN a.atttypid = 'text'::regtype THEN pg_catalog.format('v.%I', a.attname)
                ELSE pg_catalog.format(
                    'CASE WHEN v.%I THEN v.%I::%s END', 'ok_' || a.attname, a.attname,
                    a.atttypid::regtype
                )
            END,
            ', ' ORDER BY a.attnum
        ),
        pg_catalog.string_agg(
            pg_catalog.format('WHEN NOT v.%I THEN %L', 'ok_' || a.attname, 'type:' || a.attname),
            ' ' ORDER BY a.attnum
        ) FILTER (WHERE a.atttypid <> 'text'::regtype),
        pg_catalog.string_agg(
            pg_catalog.format(
                'CASE WHEN NOT v.%I THEN %L || pg_catalog.to_json(v.%I)::text || %L END',
                'ok_' || a.attname, a.attname || ' ', a.attname,
                ' is not a valid ' || pg_catalog.format_type(a.atttypid, NULL)
            ),
            ', ' ORDER BY a.attnum
        ) FILTER (WHERE a.atttypid <> 'text'::regtype)
    INTO v_columns, v_checks, v_values, v_rule, v_detail
    FROM pg_catalog.pg_attribute AS a
    WHERE
        a.attrelid = pg_catalog.format('enrolldb_import.%I', p_table)::regclass
        AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY(p_columns)
        AND a.attname NOT LIKE 'import\_%';
    EXECUTE pg_catalog.format(
        'INSERT INTO enrolldb_import.%1$I (import_line, %2$s, import_rule, import_detail) '
        'OVERRIDING SYSTEM VALUE '
        'SELECT v.import_line, %3$s, %4$s, %5$s '
        'FROM (SELECT r.*%6$s FROM enrolldb_import.%7$I AS r OFFSET 0) AS v',
        p_table, v_columns, v_values,
        COALESCE('CASE ' || v_rule || ' END', 'NULL'),
        COALESCE('NULLIF(pg_catalog.concat_ws(''; '', ' || v_detail || '), '''')', 'NULL'),
        COALESCE(', ' || v_checks, ''),
        p_table || '_raw'
    );
    EXECUTE pg_catalog.format('TRUNCATE enrolldb_import.%I', p_table || '_raw');
END;
$$;

COMMENT ON FUNCTION enrolldb_import.stage(text, text[]) IS
'Casts the raw input of p_table (columns p_columns, the file''s header) into its typed '
'staging table in one statement; a row with a value that does not cast is refused by rule '
'type:<column> (the first such column), the detail quoting every bad value. Empties the raw '
'table.';

REVOKE ALL ON FUNCTION enrolldb_import.castable(text, regtype) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.valid_input_sql(text, regtype) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.stage(text, text[]) FROM public;
