-- The steps of matriculate_learner (030), the SSO path: its arguments' checks, the waiting
-- enrollments' locks, the reasons each would fail, the write. docs/reference.md,
-- matriculate_learner. Shaped for one user and a handful of rows: index probes with cached
-- plans (plan_cache_mode auto), unlike the bulk link's steps.

CREATE OR REPLACE FUNCTION enrolldb_internal.check_matriculate_arguments(
    p_user_id integer,
    p_organization_key text,
    p_external_user_key text,
    OUT o_key text,
    OUT o_username text,
    OUT o_user_active boolean
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    IF p_user_id IS NULL OR p_organization_key IS NULL OR p_external_user_key IS NULL THEN
        RAISE EXCEPTION 'matriculate_learner: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Checked before anything reaches a varchar(255) column (which would say 22001).
    IF pg_catalog.char_length(p_organization_key) > 255 THEN
        RAISE EXCEPTION 'matriculate_learner: organization key longer than 255 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- No program has an empty authoring organization a sign-in could be meant for; recording
    -- an identity for it would only keep the learner's key for nothing.
    IF enrolldb.canonical_external_key(p_organization_key) = '' THEN
        RAISE EXCEPTION 'matriculate_learner: organization key is empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A valid key: its canonical form may be stored (the key helpers' one rule).
    o_key := enrolldb.canonical_external_key(p_external_user_key);
    IF NOT enrolldb.is_canonical_external_key(o_key) THEN
        RAISE EXCEPTION '%', enrolldb_internal.invalid_key_message(p_external_user_key)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT u.username, u.is_active INTO o_username, o_user_active
    FROM enrolldb.auth_user AS u
    WHERE u.id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'matriculate_learner: no user with id=% exists', p_user_id
            USING ERRCODE = 'foreign_key_violation',
            CONSTRAINT = 'learneridentity_user_fk',
            TABLE = 'program_enrollments_learneridentity',
            SCHEMA = 'enrolldb';
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.check_matriculate_arguments(integer, text, text) IS
'Internal: raises the errors of a matriculate_learner call that cannot be served: a NULL '
'argument (22004), an organization key over 255 characters or empty, an invalid external user '
'key (22023), an unknown user (23503). Returns the canonical key and the user''s username and '
'is_active.';

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_waiting_enrollments(
    p_user_id integer,
    p_organization_key text,
    p_lower_key text
)
RETURNS integer[]
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_pe_ids integer[];
BEGIN
    -- The waiting enrollments of this organization's programs with this key, locked in id
    -- order (one probe of programenrollment_key_program_curriculum_uq).
    SELECT pg_catalog.array_agg(w.id ORDER BY w.id)
    INTO v_pe_ids
    FROM (
        SELECT pe.id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        INNER JOIN enrolldb.program_enrollments_program AS p
            ON pe.program_uuid = p.program_uuid
        WHERE
            pg_catalog.lower(pe.external_user_key) = p_lower_key
            AND pe.user_id IS NULL
            AND p.authoring_organization_key = p_organization_key
        ORDER BY pe.id
        FOR UPDATE OF pe
    ) AS w;
    IF v_pe_ids IS NULL THEN
        RETURN NULL;
    END IF;

    -- lock order: docs/design.md#lock-order
    -- The rest of the global lock order: the user, the enrollments' program course
    -- enrollments (id order), the user's course enrollments for those courses (id order).
    -- A waiting enrollment's rows point at no course enrollment.
    PERFORM 1 FROM enrolldb.auth_user AS u WHERE u.id = p_user_id FOR NO KEY UPDATE;
    PERFORM 1
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    WHERE pce.program_enrollment_id = ANY(v_pe_ids)
    ORDER BY pce.id
    FOR UPDATE;
    PERFORM 1
    FROM enrolldb.student_courseenrollment AS ce
    WHERE
        ce.user_id = p_user_id
        AND ce.course_id IN (
            SELECT pce.course_key
            FROM enrolldb.program_enrollments_programcourseenrollment AS pce
            WHERE pce.program_enrollment_id = ANY(v_pe_ids)
        )
    ORDER BY ce.id
    FOR UPDATE OF ce;
    RETURN v_pe_ids;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_waiting_enrollments(integer, text, text) IS
