-- Internal building blocks of linking, shared by link_program_enrollments, matriculate_learner,
-- unlink_program_enrollment and the registrar writes. Not granted to any role: only the
-- SECURITY DEFINER API functions (same owner) call them.
--
-- Lock order, everywhere: program enrollments (by id) -> users (advisory, by id) ->
-- program course enrollments (by id) -> course enrollments (by id).

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
        SELECT u.id
        FROM enrolldb.auth_user AS u
        WHERE u.id IN (SELECT t.user_id FROM unnest(p_user_ids) AS t (user_id))
        ORDER BY u.id
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
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    -- The course-enrollment half of an unlink. The caller holds the locks of the program
    -- enrollments, their users, their program course enrollments and the course enrollments
    -- these point at.

    -- A course enrollment is deactivated (and moved to audit when the course offers an unexpired
    -- audit mode or no mode at all) unless an active program course enrollment outside this set
    -- still points at it.
    UPDATE enrolldb.student_courseenrollment AS ce
    SET
        is_active = FALSE,
        mode = CASE WHEN m.audit_allowed THEN 'audit' ELSE ce.mode END
    FROM (
        SELECT
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
            ) AS audit_allowed
        FROM (
            SELECT DISTINCT
                pce.course_enrollment_id,
                pce.course_key AS course_id
            FROM unnest(p_program_enrollment_ids) AS t (id)
            INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
                ON t.id = pce.program_enrollment_id
            WHERE pce.course_enrollment_id IS NOT NULL
        ) AS d
    ) AS m
    WHERE
        ce.id = m.course_enrollment_id
        AND NOT EXISTS (
            SELECT FROM enrolldb.program_enrollments_programcourseenrollment AS other
            WHERE
                other.course_enrollment_id = ce.id
                AND other.status = 'active'
                AND other.program_enrollment_id NOT IN (
                    SELECT t.id FROM unnest(p_program_enrollment_ids) AS t (id)
                )
        )
        AND (ce.is_active OR (m.audit_allowed AND ce.mode <> 'audit'));

    UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce
    SET course_enrollment_id = NULL
    FROM unnest(p_program_enrollment_ids) AS t (id)
    WHERE pce.program_enrollment_id = t.id AND pce.course_enrollment_id IS NOT NULL;

END;
$$;

COMMENT ON FUNCTION enrolldb.detach_course_enrollments(integer[]) IS
'Internal: the course-enrollment half of an unlink (SPEC 4.3), set-based: each course '
'enrollment pointed at is deactivated (moved to audit when allowed) unless an active program '
'course enrollment outside the set still uses it, then the pointers become NULL. A relink '
'calls this and then moves user_id straight to the new user, never through NULL.';

