-- Internal building blocks of linking, shared by link_program_enrollments, matriculate_learner,
-- unlink_program_enrollment and the registrar writes. Not granted to any role: only the
-- SECURITY DEFINER API functions (same owner) call them.
--
-- lock order: docs/design.md#lock-order
--
-- Plans that do not depend on row estimates (docs/reference.md, Qualities: linear whatever the
-- statistics say).
-- Every lookup of a table is driven by the input: `FROM unnest(...) CROSS JOIN LATERAL
-- (SELECT ... WHERE <indexed key> = <input column> OFFSET 0)`, a nested loop whose inner
-- side is one index probe per input row (OFFSET 0 keeps the planner from flattening the
-- sub-select into a join it would then order by its estimates). Rows are locked the same
-- way, in the lock order: the ids are collected first, sorted, and each is locked by its own
-- probe. One table per probe (a join inside a probe is ordered by estimates again: a table
-- analyzed while empty was scanned in full for every row). Inside a probe only the columns
-- of the one index meant for it are compared (pk,
-- user_id, lower(key), ...); the rest (course, program, status) is tested outside: with
-- stale statistics a second, less selective index (courseenrollment_course_idx,
-- programenrollment_program_idx, the partial index on active rows) looked like one row
-- and each probe read a whole course or program. Never `IN (SELECT unnest(...))` or
-- `NOT IN (subquery)`: the first was planned as the inner side of a nested loop over a whole
-- table after a bulk load (quadratic), the second becomes a per-row rescan when the planner
-- expects too many rows to hash. tests/test_plans_stale_statistics.py holds all of this.
--
-- Plan caching: link_plan_errors (read-only, joins the call's own sets with each other) is
-- planned for each call (force_custom_plan: its arrays are then sized right). The functions
-- that write use plan_cache_mode = auto: their shapes need no estimate, and a forced custom
-- plan would also re-plan the foreign-key check of every row they write (measured: 10,000
-- learners spent 0.5 s re-planning 70,000 RI checks, a third of the floor's whole time).

CREATE OR REPLACE FUNCTION enrolldb.lock_users(p_user_ids integer[])
RETURNS void
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
    -- Row locks on the users, in ascending id: two calls that touch one user's course
    -- enrollments serialise instead of both passing their checks on old snapshots. FOR NO
    -- KEY UPDATE does not block foreign-key checks (an LMS enrolling the user elsewhere) and,
    -- unlike advisory locks, needs no slot in the shared lock table however many users one
    -- call links.
    SELECT pg_catalog.count(*)
    FROM (
        SELECT DISTINCT t.user_id FROM unnest(p_user_ids) AS t (user_id) ORDER BY t.user_id
    ) AS t
    CROSS JOIN LATERAL (
        SELECT u.id
        FROM enrolldb.auth_user AS u
        WHERE u.id = t.user_id
        OFFSET 0
        FOR NO KEY UPDATE OF u
    ) AS locked;
$$;

COMMENT ON FUNCTION enrolldb.lock_users(integer[]) IS
'Internal: locks the users'' auth_user rows FOR NO KEY UPDATE, in ascending id order.';

CREATE OR REPLACE FUNCTION enrolldb.detach_course_enrollments(p_program_enrollment_ids integer[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
BEGIN
    -- The course-enrollment half of an unlink. The caller holds the locks of the program
    -- enrollments, their users, their program course enrollments and the course enrollments
    -- these point at.

    -- The course enrollment of each ACTIVE row is deactivated (and moved to audit when the
    -- course offers an unexpired audit mode or no mode at all) unless another active program
    -- course enrollment still points at it. An inactive row never changed its course
    -- enrollment when it was linked (the learner may have bought it herself, or it backs
    -- another program's active row), so it does not change it now either.
    UPDATE enrolldb.student_courseenrollment AS ce
    SET
        is_active = FALSE,
        mode = CASE WHEN m.audit_allowed THEN 'audit' ELSE ce.mode END
    FROM (
        SELECT
            d.pce_id,
            d.course_enrollment_id,
            (
                EXISTS (
                    SELECT FROM enrolldb.course_modes_coursemode AS cm
                    WHERE
                        cm.course_id = d.course_id
                        AND cm.mode_slug = 'audit'
                        AND (cm.expiration_datetime IS NULL OR cm.expiration_datetime > now())
                )
                OR NOT EXISTS (
                    SELECT FROM enrolldb.course_modes_coursemode AS cm
                    WHERE cm.course_id = d.course_id
                )
            ) AS audit_allowed,
            EXISTS (
                SELECT FROM enrolldb.program_enrollments_programcourseenrollment AS other
                WHERE
                    other.course_enrollment_id = d.course_enrollment_id
                    AND other.status = 'active'
                    AND other.id <> d.pce_id
            ) AS still_used
        FROM unnest(p_program_enrollment_ids) AS t (id)
        CROSS JOIN LATERAL (
            SELECT
                pce.id AS pce_id,
                pce.course_enrollment_id,
                pce.course_key AS course_id,
                pce.status
            FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.program_enrollment_id = t.id
            OFFSET 0
        ) AS d
        WHERE d.status = 'active' AND d.course_enrollment_id IS NOT NULL
    ) AS m
    WHERE
        ce.id = m.course_enrollment_id
        AND NOT m.still_used
        AND (ce.is_active OR (m.audit_allowed AND ce.mode <> 'audit'));

    UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce
    SET course_enrollment_id = NULL
    FROM (
        SELECT d.id
        FROM unnest(p_program_enrollment_ids) AS t (id)
        CROSS JOIN LATERAL (
            SELECT x.id, x.course_enrollment_id
            FROM enrolldb.program_enrollments_programcourseenrollment AS x
            WHERE x.program_enrollment_id = t.id
            OFFSET 0
        ) AS d
        WHERE d.course_enrollment_id IS NOT NULL
    ) AS d
    WHERE pce.id = d.id;
END;
$$;

COMMENT ON FUNCTION enrolldb.detach_course_enrollments(integer[]) IS
'Internal: the course-enrollment half of an unlink (docs/reference.md, '
'unlink_program_enrollment), set-based: the course enrollment '
'of each active row is deactivated (moved to audit when allowed) unless another active program '
'course enrollment still uses it; an inactive row''s course enrollment is never changed. Then '
'the pointers become NULL. A relink calls this and then moves user_id straight to the new '
'user, never through NULL.';

CREATE OR REPLACE FUNCTION enrolldb.unlink_locked(p_program_enrollment_ids integer[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
BEGIN
    PERFORM enrolldb.detach_course_enrollments(p_program_enrollment_ids);

    UPDATE enrolldb.program_enrollments_programenrollment AS pe
    SET user_id = NULL
    FROM unnest(p_program_enrollment_ids) AS t (id)
    WHERE pe.id = t.id AND pe.user_id IS NOT NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb.unlink_locked(integer[]) IS
'Internal: unlinks locked program enrollments as docs/reference.md, unlink_program_enrollment '
'says, set-based. A course enrollment '
'still used by another active program course enrollment is left alone.';

CREATE OR REPLACE FUNCTION enrolldb.attach_course_enrollments(
    p_program_course_enrollment_ids integer[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
DECLARE
    v_user_ids integer[];
    v_course_keys text[];
    v_any_active boolean[];
    v_ce_ids integer[];
    v_pce_ids integer[];
    v_pce_ce_ids integer[];
    v_role_ids integer[];
    v_role_user_ids integer[];
    v_role_orgs text[];
    v_role_course_keys text[];
    v_roles text[];
BEGIN
    -- The caller holds the locks and has checked that no active row here would take a course
    -- enrollment that another active program course enrollment already uses.
    SELECT
        pg_catalog.array_agg(n.user_id ORDER BY n.user_id, n.course_key),
        pg_catalog.array_agg(n.course_key ORDER BY n.user_id, n.course_key),
        pg_catalog.array_agg(n.any_active ORDER BY n.user_id, n.course_key)
    INTO v_user_ids, v_course_keys, v_any_active
    FROM (
        SELECT
            u.user_id,
            r.course_key,
            pg_catalog.bool_or(r.status = 'active') AS any_active
        FROM unnest(p_program_course_enrollment_ids) AS t (id)
        CROSS JOIN LATERAL (
            SELECT pce.program_enrollment_id, pce.course_key::text AS course_key, pce.status
            FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.id = t.id
            OFFSET 0
        ) AS r
        CROSS JOIN LATERAL (
            SELECT pe.user_id
            FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE pe.id = r.program_enrollment_id
            OFFSET 0
        ) AS u
        WHERE u.user_id IS NOT NULL
        GROUP BY u.user_id, r.course_key
    ) AS n;

    IF v_user_ids IS NULL THEN
        RETURN;
    END IF;

    -- Each (user, course) with its course enrollment, if any: one index probe each.
    SELECT pg_catalog.array_agg(c.id ORDER BY n.ord)
    INTO v_ce_ids
    FROM unnest(v_user_ids, v_course_keys) WITH ORDINALITY AS n (user_id, course_key, ord)
    LEFT JOIN LATERAL (
        SELECT ce.id
        FROM (
            SELECT x.id, x.course_id
            FROM enrolldb.student_courseenrollment AS x
            WHERE x.user_id = n.user_id
            OFFSET 0
        ) AS ce
        WHERE ce.course_id = n.course_key
    ) AS c ON TRUE;

    -- A missing course enrollment is created in 'masters': active when an active row needs it,
    -- inactive when only inactive rows point at it.
    INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active)
    SELECT n.user_id, n.course_key, 'masters', n.any_active
    FROM unnest(v_user_ids, v_course_keys, v_any_active, v_ce_ids)
        AS n (user_id, course_key, any_active, ce_id)
    WHERE n.ce_id IS NULL
    ORDER BY n.user_id, n.course_key
    ON CONFLICT ON CONSTRAINT courseenrollment_user_course_uq DO NOTHING;

    -- An active row reactivates an inactive enrollment as 'masters' and converts an active audit
    -- or honor one; any other active mode (verified, ...) is left as it is. Inactive rows never
    -- change a course enrollment.
    UPDATE enrolldb.student_courseenrollment AS ce
    SET is_active = TRUE, mode = 'masters'
    FROM unnest(v_ce_ids, v_any_active) AS n (ce_id, any_active)
    WHERE
        n.any_active
        AND ce.id = n.ce_id
        AND (NOT ce.is_active OR ce.mode IN ('audit', 'honor'));

    -- Each row's course enrollment (the one found above or the one just created).
    SELECT
        pg_catalog.array_agg(t.id ORDER BY t.id),
        pg_catalog.array_agg(c.id ORDER BY t.id)
    INTO v_pce_ids, v_pce_ce_ids
    FROM unnest(p_program_course_enrollment_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT pce.program_enrollment_id, pce.course_key, pce.course_enrollment_id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.id = t.id
        OFFSET 0
    ) AS r
    CROSS JOIN LATERAL (
        SELECT pe.user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = r.program_enrollment_id
        OFFSET 0
    ) AS u
    CROSS JOIN LATERAL (
        SELECT ce.id, ce.course_id
        FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.user_id = u.user_id
        OFFSET 0
    ) AS c
    WHERE c.course_id = r.course_key AND r.course_enrollment_id IS DISTINCT FROM c.id;

    UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce
    SET course_enrollment_id = n.ce_id
    FROM unnest(v_pce_ids, v_pce_ce_ids) AS n (id, ce_id)
    WHERE pce.id = n.id;

    -- Pending role assignments of active rows of active users become course access roles.
    SELECT
        pg_catalog.array_agg(a.id),
        pg_catalog.array_agg(pe.user_id),
        pg_catalog.array_agg(co.org),
        pg_catalog.array_agg(pce.course_key),
        pg_catalog.array_agg(a.role)
    INTO v_role_ids, v_role_user_ids, v_role_orgs, v_role_course_keys, v_roles
    FROM unnest(p_program_course_enrollment_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT a.id, a.role::text AS role
        FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
        WHERE a.enrollment_id = t.id
        OFFSET 0
    ) AS a
    CROSS JOIN LATERAL (
        SELECT pce.program_enrollment_id, pce.course_key::text AS course_key, pce.status
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.id = t.id
        OFFSET 0
    ) AS pce
    CROSS JOIN LATERAL (
        SELECT pe.user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = pce.program_enrollment_id
        OFFSET 0
    ) AS pe
    CROSS JOIN LATERAL (
        SELECT u.is_active FROM enrolldb.auth_user AS u WHERE u.id = pe.user_id OFFSET 0
    ) AS u
    CROSS JOIN LATERAL (
        SELECT co.org::text AS org
        FROM enrolldb.course_overviews_courseoverview AS co
        WHERE co.id = pce.course_key
        OFFSET 0
    ) AS co
    WHERE pce.status = 'active' AND u.is_active;

    IF v_role_ids IS NOT NULL THEN
        INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role)
        SELECT DISTINCT r.user_id, r.org, r.course_key, r.role
        FROM unnest(v_role_user_ids, v_role_orgs, v_role_course_keys, v_roles)
            AS r (user_id, org, course_key, role)
        ON CONFLICT ON CONSTRAINT courseaccessrole_user_org_course_role_uq DO NOTHING;

        DELETE FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
        WHERE a.id = ANY(v_role_ids);
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb.attach_course_enrollments(integer[]) IS
'Internal: gives realized program course enrollments their course enrollment by the rules of '
'docs/reference.md, link_program_enrollments (active rows create, reactivate or convert to '
'masters; inactive rows only point) and '
'fulfils pending roles of active rows of active users.';

CREATE OR REPLACE FUNCTION enrolldb.link_plan_errors(
    p_units integer[],
    p_program_enrollment_ids integer[],
    p_user_ids integer[],
    p_failed_units integer[]
)
RETURNS TABLE (
    unit integer,
    program_enrollment_id integer,
    phase integer,
    course_key text,
    message text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    -- PL/pgSQL with custom plans, not a SQL function: the arrays are then planned as values,
    -- so unnest() is estimated at its real length and the joins between the CTEs below (all
    -- derived from the input) are hash joins, not nested loops over every pair. The tables
    -- are reached from the input by index probes (LATERAL ... OFFSET 0), whatever their
    -- statistics say.
    RETURN QUERY
    WITH in_pe AS MATERIALIZED (
        SELECT
            u.unit,
            u.pe_id,
            u.user_id AS target,
            r.username,
            r.old_user,
            r.program_uuid,
            r.curriculum_uuid
        FROM unnest(p_units, p_program_enrollment_ids, p_user_ids)
            AS u (unit, pe_id, user_id)
        CROSS JOIN LATERAL (
            SELECT
                au.username::text AS username,
                pe.user_id AS old_user,
                pe.program_uuid,
                pe.curriculum_uuid
            FROM enrolldb.program_enrollments_programenrollment AS pe
            INNER JOIN enrolldb.auth_user AS au ON au.id = u.user_id
            WHERE pe.id = u.pe_id
            OFFSET 0
        ) AS r
    ),

    in_pce AS MATERIALIZED (
        SELECT
            i.unit,
            i.pe_id,
            i.target,
            i.username,
            i.program_uuid,
            r.pce_id,
            r.course_key,
            r.status
        FROM in_pe AS i
        CROSS JOIN LATERAL (
            SELECT pce.id AS pce_id, pce.course_key::text AS course_key, pce.status
            FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.program_enrollment_id = i.pe_id
            OFFSET 0
        ) AS r
    ),

    -- The active program course enrollment (other than the row itself) that already uses the
    -- target user's course enrollment for the course of each active row of the call.
    in_pce_taken AS MATERIALIZED (
        SELECT x.unit, x.pe_id, x.pce_id, x.username, x.course_key, r.other_pe_id
        FROM in_pce AS x
        CROSS JOIN LATERAL (
            SELECT ce.id, ce.course_id
            FROM enrolldb.student_courseenrollment AS ce
            WHERE ce.user_id = x.target
            OFFSET 0
        ) AS c
        CROSS JOIN LATERAL (
            SELECT y.program_enrollment_id AS other_pe_id, y.id AS other_pce_id
            FROM enrolldb.program_enrollments_programcourseenrollment AS y
            WHERE y.course_enrollment_id = c.id AND y.status = 'active'
            OFFSET 0
        ) AS r
        WHERE
            x.status = 'active'
            AND c.course_id = x.course_key
            AND r.other_pce_id <> x.pce_id
    ),

    -- Errors that depend on no other element of the call.
    independent AS MATERIALIZED (
        SELECT
            i.unit,
            i.pe_id,
            0 AS phase,
            ''::text AS course_key,
            pg_catalog.format(
                'IntegrityError: user %s already has program enrollment id=%s in program '
                'uuid=%s and curriculum uuid=%s (programenrollment_user_program_curriculum_uq)',
                i.username, q.id, i.program_uuid, i.curriculum_uuid
            ) AS message
        FROM in_pe AS i
        CROSS JOIN LATERAL (
            SELECT pe.id, pe.program_uuid, pe.curriculum_uuid
            FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE pe.user_id = i.target
            OFFSET 0
        ) AS q
        WHERE
            q.program_uuid = i.program_uuid
            AND q.curriculum_uuid = i.curriculum_uuid
            AND q.id <> ALL(p_program_enrollment_ids)
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            1,
            x.course_key,
            pg_catalog.format('NonExistentCourseError: %s does not exist', x.course_key)
        FROM in_pce AS x
        WHERE NOT EXISTS (
            SELECT FROM enrolldb.course_overviews_courseoverview AS co
            WHERE co.id = x.course_key
        )
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            2,
            x.course_key,
            pg_catalog.format(
                'ConflictError: %s already has an active program course enrollment for %s '
                'in program uuid=%s',
                x.username, x.course_key, ype.program_uuid
            )
        FROM in_pce_taken AS x
        CROSS JOIN LATERAL (
            SELECT pe.program_uuid
            FROM enrolldb.program_enrollments_programenrollment AS pe
            WHERE pe.id = x.other_pe_id
            OFFSET 0
        ) AS ype
        WHERE x.other_pe_id <> ALL(p_program_enrollment_ids)
    ),

    -- Two elements of one call that would take the same (user, program, curriculum), or the
    -- same course enrollment as active, both fail: neither wins by its position in the input.
    -- Clashes are counted with window functions: one sort, whatever the planner guesses about
    -- the sizes (a self-join here became a nested loop over every pair of a 10,000-row call).
    pe_clash AS (
        SELECT
            i.unit,
            i.pe_id,
            i.username,
            i.program_uuid,
            i.curriculum_uuid,
            pg_catalog.count(*) OVER (
                PARTITION BY i.target, i.program_uuid, i.curriculum_uuid
            ) AS n_same
        FROM in_pe AS i
        WHERE NOT EXISTS (SELECT FROM independent AS ind WHERE ind.unit = i.unit)
    ),

    pce_clash AS (
        SELECT
            x.unit,
            x.pe_id,
            x.pce_id,
            x.target,
            x.username,
            x.program_uuid,
            x.course_key,
            pg_catalog.count(*) OVER (PARTITION BY x.target, x.course_key) AS n_same
        FROM in_pce AS x
        WHERE
            x.status = 'active'
            AND NOT EXISTS (SELECT FROM independent AS ind WHERE ind.unit = x.unit)
    ),

    pce_clash_many AS (
        SELECT c.unit, c.pe_id, c.pce_id, c.target, c.username, c.program_uuid, c.course_key
        FROM pce_clash AS c
        WHERE c.n_same > 1
    ),

    in_call AS (
        SELECT
            a.unit,
            a.pe_id,
            0 AS phase,
            ''::text AS course_key,
            pg_catalog.format(
                'IntegrityError: user %s would be linked to program uuid=%s and curriculum '
                'uuid=%s by more than one external user key of this call '
                '(programenrollment_user_program_curriculum_uq)',
                a.username, a.program_uuid, a.curriculum_uuid
            ) AS message
        FROM pe_clash AS a
        WHERE a.n_same > 1
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            2,
            x.course_key,
            pg_catalog.format(
                'ConflictError: %s already has an active program course enrollment for %s '
                'in program uuid=%s',
                x.username, x.course_key, z.program_uuid
            )
        FROM pce_clash_many AS x
        INNER JOIN pce_clash_many AS z
            ON x.target = z.target AND x.course_key = z.course_key AND x.pce_id <> z.pce_id
    ),

    failed_pe AS (
        SELECT q.pe_id, q.old_user, q.program_uuid, q.curriculum_uuid
        FROM in_pe AS q
        WHERE q.unit = ANY(p_failed_units)
    ),

    -- Errors caused by another element failing: the enrollment it would have unlinked from
    -- this element's user stays linked.
    dependent AS (
        SELECT
            i.unit,
            i.pe_id,
            0 AS phase,
            ''::text AS course_key,
            pg_catalog.format(
                'IntegrityError: user %s already has program enrollment id=%s in program '
                'uuid=%s and curriculum uuid=%s (programenrollment_user_program_curriculum_uq)',
                i.username, q.pe_id, i.program_uuid, i.curriculum_uuid
            ) AS message
        FROM in_pe AS i
        INNER JOIN failed_pe AS q
            ON
                i.target = q.old_user
                AND i.program_uuid = q.program_uuid
                AND i.curriculum_uuid = q.curriculum_uuid
                AND i.pe_id <> q.pe_id
        UNION ALL
        SELECT
            x.unit,
            x.pe_id,
            2,
            x.course_key,
            pg_catalog.format(
                'ConflictError: %s already has an active program course enrollment for %s '
                'in program uuid=%s',
                x.username, x.course_key, q.program_uuid
            )
        FROM in_pce_taken AS x
        INNER JOIN failed_pe AS q ON x.other_pe_id = q.pe_id
    )

    SELECT e.unit, e.pe_id, e.phase, e.course_key, e.message FROM independent AS e
    UNION ALL
    SELECT e.unit, e.pe_id, e.phase, e.course_key, e.message FROM in_call AS e
    UNION ALL
    SELECT e.unit, e.pe_id, e.phase, e.course_key, e.message FROM dependent AS e;
END;
$$;

COMMENT ON FUNCTION enrolldb.link_plan_errors(integer[], integer[], integer[], integer[]) IS
'Internal: every reason a unit of a link (program enrollments to be linked to one user) would '
'fail, given the units already known to fail. Read-only; computed before anything is written.';

CREATE OR REPLACE FUNCTION enrolldb.link_locked(
    p_units integer[],
    p_program_enrollment_ids integer[],
    p_user_ids integer[]
)
RETURNS TABLE (unit integer, error text)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_failed integer[] := '{}';
    v_next integer[];
    v_messages text[];
    v_rounds integer := 0;
    v_is_relink boolean[];
    v_old_user_ids integer[];
    v_relink_units integer[];
    v_pce_ids integer[];
    v_pce_units integer[];
    v_ce_ids integer[];
    v_ok_pe_ids integer[];
    v_ok_user_ids integer[];
    v_relink_pe_ids integer[];
BEGIN
    -- Links program enrollments (locked FOR UPDATE by the caller, none already linked to its
    -- target) to users. A unit is the set of enrollments that succeed or fail together. Every
    -- failure is found before anything is written, so a failing unit leaves no trace and needs
    -- no savepoint.
    IF pg_catalog.cardinality(p_units) = 0 THEN
        RETURN;
    END IF;

    -- Each enrollment's current user (a relink takes it from that user). The enrollments are
    -- locked, so this cannot change under us.
    SELECT
        pg_catalog.array_agg(r.user_id IS NOT NULL ORDER BY u.ord),
        pg_catalog.array_agg(r.user_id) FILTER (WHERE r.user_id IS NOT NULL),
        pg_catalog.array_agg(u.unit) FILTER (WHERE r.user_id IS NOT NULL)
    INTO v_is_relink, v_old_user_ids, v_relink_units
    FROM unnest(p_units, p_program_enrollment_ids) WITH ORDINALITY AS u (unit, pe_id, ord)
    CROSS JOIN LATERAL (
        SELECT pe.user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = u.pe_id
        OFFSET 0
    ) AS r;

    -- lock order: docs/design.md#lock-order
    PERFORM enrolldb.lock_users(p_user_ids || COALESCE(v_old_user_ids, '{}'));

    -- The program course enrollments, locked in id order, one probe each.
    SELECT
        pg_catalog.array_agg(r.id ORDER BY r.id),
        pg_catalog.array_agg(u.unit ORDER BY r.id)
    INTO v_pce_ids, v_pce_units
    FROM unnest(p_units, p_program_enrollment_ids) AS u (unit, pe_id)
    CROSS JOIN LATERAL (
        SELECT pce.id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.program_enrollment_id = u.pe_id
        OFFSET 0
    ) AS r;

    PERFORM 1
    FROM unnest(v_pce_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT pce.id
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.id = t.id
        OFFSET 0
        FOR UPDATE OF pce
    ) AS locked;

    -- The course enrollments the rows point at now, and the target users' ones for the same
    -- courses, locked in id order.
    SELECT pg_catalog.array_agg(DISTINCT c.id ORDER BY c.id)
    INTO v_ce_ids
    FROM unnest(p_program_enrollment_ids, p_user_ids) AS u (pe_id, user_id)
    CROSS JOIN LATERAL (
        SELECT pce.course_enrollment_id, pce.course_key
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.program_enrollment_id = u.pe_id
        OFFSET 0
    ) AS x
    LEFT JOIN LATERAL (
        SELECT target.id
        FROM (
            SELECT ce.id, ce.course_id
            FROM enrolldb.student_courseenrollment AS ce
            WHERE ce.user_id = u.user_id
            OFFSET 0
        ) AS target
        WHERE target.course_id = x.course_key
    ) AS tgt ON TRUE
    CROSS JOIN LATERAL unnest(ARRAY[x.course_enrollment_id, tgt.id]) AS c (id)
    WHERE c.id IS NOT NULL;

    PERFORM 1
    FROM unnest(v_ce_ids) AS t (id)
    CROSS JOIN LATERAL (
        SELECT ce.id
        FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.id = t.id
        OFFSET 0
        FOR UPDATE OF ce
    ) AS locked;

    -- The failing set grows until it is stable: a unit can fail because another unit, which
    -- would have unlinked what stood in its way, fails. Only a failing relink can stand in
    -- another unit's way (it keeps its old user's enrollment and course enrollments), so when
    -- no relink fails the first round is the last. Each round keeps the first message of
    -- every failing unit: per enrollment, the user collision first, then each course in
    -- course_key order, its existence before its conflicts (integrity errors carry course '').
    LOOP
        SELECT
            COALESCE(pg_catalog.array_agg(f.unit ORDER BY f.unit), '{}'),
            COALESCE(pg_catalog.array_agg(f.message ORDER BY f.unit), '{}')
        INTO v_next, v_messages
        FROM (
            SELECT DISTINCT ON (e.unit) e.unit, e.message
            FROM enrolldb.link_plan_errors(
                p_units, p_program_enrollment_ids, p_user_ids, v_failed
            ) AS e
            ORDER BY e.unit, e.program_enrollment_id, e.course_key, e.phase, e.message
        ) AS f;
        EXIT WHEN v_next = v_failed;
        v_failed := v_next;
        EXIT WHEN NOT (v_failed OPERATOR(pg_catalog.&&) COALESCE(v_relink_units, '{}'));
        v_rounds := v_rounds + 1;
        IF v_rounds > pg_catalog.cardinality(p_units) + 1 THEN
            RAISE EXCEPTION 'link planning did not converge' USING ERRCODE = 'internal_error';
        END IF;
    END LOOP;

    SELECT
        pg_catalog.array_agg(u.pe_id ORDER BY u.pe_id),
        pg_catalog.array_agg(u.user_id ORDER BY u.pe_id),
        pg_catalog.array_agg(u.pe_id ORDER BY u.pe_id) FILTER (WHERE u.is_relink)
    INTO v_ok_pe_ids, v_ok_user_ids, v_relink_pe_ids
    FROM unnest(p_units, p_program_enrollment_ids, p_user_ids, v_is_relink)
        AS u (unit, pe_id, user_id, is_relink)
    WHERE u.unit <> ALL(v_failed);

    IF v_ok_pe_ids IS NOT NULL THEN
        IF v_relink_pe_ids IS NOT NULL THEN
            -- A relink moves user_id straight from the old user to the new one: the enrollment
            -- never looks waiting, not even between two statements.
            PERFORM enrolldb.detach_course_enrollments(v_relink_pe_ids);
        END IF;

        -- Estimate-dependent, like every UPDATE ... FROM unnest() here: the planner joins the
        -- input with the table by its primary key, as a hash join or as index probes (both
        -- linear); the test of the three statistics cases has never seen anything else.
        UPDATE enrolldb.program_enrollments_programenrollment AS pe
        SET user_id = u.user_id
        FROM unnest(v_ok_pe_ids, v_ok_user_ids) AS u (pe_id, user_id)
        WHERE pe.id = u.pe_id;

        PERFORM enrolldb.attach_course_enrollments(ARRAY(
            SELECT p.id
            FROM unnest(v_pce_ids, v_pce_units) AS p (id, unit)
            WHERE p.unit <> ALL(v_failed)
        ));
    END IF;

    RETURN QUERY
    SELECT f.unit, f.message
    FROM unnest(v_failed, v_messages) AS f (unit, message);
END;
$$;

COMMENT ON FUNCTION enrolldb.link_locked(integer[], integer[], integer[]) IS
'Internal: links locked program enrollments to users, unit by unit, all or nothing per unit, '
'set-based; returns one row per failed unit with its message.';

REVOKE ALL ON FUNCTION enrolldb.lock_users(integer[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.detach_course_enrollments(integer[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.unlink_locked(integer[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.attach_course_enrollments(integer[]) FROM public;
REVOKE ALL ON FUNCTION enrolldb.link_plan_errors(integer[], integer[], integer[], integer[])
FROM public;
REVOKE ALL ON FUNCTION enrolldb.link_locked(integer[], integer[], integer[]) FROM public;
