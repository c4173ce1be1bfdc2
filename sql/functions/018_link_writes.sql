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

CREATE OR REPLACE FUNCTION enrolldb_internal.link_locked(p_units enrolldb_internal.link_unit[])
RETURNS TABLE (unit integer, error text)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_old_user_ids integer[];
    v_relink_units integer[];
    v_failed integer[];
    v_messages text[];
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
        pg_catalog.array_agg(r.user_id) FILTER (WHERE r.user_id IS NOT NULL),
        pg_catalog.array_agg(u.unit) FILTER (WHERE r.user_id IS NOT NULL)
    INTO v_old_user_ids, v_relink_units
    FROM unnest(p_units) AS u
    CROSS JOIN LATERAL (
        SELECT pe.user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = u.program_enrollment_id
        OFFSET 0
    ) AS r;

    PERFORM enrolldb_internal.lock_link_rows(p_units, COALESCE(v_old_user_ids, '{}'));

    SELECT
        COALESCE(pg_catalog.array_agg(f.unit ORDER BY f.unit), '{}'),
        pg_catalog.array_agg(f.message ORDER BY f.unit)
    INTO v_failed, v_messages
    FROM enrolldb_internal.link_plan_failures(p_units, COALESCE(v_relink_units, '{}')) AS f;

    PERFORM enrolldb_internal.link_units_write(ARRAY(
        SELECT u FROM unnest(p_units) AS u WHERE u.unit <> ALL(v_failed)
    ));

    RETURN QUERY
    SELECT f.unit, f.message
    FROM unnest(v_failed, v_messages) AS f (unit, message);
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_locked(enrolldb_internal.link_unit[]) IS
'Internal: links locked program enrollments to users, unit by unit, all or nothing per unit, '
'set-based: locks the users and course rows (lock_link_rows), plans every failure '
'(link_plan_failures), writes the rest (link_units_write); returns one row per failed unit '
'with its message.';

CREATE OR REPLACE FUNCTION enrolldb_internal.link_units_write(p_units enrolldb_internal.link_unit[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
SET plan_cache_mode = auto
SET jit = off
AS $$
DECLARE
    v_relink_pe_ids integer[];
BEGIN
    IF pg_catalog.cardinality(p_units) = 0 THEN
        RETURN;
    END IF;
    -- A relink moves user_id straight from the old user to the new one: the enrollment
    -- never looks waiting, not even between two statements.
    SELECT pg_catalog.array_agg(u.program_enrollment_id ORDER BY u.program_enrollment_id)
    INTO v_relink_pe_ids
    FROM unnest(p_units) AS u
    CROSS JOIN LATERAL (
        SELECT pe.user_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        WHERE pe.id = u.program_enrollment_id
        OFFSET 0
    ) AS r
    WHERE r.user_id IS NOT NULL;
    IF v_relink_pe_ids IS NOT NULL THEN
        PERFORM enrolldb_internal.detach_course_enrollments(v_relink_pe_ids);
    END IF;

    -- Estimate-dependent, like every UPDATE ... FROM unnest() here: the planner joins the
    -- input with the table by its primary key, as a hash join or as index probes (both
    -- linear); the test of the three statistics cases has never seen anything else.
    UPDATE enrolldb.program_enrollments_programenrollment AS pe
    SET user_id = u.user_id
    FROM unnest(p_units) AS u
    WHERE pe.id = u.program_enrollment_id;

    PERFORM enrolldb_internal.attach_course_enrollments(ARRAY(
        SELECT r.id
        FROM unnest(p_units) AS u
        CROSS JOIN LATERAL (
            SELECT pce.id
            FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.program_enrollment_id = u.program_enrollment_id
            OFFSET 0
        ) AS r
        ORDER BY r.id
    ));
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.link_units_write(enrolldb_internal.link_unit[]) IS
'Internal: the write half of link_locked, for the units planned to succeed (locked): detaches '
'relinked enrollments from their old user, sets user_id, attaches the course enrollments.';
