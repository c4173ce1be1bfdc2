-- enrolldb import: from raw input to typed staging. COPY writes every value as text into
-- enrolldb_import.<table>_raw (migration 0013); stage() casts each row into the typed staging
-- table in one INSERT ... SELECT. A value that is not of its column's type does not stop the
-- run: its row is staged with NULL in that column and refused by rule type:<column>, the
-- value quoted in the detail. (Only a file with such a value comes here: the client copies
-- each file straight into the typed staging table first.)

CREATE OR REPLACE FUNCTION enrolldb_import.valid_input_sql(p_column text, p_type regtype)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
-- No exception handler (a subtransaction per value): what PostgreSQL 15's input functions
-- accept, written out. Integers and booleans exactly (sign, digits and surrounding spaces
-- in range; the words and prefixes of boolean input); uuids in every form uuid input
-- takes; timestamps in ISO 8601 form (date, optional time and zone), the day checked
-- against its month.
RETURN pg_catalog.format(
    CASE p_type
        WHEN 'integer'::regtype
            THEN
                '(CASE WHEN r.%1$I IS NULL THEN TRUE WHEN r.%1$I ~ ''^\s*[+-]?[0-9]{1,40}\s*$'' '
                || 'THEN pg_catalog.regexp_replace(r.%1$I, ''\s'', '''', ''g'')::numeric '
                || 'BETWEEN -2147483648 AND 2147483647 ELSE FALSE END)'
        WHEN 'bigint'::regtype
            THEN
                '(CASE WHEN r.%1$I IS NULL THEN TRUE WHEN r.%1$I ~ ''^\s*[+-]?[0-9]{1,40}\s*$'' '
                || 'THEN pg_catalog.regexp_replace(r.%1$I, ''\s'', '''', ''g'')::numeric '
                || 'BETWEEN -9223372036854775808 AND 9223372036854775807 ELSE FALSE END)'
        WHEN 'boolean'::regtype
            THEN
                '(r.%1$I IS NULL OR r.%1$I ~* '
                || '''^\s*(t|tr|tru|true|f|fa|fal|fals|false|y|ye|yes|n|no|on|of|off|1|0)\s*$'')'
        WHEN 'uuid'::regtype
            THEN
                '(r.%1$I IS NULL OR r.%1$I ~* '
                || '''^(\{[0-9a-f]{4}(-?[0-9a-f]{4}){7}\}|[0-9a-f]{4}(-?[0-9a-f]{4}){7})$'')'
        WHEN 'timestamp with time zone'::regtype
            THEN
                '(CASE WHEN r.%1$I IS NULL THEN TRUE WHEN r.%1$I ~ '
                || '''^ *[0-9]{4}-[0-9]{2}-[0-9]{2}([ T]([01][0-9]|2[0-3]):[0-5][0-9]'
                || '(:[0-5][0-9](\.[0-9]{1,12})?)?)? *(Z|UTC|[+-](0[0-9]|1[0-5])'
                || '(:?[0-5][0-9](:?[0-5][0-9])?)?)? *$'' THEN ('
                || 'SELECT CASE WHEN d.m NOT BETWEEN 1 AND 12 OR d.y < 1 THEN FALSE '
                || 'ELSE d.d BETWEEN 1 AND pg_catalog.date_part(''day'', '
                || 'pg_catalog.make_date(d.y, d.m, 1) + ''1 month -1 day''::interval) END '
                || 'FROM (SELECT pg_catalog.substr(pg_catalog.ltrim(r.%1$I), 1, 4)::integer AS y, '
                || 'pg_catalog.substr(pg_catalog.ltrim(r.%1$I), 6, 2)::integer AS m, '
                || 'pg_catalog.substr(pg_catalog.ltrim(r.%1$I), 9, 2)::integer AS d) AS d'
                || ') ELSE FALSE END)'
        ELSE '(r.%1$I IS NULL)'
    END,
    p_column
);

COMMENT ON FUNCTION enrolldb_import.valid_input_sql(text, regtype) IS
'SQL expression (raw row alias r): true when raw column p_column is NULL or casts to p_type '
'(integers, booleans, uuids as PostgreSQL reads them; timestamps in ISO 8601 form). No '
'exception handler.';

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

REVOKE ALL ON FUNCTION enrolldb_import.valid_input_sql(text, regtype) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.stage(text, text[]) FROM public;
