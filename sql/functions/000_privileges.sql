-- Privileges of schemas enrolldb, enrolldb_internal and enrolldb_import, their tables,
-- sequences and routines: reset, then granted (enrolldb_internal and enrolldb_import:
-- nothing is granted, ever).
--
-- Why here: this file runs first on every `enrolldb migrate` (and in the test-apply of
-- `enrolldb status`/`doctor`), so a hand GRANT or REVOKE is both reported as drift and put
-- back. Step 1 revokes every privilege held by anyone but the owner; step 2 grants what
-- the migrations grant (tables, schema, functions defined by migrations); each later file of
-- sql/functions revokes its functions from PUBLIC and grants them as it says. The
-- migrations keep their GRANT statements (history, and a database migrated but not yet
-- post-applied); this file is the single source of the privileges a deploy ends with.

-- Step 1: one set-based statement string, executed once (nothing to revoke: no-op).
DO $reset$
BEGIN
    EXECUTE coalesce((
        SELECT pg_catalog.string_agg(
            pg_catalog.format(
                'REVOKE ALL ON %s %s FROM %s CASCADE',
                o.kind, o.object_name,
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
            ),
            '; '
            ORDER BY o.kind, o.object_name, a.grantee
        )
        FROM (
            SELECT
                'SCHEMA' AS kind,
                pg_catalog.quote_ident(n.nspname) AS object_name,
                n.nspacl AS acl,
                n.nspowner AS owner
            FROM pg_catalog.pg_namespace AS n
            WHERE n.nspname IN ('enrolldb', 'enrolldb_internal', 'enrolldb_import')
            UNION ALL
            SELECT
                CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                c.oid::pg_catalog.regclass::text,
                c.relacl,
                c.relowner
            FROM pg_catalog.pg_class AS c
            INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid
            WHERE n.nspname IN ('enrolldb', 'enrolldb_internal', 'enrolldb_import') AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
            UNION ALL
            SELECT
                'ROUTINE',
                p.oid::pg_catalog.regprocedure::text,
                -- NULL means the default: EXECUTE for PUBLIC.
                coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)),
                p.proowner
            FROM pg_catalog.pg_proc AS p
            INNER JOIN pg_catalog.pg_namespace AS n ON p.pronamespace = n.oid
            WHERE n.nspname IN ('enrolldb', 'enrolldb_internal', 'enrolldb_import') AND p.prokind IN ('f', 'p')
        ) AS o
        CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) AS a
        LEFT JOIN pg_catalog.pg_roles AS r ON a.grantee = r.oid
        WHERE a.grantee <> o.owner
    ), 'SELECT');
END
$reset$;

-- Step 2: what the migrations grant.
GRANT USAGE ON SCHEMA enrolldb TO enrolldb_app, enrolldb_readonly;

GRANT SELECT ON
enrolldb.auth_user,
enrolldb.course_modes_coursemode,
enrolldb.course_overviews_courseoverview,
enrolldb.program_enrollments_courseaccessroleassignment,
enrolldb.program_enrollments_historicalprogramcourseenrollment,
enrolldb.program_enrollments_historicalprogramenrollment,
enrolldb.program_enrollments_learneridentity,
enrolldb.program_enrollments_program,
enrolldb.program_enrollments_programcourseenrollment,
enrolldb.program_enrollments_programenrollment,
enrolldb.retired_program_enrollment,
enrolldb.student_courseaccessrole,
enrolldb.student_courseenrollment,
enrolldb.student_courseenrollment_history,
enrolldb.waiting_learner_active_course
TO enrolldb_app, enrolldb_readonly;

GRANT EXECUTE ON FUNCTION enrolldb.canonical_external_key(text) TO enrolldb_app, enrolldb_readonly;
GRANT EXECUTE ON FUNCTION enrolldb.is_canonical_external_key(text)
TO enrolldb_app, enrolldb_readonly;
