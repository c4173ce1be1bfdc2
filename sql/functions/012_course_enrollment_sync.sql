-- Course-enrollment sync of linking: a linked program enrollment's program course enrollments
-- get their course enrollments (attach), an unlinked one's give them back (detach). Lock
-- order and plan shapes: 011_locks.sql.

CREATE OR REPLACE FUNCTION enrolldb_internal.detach_course_enrollments(
    p_program_enrollment_ids integer[]
)
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

COMMENT ON FUNCTION enrolldb_internal.detach_course_enrollments(integer[]) IS
'Internal: the course-enrollment half of an unlink (docs/reference.md, '
'unlink_program_enrollment), set-based: the course enrollment '
'of each active row is deactivated (moved to audit when allowed) unless another active program '
'course enrollment still uses it; an inactive row''s course enrollment is never changed. Then '
'the pointers become NULL. A relink calls this and then moves user_id straight to the new '
'user, never through NULL.';

CREATE OR REPLACE FUNCTION enrolldb_internal.course_enrollment_needs(
    p_program_course_enrollment_ids integer[]
)
RETURNS enrolldb_internal.course_enrollment_need[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
BEGIN
    -- Each (user, course) of the realized rows, with its course enrollment if any: one index
    -- probe each, in (user, course) order.
    RETURN ARRAY(
        SELECT
            ROW(
                n.user_id, n.course_key, n.any_active, c.id
            )::enrolldb_internal.course_enrollment_need
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
        ) AS n
        LEFT JOIN LATERAL (
            SELECT ce.id
            FROM (
                SELECT x.id, x.course_id
                FROM enrolldb.student_courseenrollment AS x
                WHERE x.user_id = n.user_id
                OFFSET 0
            ) AS ce
            WHERE ce.course_id = n.course_key
        ) AS c ON TRUE
        ORDER BY n.user_id, n.course_key
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.course_enrollment_needs(integer[]) IS
'Internal, attach step 1: each (user, course) the realized program course enrollments need a '
'course enrollment for, whether any of them is active, and the course enrollment that exists.';

CREATE OR REPLACE FUNCTION enrolldb_internal.ensure_course_enrollments(
    p_needs enrolldb_internal.course_enrollment_need[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
BEGIN
    -- A missing course enrollment is created in 'masters': active when an active row needs it,
    -- inactive when only inactive rows point at it.
    INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active)
    SELECT n.user_id, n.course_key, 'masters', n.any_active
    FROM unnest(p_needs) AS n
    WHERE n.course_enrollment_id IS NULL
    ORDER BY n.user_id, n.course_key
    ON CONFLICT ON CONSTRAINT courseenrollment_user_course_uq DO NOTHING;

    -- An active row reactivates an inactive enrollment as 'masters' and converts an active audit
    -- or honor one; any other active mode (verified, ...) is left as it is. Inactive rows never
    -- change a course enrollment.
    UPDATE enrolldb.student_courseenrollment AS ce
    SET is_active = TRUE, mode = 'masters'
    FROM unnest(p_needs) AS n
    WHERE
        n.any_active
        AND ce.id = n.course_enrollment_id
        AND (NOT ce.is_active OR ce.mode IN ('audit', 'honor'));
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.ensure_course_enrollments(
    enrolldb_internal.course_enrollment_need[]
) IS
'Internal, attach step 2: creates the missing course enrollments (masters; active when an active '
'row needs it), reactivates or converts (audit, honor) those that active rows need.';

CREATE OR REPLACE FUNCTION enrolldb_internal.point_program_course_enrollments(
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
    v_pce_ids integer[];
    v_ce_ids integer[];
BEGIN
    -- Each row's course enrollment (the one found or the one just created).
    SELECT
        pg_catalog.array_agg(t.id ORDER BY t.id),
        pg_catalog.array_agg(c.id ORDER BY t.id)
    INTO v_pce_ids, v_ce_ids
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
    FROM unnest(v_pce_ids, v_ce_ids) AS n (id, ce_id)
    WHERE pce.id = n.id;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.point_program_course_enrollments(integer[]) IS
'Internal, attach step 3: sets each realized program course enrollment''s '
'course_enrollment_id to its user''s course enrollment for the course.';

CREATE OR REPLACE FUNCTION enrolldb_internal.fulfil_role_assignments(
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
    v_grants enrolldb_internal.role_grant[];
BEGIN
    -- Pending role assignments of active rows of active users become course access roles.
    v_grants := ARRAY(
        SELECT ROW(a.id, pe.user_id, co.org, pce.course_key, a.role)::enrolldb_internal.role_grant
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
        WHERE pce.status = 'active' AND u.is_active
    );

    IF pg_catalog.cardinality(v_grants) > 0 THEN
        INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role)
        SELECT DISTINCT r.user_id, r.org, r.course_key, r.role
        FROM unnest(v_grants) AS r
        ON CONFLICT ON CONSTRAINT courseaccessrole_user_org_course_role_uq DO NOTHING;

        DELETE FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
        WHERE a.id = ANY(ARRAY(SELECT r.assignment_id FROM unnest(v_grants) AS r));
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.fulfil_role_assignments(integer[]) IS
'Internal, attach step 4: the pending role assignments of the active rows of active users '
'become course access roles (existing ones kept) and are deleted.';

CREATE OR REPLACE FUNCTION enrolldb_internal.attach_course_enrollments(
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
    v_needs enrolldb_internal.course_enrollment_need[];
BEGIN
    -- The caller holds the locks and has checked that no active row here would take a course
    -- enrollment that another active program course enrollment already uses.
    v_needs := enrolldb_internal.course_enrollment_needs(p_program_course_enrollment_ids);
    IF pg_catalog.cardinality(v_needs) = 0 THEN
        RETURN;
    END IF;
    PERFORM enrolldb_internal.ensure_course_enrollments(v_needs);
    PERFORM enrolldb_internal.point_program_course_enrollments(p_program_course_enrollment_ids);
    PERFORM enrolldb_internal.fulfil_role_assignments(p_program_course_enrollment_ids);
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.attach_course_enrollments(integer[]) IS
'Internal: gives realized program course enrollments their course enrollment by the rules of '
'docs/reference.md, Linking one enrollment (active rows create, reactivate or convert to '
'masters; inactive rows only point) and fulfils pending roles of active rows of active users. '
'Called by link_locked and the registrar writes.';