CREATE OR REPLACE FUNCTION enrolldb.unlink_locked(p_program_enrollment_ids integer[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
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
'Internal: unlinks locked program enrollments as SPEC 4.3 says, set-based. A course enrollment '
'still used by another active program course enrollment is left alone.';

CREATE OR REPLACE FUNCTION enrolldb.attach_course_enrollments(
    p_program_course_enrollment_ids integer[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_user_ids integer[];
    v_course_keys text[];
    v_any_active boolean[];
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
            pe.user_id,
            pce.course_key::text AS course_key,
            pg_catalog.bool_or(pce.status = 'active') AS any_active
        FROM unnest(p_program_course_enrollment_ids) AS t (id)
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce ON t.id = pce.id
        INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
            ON pce.program_enrollment_id = pe.id
        WHERE pe.user_id IS NOT NULL
        GROUP BY pe.user_id, pce.course_key
    ) AS n;

    IF v_user_ids IS NULL THEN
        RETURN;
    END IF;

    -- A missing course enrollment is created in 'masters': active when an active row needs it,
    -- inactive when only inactive rows point at it.
    INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active)
    SELECT n.user_id, n.course_key, 'masters', n.any_active
    FROM unnest(v_user_ids, v_course_keys, v_any_active)
        AS n (user_id, course_key, any_active)
    WHERE NOT EXISTS (
        SELECT FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.user_id = n.user_id AND ce.course_id = n.course_key
    )
    ORDER BY n.user_id, n.course_key
    ON CONFLICT ON CONSTRAINT courseenrollment_user_course_uq DO NOTHING;

    -- An active row reactivates an inactive enrollment as 'masters' and converts an active audit
    -- or honor one; any other active mode (verified, ...) is left as it is. Inactive rows never
    -- change a course enrollment.
    UPDATE enrolldb.student_courseenrollment AS ce
    SET is_active = TRUE, mode = 'masters'
    FROM unnest(v_user_ids, v_course_keys, v_any_active)
        AS n (user_id, course_key, any_active)
    WHERE
        n.any_active
        AND ce.user_id = n.user_id
        AND ce.course_id = n.course_key
        AND (NOT ce.is_active OR ce.mode IN ('audit', 'honor'));

    UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce
    SET course_enrollment_id = ce.id
    FROM unnest(p_program_course_enrollment_ids) AS t (id),
        enrolldb.program_enrollments_programenrollment AS pe,
        enrolldb.student_courseenrollment AS ce
    WHERE
        pce.id = t.id
        AND pce.program_enrollment_id = pe.id
        AND ce.user_id = pe.user_id
        AND ce.course_id = pce.course_key
        AND pce.course_enrollment_id IS DISTINCT FROM ce.id;

    -- Pending role assignments of active rows of active users become course access roles.
    INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role)
    SELECT DISTINCT pe.user_id, co.org, pce.course_key, a.role
    FROM unnest(p_program_course_enrollment_ids) AS t (id)
    INNER JOIN enrolldb.program_enrollments_courseaccessroleassignment AS a
        ON t.id = a.enrollment_id
    INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
        ON a.enrollment_id = pce.id
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe
        ON pce.program_enrollment_id = pe.id
    INNER JOIN enrolldb.auth_user AS u ON pe.user_id = u.id
    INNER JOIN enrolldb.course_overviews_courseoverview AS co ON pce.course_key = co.id
    WHERE pce.status = 'active' AND u.is_active
    ON CONFLICT ON CONSTRAINT courseaccessrole_user_org_course_role_uq DO NOTHING;

    DELETE FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
    USING unnest(p_program_course_enrollment_ids) AS t (id),
        enrolldb.program_enrollments_programcourseenrollment AS pce,
        enrolldb.program_enrollments_programenrollment AS pe,
        enrolldb.auth_user AS u
    WHERE
        a.enrollment_id = t.id
        AND pce.id = t.id
        AND pce.program_enrollment_id = pe.id
        AND pe.user_id = u.id
        AND pce.status = 'active'
        AND u.is_active;
END;
$$;

COMMENT ON FUNCTION enrolldb.attach_course_enrollments(integer[]) IS
'Internal: gives realized program course enrollments their course enrollment by the rules of '
'SPEC 4.1 (active rows create, reactivate or convert to masters; inactive rows only point) and '
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
AS $$
#variable_conflict use_column
BEGIN
    -- PL/pgSQL with custom plans, not a SQL function: the arrays are then planned as values,
    -- so unnest() is estimated at its real length and the self-joins below are hash joins,
    -- not nested loops (a 10,000-learner call would otherwise cost 10,000^2).
    RETURN QUERY
    WITH in_pe AS (
        SELECT
            u.unit,
            u.pe_id,
            u.user_id AS target,
            au.username,
            pe.user_id AS old_user,
            pe.program_uuid,
            pe.curriculum_uuid
        FROM unnest(p_units, p_program_enrollment_ids, p_user_ids)
            AS u (unit, pe_id, user_id)
        INNER JOIN enrolldb.program_enrollments_programenrollment AS pe ON u.pe_id = pe.id
        INNER JOIN enrolldb.auth_user AS au ON u.user_id = au.id
    ),

    in_pce AS (
        SELECT
            i.unit,
            i.pe_id,
            i.target,
            i.username,
            i.program_uuid,
            pce.id AS pce_id,
            pce.course_key::text AS course_key,
            pce.status
        FROM in_pe AS i
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON i.pe_id = pce.program_enrollment_id
    ),

    -- Errors that depend on no other element of the call.
    independent AS (
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
        INNER JOIN enrolldb.program_enrollments_programenrollment AS q
            ON
                i.target = q.user_id
                AND i.program_uuid = q.program_uuid
                AND i.curriculum_uuid = q.curriculum_uuid
        WHERE q.id NOT IN (SELECT o.pe_id FROM in_pe AS o)
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
        FROM in_pce AS x
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON x.target = ce.user_id AND x.course_key = ce.course_id
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS y
            ON ce.id = y.course_enrollment_id AND y.status = 'active'
        INNER JOIN enrolldb.program_enrollments_programenrollment AS ype
            ON y.program_enrollment_id = ype.id
        WHERE
            x.status = 'active'
            AND y.id <> x.pce_id
            AND ype.id NOT IN (SELECT o.pe_id FROM in_pe AS o)
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
        WHERE i.unit NOT IN (SELECT ind.unit FROM independent AS ind)
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
        WHERE x.status = 'active' AND x.unit NOT IN (SELECT ind.unit FROM independent AS ind)
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
        INNER JOIN in_pe AS q
            ON
                i.target = q.old_user
                AND i.program_uuid = q.program_uuid
                AND i.curriculum_uuid = q.curriculum_uuid
                AND i.pe_id <> q.pe_id
        WHERE q.unit = ANY(p_failed_units)
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
        FROM in_pce AS x
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON x.target = ce.user_id AND x.course_key = ce.course_id
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS y
            ON ce.id = y.course_enrollment_id AND y.status = 'active'
        INNER JOIN in_pe AS q ON y.program_enrollment_id = q.pe_id
        WHERE
            x.status = 'active'
            AND y.id <> x.pce_id
            AND q.unit = ANY(p_failed_units)
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
SET plan_cache_mode = force_custom_plan
AS $$
#variable_conflict use_column
DECLARE
    v_failed integer[] := '{}';
    v_next integer[];
    v_messages text[];
    v_rounds integer := 0;
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

    PERFORM enrolldb.lock_users(
        p_user_ids || ARRAY(
            SELECT pe.user_id
            FROM unnest(p_program_enrollment_ids) AS t (id)
            INNER JOIN enrolldb.program_enrollments_programenrollment AS pe ON t.id = pe.id
            WHERE pe.user_id IS NOT NULL
        )
    );

    PERFORM 1
    FROM unnest(p_program_enrollment_ids) AS t (id)
    INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
        ON t.id = pce.program_enrollment_id
    ORDER BY pce.id
    FOR UPDATE OF pce;

    -- The course enrollments the rows point at now, and the target users' ones for the same
    -- courses.
    PERFORM 1
    FROM enrolldb.student_courseenrollment AS ce
    WHERE ce.id IN (
        SELECT pce.course_enrollment_id
        FROM unnest(p_program_enrollment_ids) AS t (id)
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON t.id = pce.program_enrollment_id
        WHERE pce.course_enrollment_id IS NOT NULL
        UNION
        SELECT target.id
        FROM unnest(p_program_enrollment_ids, p_user_ids) AS u (pe_id, user_id)
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON u.pe_id = pce.program_enrollment_id
        INNER JOIN enrolldb.student_courseenrollment AS target
            ON u.user_id = target.user_id AND pce.course_key = target.course_id
    )
    ORDER BY ce.id
    FOR UPDATE OF ce;

    -- The failing set grows until it is stable: a unit can fail because another unit, which
    -- would have unlinked what stood in its way, fails. Each round keeps the first message of
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
        v_rounds := v_rounds + 1;
        IF v_rounds > pg_catalog.cardinality(p_units) + 1 THEN
            RAISE EXCEPTION 'link planning did not converge' USING ERRCODE = 'internal_error';
        END IF;
    END LOOP;

    SELECT
        pg_catalog.array_agg(u.pe_id ORDER BY u.pe_id),
        pg_catalog.array_agg(u.user_id ORDER BY u.pe_id),
        pg_catalog.array_agg(u.pe_id ORDER BY u.pe_id) FILTER (WHERE pe.user_id IS NOT NULL)
    INTO v_ok_pe_ids, v_ok_user_ids, v_relink_pe_ids
    FROM unnest(p_units, p_program_enrollment_ids, p_user_ids) AS u (unit, pe_id, user_id)
    INNER JOIN enrolldb.program_enrollments_programenrollment AS pe ON u.pe_id = pe.id
    WHERE u.unit NOT IN (SELECT f.unit FROM unnest(v_failed) AS f (unit));

    IF v_ok_pe_ids IS NOT NULL THEN
        IF v_relink_pe_ids IS NOT NULL THEN
            -- A relink moves user_id straight from the old user to the new one: the enrollment
            -- never looks waiting, not even between two statements.
            PERFORM enrolldb.detach_course_enrollments(v_relink_pe_ids);
        END IF;

        UPDATE enrolldb.program_enrollments_programenrollment AS pe
        SET user_id = u.user_id
        FROM unnest(v_ok_pe_ids, v_ok_user_ids) AS u (pe_id, user_id)
        WHERE pe.id = u.pe_id;

        PERFORM enrolldb.attach_course_enrollments(ARRAY(
            SELECT pce.id
            FROM unnest(v_ok_pe_ids) AS t (id)
            INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
                ON t.id = pce.program_enrollment_id
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
