-- write_program_course_enrollments, before writing: each request's program enrollment and row
-- for the course, the locks, and the outcomes under the one-active rule. Read only but for the
-- locks. docs/registrar-writes.md.

CREATE OR REPLACE FUNCTION enrolldb_internal.find_program_course_enrollments(
    p_program_uuid uuid,
    p_course_key text,
    p_requests enrolldb_internal.write_request[]
)
RETURNS SETOF enrolldb_internal.program_course_enrollment_write
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- Each request's program enrollment: the key's enrollment in the program (when the key is
    -- enrolled in several curricula: the newest one that already has a row for the course, else
    -- the newest one), with its user and its row for the course.
    RETURN QUERY
    SELECT
        e.request_number,
        e.external_user_key,
        e.lower_key,
        e.status,
        e.course_staff,
        t.pe_id,
        t.user_id,
        t.pce_id,
        e.outcome,
        NULL::boolean
    FROM unnest(p_requests) AS e
    LEFT JOIN LATERAL (
        SELECT pe.id AS pe_id, pe.user_id, pce.id AS pce_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        LEFT JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON pe.id = pce.program_enrollment_id AND pce.course_key = p_course_key
        WHERE
            pe.program_uuid = p_program_uuid
            AND pg_catalog.lower(pe.external_user_key) = e.lower_key
        ORDER BY pce.id IS NULL, pe.id DESC
        LIMIT 1
    ) AS t ON e.outcome IS NULL;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.find_program_course_enrollments(
    uuid, text, enrolldb_internal.write_request[]
) IS
'Internal, read only: for each request the parser left open, the program enrollment of the key '
'it writes for (several curricula: the newest with a row for the course, else the newest), its '
'user and its row for the course; the outcome is still the parser''s.';