'Internal: locks the waiting enrollments of the organization''s programs with the (lowered) '
'key, then the user, their program course enrollments and the user''s course enrollments for '
'those courses, in the lock order; returns the enrollments'' ids in id order (NULL: none).';

CREATE OR REPLACE FUNCTION enrolldb_internal.matriculate_failures(
    p_user_id integer,
    p_username text,
    p_program_enrollment_ids integer[]
)
RETURNS TABLE (program_enrollment_id integer, message text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    -- Each enrollment its own unit (it succeeds or fails alone). This equals linking them one
    -- by one in id order: they are all waiting (no relink, nothing is taken from anyone), they
    -- lie in distinct (program, curriculum) pairs (the key is unique per program and
    -- curriculum), and no two hold an active row for one course
    -- (waitinglearneractivecourse_learner_course_uq: they share the organization and key),
    -- so no enrollment's outcome depends on another's; inactive rows only point at what the
    -- active ones give, whichever comes first. The reasons are those of linking
    -- (docs/reference.md, link_program_enrollments; the builders of 017_messages.sql) that a
    -- waiting enrollment and one user can meet: the first per enrollment, the user collision
    -- first, then each course in course_key order, its existence before its conflicts.
    RETURN QUERY
    SELECT DISTINCT ON (e.pe_id) e.pe_id, e.message
    FROM (
        SELECT
            pe.id AS pe_id,
            ''::text AS course_key,
            0 AS phase,
            enrolldb_internal.user_has_program_enrollment_message(
                p_username, q.id, pe.program_uuid, pe.curriculum_uuid
            ) AS message
        FROM enrolldb.program_enrollments_programenrollment AS pe
        INNER JOIN enrolldb.program_enrollments_programenrollment AS q
            ON
                pe.program_uuid = q.program_uuid
                AND pe.curriculum_uuid = q.curriculum_uuid
                AND q.user_id = p_user_id
        WHERE pe.id = ANY(p_program_enrollment_ids)
        UNION ALL
        SELECT
            pce.program_enrollment_id,
            pce.course_key::text,
            1,
            enrolldb_internal.nonexistent_course_message(pce.course_key)
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE
            pce.program_enrollment_id = ANY(p_program_enrollment_ids)
            AND NOT EXISTS (
                SELECT FROM enrolldb.course_overviews_courseoverview AS co
                WHERE co.id = pce.course_key
            )
        UNION ALL
        SELECT
            pce.program_enrollment_id,
            pce.course_key::text,
            2,
            enrolldb_internal.course_conflict_message(p_username, pce.course_key, ype.program_uuid)
        FROM (
            -- Status tested outside: see the reactivation UPDATE of matriculate_write.
            SELECT x.id, x.program_enrollment_id, x.course_key, x.status
            FROM enrolldb.program_enrollments_programcourseenrollment AS x
            WHERE x.program_enrollment_id = ANY(p_program_enrollment_ids)
            OFFSET 0
        ) AS pce
        INNER JOIN enrolldb.student_courseenrollment AS ce
            ON ce.user_id = p_user_id AND pce.course_key = ce.course_id
        INNER JOIN enrolldb.program_enrollments_programcourseenrollment AS y
            ON ce.id = y.course_enrollment_id AND y.status = 'active'
        INNER JOIN enrolldb.program_enrollments_programenrollment AS ype
            ON y.program_enrollment_id = ype.id
        WHERE
            pce.status = 'active'
            AND y.id <> pce.id
    ) AS e
    ORDER BY e.pe_id, e.course_key, e.phase, e.message;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.matriculate_failures(integer, text, integer[]) IS
'Internal: the waiting enrollments (locked) that linking to the user would fail, each with its '
'first message, as link planning gives them for one user.';

CREATE OR REPLACE FUNCTION enrolldb_internal.matriculate_write(
    p_user_id integer,
    p_user_active boolean,
    p_program_enrollment_ids integer[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    IF pg_catalog.cardinality(p_program_enrollment_ids) = 0 THEN
        RETURN;
    END IF;
    UPDATE enrolldb.program_enrollments_programenrollment AS pe
    SET user_id = p_user_id
    WHERE pe.id = ANY(p_program_enrollment_ids);

    -- Their course enrollments, by the rules of linking (docs/reference.md,
    -- link_program_enrollments), as
    -- attach_course_enrollments applies them, shaped for one user so that each statement
    -- is a few index probes with a cached plan (attach_course_enrollments is planned per
    -- call for arrays of any size: 2.6 ms of a 4 ms sign-in). A missing course
    -- enrollment is created in 'masters', active when an active row needs it.
    INSERT INTO enrolldb.student_courseenrollment (user_id, course_id, mode, is_active)
    SELECT p_user_id, c.course_key, 'masters', c.any_active
    FROM (
        SELECT pce.course_key, pg_catalog.bool_or(pce.status = 'active') AS any_active
        FROM enrolldb.program_enrollments_programcourseenrollment AS pce
        WHERE pce.program_enrollment_id = ANY(p_program_enrollment_ids)
        GROUP BY pce.course_key
    ) AS c
    WHERE NOT EXISTS (
        SELECT FROM enrolldb.student_courseenrollment AS ce
        WHERE ce.user_id = p_user_id AND ce.course_id = c.course_key
    )
    ORDER BY c.course_key
    ON CONFLICT ON CONSTRAINT courseenrollment_user_course_uq DO NOTHING;

    -- An active row reactivates an inactive one as 'masters' and converts audit or honor;
    -- any other active mode is left as it is; inactive rows change nothing.
    UPDATE enrolldb.student_courseenrollment AS ce
    SET is_active = TRUE, mode = 'masters'
    WHERE
        ce.user_id = p_user_id
        AND ce.course_id IN (
            -- The status is tested outside the sub-select: inside it, it matched the partial
            -- index on active rows, and stale statistics made a BitmapAnd with that whole
            -- index (1.2 million rows, 100 ms a sign-in at 100,000 learners).
            SELECT x.course_key
            FROM (
                SELECT pce.course_key, pce.status
                FROM enrolldb.program_enrollments_programcourseenrollment AS pce
                WHERE pce.program_enrollment_id = ANY(p_program_enrollment_ids)
                OFFSET 0
            ) AS x
            WHERE x.status = 'active'
        )
        AND (NOT ce.is_active OR ce.mode IN ('audit', 'honor'));

    UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce
    SET course_enrollment_id = ce.id
    FROM enrolldb.student_courseenrollment AS ce
    WHERE
        pce.program_enrollment_id = ANY(p_program_enrollment_ids)
        AND ce.user_id = p_user_id
        AND pce.course_key = ce.course_id
        AND pce.course_enrollment_id IS DISTINCT FROM ce.id;

    -- Pending role assignments of active rows become course access roles when the user is
    -- active, and are then deleted.
    IF p_user_active THEN
        WITH granted AS (
            DELETE FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
            USING (
                -- Status tested outside: see the reactivation UPDATE above.
                SELECT x.id, x.course_key, x.status
                FROM enrolldb.program_enrollments_programcourseenrollment AS x
                WHERE x.program_enrollment_id = ANY(p_program_enrollment_ids)
                OFFSET 0
            ) AS pce
            WHERE
                a.enrollment_id = pce.id
                AND pce.status = 'active'
            RETURNING a.role, pce.course_key
        )

        INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role)
        SELECT DISTINCT p_user_id, co.org, g.course_key, g.role
        FROM granted AS g
        INNER JOIN enrolldb.course_overviews_courseoverview AS co ON g.course_key = co.id
        ON CONFLICT ON CONSTRAINT courseaccessrole_user_org_course_role_uq DO NOTHING;
    END IF;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.matriculate_write(integer, boolean, integer[]) IS
'Internal: links the locked waiting enrollments planned to succeed to the user, with their '
'course enrollments and roles by the rules of linking, in statements shaped for one user.';
