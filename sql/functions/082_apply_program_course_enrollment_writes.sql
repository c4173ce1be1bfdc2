-- write_program_course_enrollments, the writing: the rows for the course, the learners' course
-- enrollments (as linking gives them), the course staff role. docs/registrar-writes.md.

CREATE OR REPLACE FUNCTION enrolldb_internal.apply_program_course_enrollment_writes(
    p_course_key text,
    p_plan enrolldb_internal.program_course_enrollment_write[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_activated integer[];
    v_deactivated integer[];
    v_created integer[];
BEGIN
    -- Status changes of existing rows, only where the status differs.
    WITH upd AS (
        UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce
        SET status = w.status
        FROM unnest(p_plan) AS w
        WHERE
            w.applied
            AND pce.id = w.program_course_enrollment_id
            AND pce.status <> w.status
        RETURNING pce.id, pce.status
    )

    SELECT
        pg_catalog.array_agg(upd.id ORDER BY upd.id) FILTER (WHERE upd.status = 'active'),
        pg_catalog.array_agg(upd.id ORDER BY upd.id) FILTER (WHERE upd.status = 'inactive')
    INTO v_activated, v_deactivated
    FROM upd;

    -- New program course enrollments.
    WITH ins AS (
        INSERT INTO enrolldb.program_enrollments_programcourseenrollment (
            program_enrollment_id, course_key, status
        )
        SELECT w.program_enrollment_id, p_course_key, w.status
        FROM unnest(p_plan) AS w
        WHERE w.applied AND w.program_course_enrollment_id IS NULL
        ORDER BY w.request_number
        RETURNING id
    )

    SELECT pg_catalog.array_agg(ins.id ORDER BY ins.id) INTO v_created
    FROM ins;

    -- A deactivated row of a realized learner takes the access away, unless another active
    -- program course enrollment still uses the course enrollment; the mode stays.
    UPDATE enrolldb.student_courseenrollment AS ce
    SET is_active = FALSE
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    WHERE
        pce.id = ANY(COALESCE(v_deactivated, '{}'))
        AND ce.id = pce.course_enrollment_id
        AND ce.is_active
        AND NOT EXISTS (
            SELECT FROM enrolldb.program_enrollments_programcourseenrollment AS other
            WHERE other.course_enrollment_id = ce.id AND other.status = 'active'
        );

    -- Created and activated rows of realized learners get their course enrollment as linking
    -- gives it (and the pending roles of activated rows are fulfilled).
    PERFORM enrolldb_internal.attach_course_enrollments(
        COALESCE(v_created, '{}') || COALESCE(v_activated, '{}')
    );
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.apply_program_course_enrollment_writes(
    text, enrolldb_internal.program_course_enrollment_write[]
) IS
'Internal: writes the applied requests of a write_program_course_enrollments plan: sets the '
'status of existing rows (only where it differs), creates the missing rows, deactivates the '
'course enrollment of a deactivated row unless another active row points at it, and gives '
'created and activated rows their course enrollment (attach_course_enrollments). The staff '
'role: apply_course_staff.';

CREATE OR REPLACE FUNCTION enrolldb_internal.apply_course_staff(
    p_course_key text,
    p_course_organization text,
    p_plan enrolldb_internal.program_course_enrollment_write[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- course_staff of the applied requests: true grants (realized) or records as pending
    -- (waiting), false revokes both, null leaves them. The row for the course of a waiting
    -- learner (created by this call or not) is found by its program enrollment: one probe of
    -- programcourseenrollment_enrollment_course_uq.
    INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role)
    SELECT w.user_id, p_course_organization, p_course_key, 'staff'
    FROM unnest(p_plan) AS w
    WHERE w.applied AND w.course_staff AND w.user_id IS NOT NULL
    ORDER BY w.user_id
    ON CONFLICT ON CONSTRAINT courseaccessrole_user_org_course_role_uq DO NOTHING;

    DELETE FROM enrolldb.student_courseaccessrole AS r
    USING unnest(p_plan) AS w
    WHERE
        w.applied
        AND NOT w.course_staff
        AND r.user_id = w.user_id
        AND r.org = p_course_organization
        AND r.course_id = p_course_key
        AND r.role = 'staff';

    INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment (role, enrollment_id)
    SELECT 'staff', pce.id
    FROM unnest(p_plan) AS w
    CROSS JOIN LATERAL (
        SELECT q.id
        FROM enrolldb.program_enrollments_programcourseenrollment AS q
        WHERE q.program_enrollment_id = w.program_enrollment_id AND q.course_key = p_course_key
        OFFSET 0
    ) AS pce
    WHERE w.applied AND w.course_staff AND w.user_id IS NULL
    ORDER BY pce.id
    ON CONFLICT ON CONSTRAINT courseaccessroleassignment_role_enrollment_uq DO NOTHING;

    DELETE FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
    USING unnest(p_plan) AS w
    CROSS JOIN LATERAL (
        SELECT q.id
        FROM enrolldb.program_enrollments_programcourseenrollment AS q
        WHERE q.program_enrollment_id = w.program_enrollment_id AND q.course_key = p_course_key
        OFFSET 0
    ) AS pce
    WHERE w.applied AND NOT w.course_staff AND a.enrollment_id = pce.id AND a.role = 'staff';
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.apply_course_staff(
    text, text, enrolldb_internal.program_course_enrollment_write[]
) IS
'Internal: course_staff of the applied requests of a course write: true inserts the staff role '
'(realized learner) or a pending assignment of the row (waiting), false deletes both, null '
'leaves them.';