CREATE OR REPLACE FUNCTION enrolldb_internal.lock_program_course_enrollments(
    p_course_key text,
    p_plan enrolldb_internal.program_course_enrollment_write[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
DECLARE
    v_user_ids integer[] := ARRAY(SELECT w.user_id FROM unnest(p_plan) AS w);
BEGIN
    -- lock order: docs/design.md#lock-order
    -- After the key locks and the program enrollments (lock_learner_keys), in the global order
    -- (docs/design.md): users, program course enrollments, course enrollments, each by id.
    PERFORM enrolldb_internal.lock_users(v_user_ids);
    PERFORM 1
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    WHERE pce.id = ANY(ARRAY(SELECT w.program_course_enrollment_id FROM unnest(p_plan) AS w))
    ORDER BY pce.id
    FOR UPDATE;
    -- The users' course enrollments for the course are found by one probe per user of
    -- courseenrollment_user_course_uq (a LATERAL probe is a nested loop from the users, and
    -- `course_id || ''` matches no index, so the course is a filter on each user's few
    -- rows), then locked by id. Why: with the course compared directly, statistics taken
    -- before the course had any course enrollment estimated one row for it, and the planner
    -- read every enrollment of the course through courseenrollment_course_idx on each call
    -- (measured: 2,000 requests, "Rows Removed by Filter: 18000"; an InitPlan for the key
    -- chose the same; tests/test_registrar_write_plans.py).
    PERFORM 1
    FROM enrolldb.student_courseenrollment AS ce
    WHERE ce.id = ANY(ARRAY(
        SELECT x.id
        FROM unnest(v_user_ids) AS u (user_id)
        CROSS JOIN LATERAL (
            SELECT y.id
            FROM enrolldb.student_courseenrollment AS y
            WHERE y.user_id = u.user_id AND (y.course_id || '') = p_course_key
            OFFSET 0
        ) AS x
    ))
    ORDER BY ce.id
    FOR UPDATE;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.lock_program_course_enrollments(
    text, enrolldb_internal.program_course_enrollment_write[]
) IS
'Internal: locks what a course write may change, after the key locks: the users, the rows for '
'the course, the users'' course enrollments for it, each in id order.';

CREATE OR REPLACE FUNCTION enrolldb_internal.plan_program_course_enrollment_writes(
    p_organization_key text,
    p_course_key text,
    p_plan enrolldb_internal.program_course_enrollment_write[],
    p_create boolean,
    p_update boolean
)
RETURNS SETOF enrolldb_internal.program_course_enrollment_write
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, enrolldb, pg_temp
AS $$
BEGIN
    -- The registrar writes' check of the one-active rule (docs/registrar-writes.md, "The one-active
    -- rule"; every place the rule is enforced: docs/design.md): 'active' requested while
    -- another program enrollment of the learner holds an active row for the course is a
    -- conflict, also when both requests are in this call.
    RETURN QUERY
    SELECT
        e.request_number,
        e.external_user_key,
        e.lower_key,
        e.status,
        e.course_staff,
        e.program_enrollment_id,
        e.user_id,
        e.program_course_enrollment_id,
        COALESCE(d.refusal, e.status),
        d.refusal IS NULL
    FROM (
        -- Requests of the call asking 'active' for the same user (distinct keys, so distinct
        -- program enrollments): counted with a window, one sort whatever the estimates.
        SELECT
            u.*,
            pg_catalog.count(*) FILTER (
                WHERE u.status = 'active' AND u.outcome IS NULL AND u.user_id IS NOT NULL
            ) OVER (PARTITION BY u.user_id) AS n_active_same_user
        FROM unnest(p_plan) AS u
    ) AS e
    CROSS JOIN LATERAL (
        -- Each branch is a few index probes per request (the user's enrollments by
        -- programenrollment_user_program_curriculum_uq, the key's by
        -- programenrollment_key_program_curriculum_uq, then the row for the course by
        -- programcourseenrollment_enrollment_course_uq): linear on any statistics.
        SELECT
            EXISTS (
                -- The learner's other program enrollments (by user: any program; by key: the
                -- organization's programs), then each one's row for the course. LATERAL ...
                -- OFFSET 0 (never flattened) keeps them the driving side, one probe of
                -- programcourseenrollment_enrollment_course_uq each: on stale statistics the
                -- planner otherwise started from every active row of the table (measured:
                -- 15,000 rows read per request of a 10,000-request call right after a load).
                SELECT
                FROM (
                    SELECT ype.id
                    FROM enrolldb.program_enrollments_programenrollment AS ype
                    WHERE ype.user_id = e.user_id
                    UNION
                    SELECT ype.id
                    FROM enrolldb.program_enrollments_programenrollment AS ype
                    INNER JOIN enrolldb.program_enrollments_program AS yp
                        ON ype.program_uuid = yp.program_uuid
                    WHERE
                        pg_catalog.lower(ype.external_user_key) = e.lower_key
                        AND yp.authoring_organization_key = p_organization_key
                ) AS ype
                CROSS JOIN LATERAL (
                    SELECT y.status
                    FROM enrolldb.program_enrollments_programcourseenrollment AS y
                    WHERE y.program_enrollment_id = ype.id AND y.course_key = p_course_key
                    OFFSET 0
                ) AS y
                WHERE ype.id <> e.program_enrollment_id AND y.status = 'active'
            )
            OR (e.user_id IS NOT NULL AND e.n_active_same_user > 1) AS active
    ) AS other
    CROSS JOIN LATERAL (
        SELECT
            CASE
                WHEN e.outcome IS NOT NULL THEN e.outcome
                WHEN e.program_enrollment_id IS NULL THEN 'not-in-program'
                WHEN e.status = 'active' AND other.active THEN 'conflict'
                WHEN e.program_course_enrollment_id IS NOT NULL AND NOT p_update THEN 'conflict'
                WHEN e.program_course_enrollment_id IS NULL AND NOT p_create THEN 'not-found'
            END AS refusal
    ) AS d;
END;
$$;

COMMENT ON FUNCTION enrolldb_internal.plan_program_course_enrollment_writes(
    text, text, enrolldb_internal.program_course_enrollment_write[], boolean, boolean
) IS
'Internal, read only, under the locks: every request''s outcome of '
'write_program_course_enrollments: the parser''s; not-in-program; conflict (active requested '
'while the learner - same user, or same key of the organization - holds an active row for the '
'course in another program enrollment, or another request of the call would give that user '
'one; or the row exists and no update); not-found (missing, no create); else applied, the '
'outcome being the status.';
