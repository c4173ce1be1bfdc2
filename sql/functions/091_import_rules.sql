-- enrolldb import: the rule helpers. Each is one set-based statement over a staging table
-- (alias s), whatever the number of rows; loops run over table names or columns, never rows.

CREATE OR REPLACE FUNCTION enrolldb_import.refuse(
    p_table text, p_rule text, p_condition text, p_detail text
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One UPDATE: every kept row (alias s) meeting p_condition is refused by p_rule.
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%I AS s SET import_rule = %L, import_detail = %s '
        'WHERE s.import_rule IS NULL AND (%s)',
        p_table, p_rule, p_detail, p_condition
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse(text, text, text, text) IS
'Refuses, by rule p_rule, the kept staged rows of p_table (alias s) meeting p_condition; '
'p_detail is the SQL expression of the reason.';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse_by_column_types(p_table text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nulls text;
    v_null_names text;
    v_longs text;
    v_long_names text;
BEGIN
    -- NOT NULL columns of the target table: the row is refused naming every NULL one.
    SELECT
        pg_catalog.string_agg(pg_catalog.format('s.%I IS NULL', a.attname), ' OR '),
        pg_catalog.string_agg(
            pg_catalog.format('CASE WHEN s.%I IS NULL THEN %L END', a.attname, a.attname), ', '
        )
    INTO v_nulls, v_null_names
    FROM pg_catalog.pg_attribute AS a
    WHERE
        a.attrelid = pg_catalog.format('enrolldb.%I', p_table)::regclass
        AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull;
    PERFORM enrolldb_import.refuse(
        p_table, 'not_null', v_nulls,
        pg_catalog.format('pg_catalog.concat_ws('', '', %s) || '' is NULL''', v_null_names)
    );
    -- varchar(n) columns: a longer value is refused naming the column and its limit.
    SELECT
        pg_catalog.string_agg(
            pg_catalog.format('pg_catalog.char_length(s.%I) > %s', a.attname, a.atttypmod - 4),
            ' OR '
        ),
        pg_catalog.string_agg(
            pg_catalog.format(
                'CASE WHEN pg_catalog.char_length(s.%I) > %s THEN %L END',
                a.attname, a.atttypmod - 4, a.attname || ' is longer than '
                || (a.atttypmod - 4)::text || ' characters'
            ),
            ', '
        )
    INTO v_longs, v_long_names
    FROM pg_catalog.pg_attribute AS a
    WHERE
        a.attrelid = pg_catalog.format('enrolldb.%I', p_table)::regclass
        AND a.attnum > 0 AND NOT a.attisdropped
        AND a.atttypid = 'pg_catalog.varchar'::regtype AND a.atttypmod > 4
        -- A status outside its set is refused by its check constraint, however long (the
        -- history tables have no such check: there the length is checked).
        AND (a.attname <> 'status' OR p_table ~ 'histor');
    IF v_longs IS NOT NULL THEN
        PERFORM enrolldb_import.refuse(
            p_table, 'value_too_long', v_longs,
            pg_catalog.format('pg_catalog.concat_ws(''; '', %s)', v_long_names)
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse_by_column_types(text) IS
'Refuses the staged rows of p_table with NULL in a NOT NULL column of enrolldb.p_table '
'(rule not_null) or a value longer than a varchar(n) column allows (rule value_too_long).';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse_duplicates(
    p_table text, p_rule text, p_columns text, p_filter text, p_order text,
    p_label text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Among the kept rows meeting p_filter with equal p_columns, the first by p_order stays;
    -- every other is refused and names the one kept.
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET import_rule = %2$L, '
        'import_detail = ''collides on ('' || %6$L || '') with the row kept: '' || d.kept '
        'FROM ('
        '  SELECT s.import_line, '
        '    pg_catalog.row_number() OVER w AS n, '
        '    pg_catalog.first_value(pg_catalog.format(''line %%s, id %%s'', s.import_line, '
        '      pg_catalog.to_jsonb(s) ->> pg_catalog.split_part(%5$L, '','', 1))) OVER w AS kept '
        '  FROM enrolldb_import.%1$I AS s '
        '  WHERE s.import_rule IS NULL AND (%4$s) '
        '  WINDOW w AS (PARTITION BY %3$s ORDER BY %5$s, s.import_line)'
        ') AS d '
        'WHERE s.import_line = d.import_line AND d.n > 1',
        p_table, p_rule, p_columns, p_filter, p_order, COALESCE(p_label, p_columns)
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse_duplicates(text, text, text, text, text, text) IS
'Keeps, of the staged rows of p_table that agree on p_columns (among those meeting p_filter), '
'the first by p_order then input line; refuses the others by rule p_rule, naming the kept row '
'(and the columns, as p_label says them).';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse_orphans(
    p_table text, p_rule text, p_column text, p_parent text, p_parent_column text
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One outer join, grouped per child row: no per-row lookup of the parent. A reference
    -- names the export's row when the export holds that key (kept, or already present in the
    -- database: fine; refused: the child goes with it), else the database's row (merge).
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET import_rule = %2$L, '
        'import_detail = pg_catalog.format(''%4$s %5$s=%%s is %%s'', s.%3$I, '
        '  CASE WHEN d.seen THEN ''refused'' '
        '  ELSE ''neither in the export nor in the database'' END) '
        'FROM ('
        '  SELECT c.import_line, pg_catalog.count(p.*) > 0 AS seen, '
        '    pg_catalog.count(p.*) FILTER (WHERE p.import_rule IS NULL '
        '      OR p.import_rule = ''already_present'') > 0 AS kept, '
        '    pg_catalog.count(t.*) > 0 AS in_database '
        '  FROM enrolldb_import.%1$I AS c '
        '  LEFT JOIN enrolldb_import.%4$I AS p ON p.%5$I = c.%3$I '
        '  LEFT JOIN enrolldb.%4$I AS t ON t.%5$I = c.%3$I '
        '  WHERE c.import_rule IS NULL AND c.%3$I IS NOT NULL '
        '  GROUP BY c.import_line'
        ') AS d '
        'WHERE s.import_line = d.import_line AND NOT d.kept AND (d.seen OR NOT d.in_database)',
        p_table, p_rule, p_column, p_parent, p_parent_column
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse_orphans(text, text, text, text, text) IS
'Refuses, by the foreign key p_rule, the staged rows of p_table whose p_column names a refused '
'row of p_parent, or a key neither the export nor the database holds.';

CREATE OR REPLACE FUNCTION enrolldb_import.mark_existing(
    p_table text, p_key text, p_rule text, p_column text DEFAULT NULL,
    p_as_written text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_staged text;
    v_stored text;
    v_object text;
BEGIN
    -- Merge by id: a kept row whose key the database holds is already present when every
    -- column is equal as the import would write it (keys canonical; p_column as the SQL
    -- p_as_written says, for a value a later rule changes), else refused by p_rule naming
    -- each column that differs, with the database's value.
    SELECT
        pg_catalog.string_agg(
            CASE
                WHEN a.attname = p_column THEN p_as_written
                ELSE pg_catalog.format('s.%I', a.attname)
            END,
            ', ' ORDER BY a.attnum
        ),
        pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY a.attnum),
        pg_catalog.string_agg(
            pg_catalog.format(
                '%L, %s', a.attname,
                CASE
                    WHEN a.attname = p_column THEN p_as_written
                    ELSE pg_catalog.format('s.%I', a.attname)
                END
            ),
            ', ' ORDER BY a.attnum
        )
    INTO v_staged, v_stored, v_object
    FROM pg_catalog.pg_attribute AS a
    WHERE
        a.attrelid = pg_catalog.format('enrolldb_import.%I', p_table)::regclass
        AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT LIKE 'import\_%';
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET '
        'import_rule = CASE WHEN d.same THEN ''already_present'' ELSE %3$L END, '
        'import_detail = CASE WHEN d.same '
        '  THEN pg_catalog.format(''%2$s %%s is in the database with the same values'', s.%2$I) '
        '  ELSE pg_catalog.format(''%2$s %%s is in the database with other values: %%s'', '
        '    s.%2$I, d.diff) END '
        'FROM ('
        '  SELECT s.import_line, c.same, CASE WHEN NOT c.same THEN ('
        '    SELECT pg_catalog.string_agg(pg_catalog.format(''%%s %%s (database: %%s)'', '
        '      e.key, e.value, pg_catalog.to_jsonb(t) -> e.key), ''; '' ORDER BY e.key) '
        '    FROM pg_catalog.jsonb_each(pg_catalog.jsonb_build_object(%6$s)) AS e '
        '    WHERE e.value IS DISTINCT FROM pg_catalog.to_jsonb(t) -> e.key'
        '  ) END AS diff '
        '  FROM enrolldb_import.%1$I AS s '
        '  INNER JOIN enrolldb.%1$I AS t ON s.%2$I = t.%2$I '
        '  CROSS JOIN LATERAL (SELECT ROW(%4$s) IS NOT DISTINCT FROM ROW(%5$s) AS same) AS c '
        '  WHERE s.import_rule IS NULL'
        ') AS d '
        'WHERE s.import_line = d.import_line',
        p_table, p_key, p_rule, v_staged, v_stored, v_object
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.mark_existing(text, text, text, text, text) IS
'Merge by id: the kept staged rows of p_table whose p_key the database holds become '
'already_present (every column equal as the import writes it; p_column as p_as_written, alias '
's) or are refused by p_rule (naming the columns that differ and the database''s values).';

CREATE OR REPLACE FUNCTION enrolldb_import.refuse_existing_collisions(
    p_table text, p_rule text, p_columns text, p_filter text, p_database_filter text,
    p_key text DEFAULT 'id', p_label text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Merge: a kept row equal on p_columns to a row of the database (meeting
    -- p_database_filter) is refused, naming that row; the database's row always stays. Rows
    -- are compared as text (the columns' types differ: text staged, varchar stored).
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%1$I AS s SET import_rule = %2$L, '
        'import_detail = ''collides on ('' || %7$L || '') with the row in the database: '' '
        '  || d.existing '
        'FROM ('
        '  SELECT x.import_line, '
        '    %6$L || '' '' || pg_catalog.string_agg(y.k::text, '', '' ORDER BY y.k) AS existing '
        '  FROM ('
        '    SELECT s.import_line, ROW(%3$s)::text AS v FROM enrolldb_import.%1$I AS s '
        '    WHERE s.import_rule IS NULL AND (%4$s)'
        '  ) AS x '
        '  INNER JOIN ('
        '    SELECT ROW(%3$s)::text AS v, s.%6$I AS k FROM enrolldb.%1$I AS s WHERE (%5$s)'
        '  ) AS y ON x.v = y.v '
        '  GROUP BY x.import_line'
        ') AS d '
        'WHERE s.import_line = d.import_line',
        p_table, p_rule, p_columns, p_filter, p_database_filter, p_key,
        COALESCE(p_label, p_columns)
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.refuse_existing_collisions(
    text, text, text, text, text, text, text
) IS
'Merge: refuses, by the unique rule p_rule, the kept staged rows of p_table (meeting p_filter) '
'equal on p_columns to a row of the database (meeting p_database_filter), naming its p_key.';

CREATE OR REPLACE FUNCTION enrolldb_import.canonicalise_keys(p_table text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format(
        'UPDATE enrolldb_import.%I AS s SET '
        'import_changes = pg_catalog.concat_ws(''; '', s.import_changes, '
        '  ''external_user_key '' || pg_catalog.to_json(s.external_user_key)::text || '' -> '' '
        '  || pg_catalog.to_json(enrolldb.canonical_external_key(s.external_user_key))::text), '
        'external_user_key = enrolldb.canonical_external_key(s.external_user_key) '
        'WHERE s.import_rule IS NULL '
        'AND s.external_user_key <> enrolldb.canonical_external_key(s.external_user_key)',
        p_table
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_import.canonicalise_keys(text) IS
'Replaces every staged external_user_key of p_table by its canonical form (NFC, invisible '
'characters at both ends removed) and records the change.';

REVOKE ALL ON FUNCTION enrolldb_import.refuse(text, text, text, text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse_by_column_types(text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse_duplicates(text, text, text, text, text, text)
FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse_orphans(text, text, text, text, text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.canonicalise_keys(text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.mark_existing(text, text, text, text, text) FROM public;
REVOKE ALL ON FUNCTION enrolldb_import.refuse_existing_collisions(
    text, text, text, text, text, text, text
) FROM public;
