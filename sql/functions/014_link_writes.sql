-- Link writes: link and unlink program enrollments whose rows the caller has locked. Lock
-- order and plan shapes: 011_locks.sql.

CREATE OR REPLACE FUNCTION enrolldb_internal.unlink_locked(p_program_enrollment_ids integer[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
BEGIN
    PERFORM enrolldb_internal.detach_course_enrollments(p_program_enrollment_ids);

    UPDATE enrolldb.program_enrollments_programenrollment AS pe
    SET user_id = NULL
    FROM unnest(p_program_enrollment_ids) AS t (id)
    WHERE pe.id = t.id AND pe.user_id IS NOT NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.unlink_locked(integer[]) IS
'Internal: unlinks locked program enrollments as docs/reference.md, unlink_program_enrollment '
'says, set-based. A course enrollment '
'still used by another active program course enrollment is left alone.';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_locked(
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

    PERFORM enrolldb_internal.lock_users(p_user_ids || COALESCE(v_old_user_ids, '{}'));

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
            FROM enrolldb_internal.link_plan_errors(
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
            PERFORM enrolldb_internal.detach_course_enrollments(v_relink_pe_ids);
        END IF;

        -- Estimate-dependent, like every UPDATE ... FROM unnest() here: the planner joins the
        -- input with the table by its primary key, as a hash join or as index probes (both
        -- linear); the test of the three statistics cases has never seen anything else.
        UPDATE enrolldb.program_enrollments_programenrollment AS pe
        SET user_id = u.user_id
        FROM unnest(v_ok_pe_ids, v_ok_user_ids) AS u (pe_id, user_id)
        WHERE pe.id = u.pe_id;

        PERFORM enrolldb_internal.attach_course_enrollments(ARRAY(
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

COMMENT ON FUNCTION enrolldb_internal.link_locked(integer[], integer[], integer[]) IS
'Internal: links locked program enrollments to users, unit by unit, all or nothing per unit, '
'set-based; returns one row per failed unit with its message.';

