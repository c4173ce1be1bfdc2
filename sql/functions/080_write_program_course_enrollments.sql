-- write_program_course_enrollments: the registrar creates and updates a program's enrollments in
-- one course, under the one-active rule. docs/reference.md, write_program_course_enrollments.

CREATE OR REPLACE FUNCTION enrolldb.write_program_course_enrollments(
    p_program_uuid uuid,
    p_course_key text,
    p_requests jsonb,
    p_create boolean,
    p_update boolean
)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, enrolldb, pg_temp
-- Custom plans: a call carries 1 to 10,000 requests, and only a plan made for the real array
-- lengths keeps every join linear (a generic plan estimates every unnest() at 10 rows).
SET plan_cache_mode = force_custom_plan
-- No JIT: a 10,000-request statement costs enough to be compiled, and compiling takes longer
-- than running it.
SET jit = off
AS $$#variable_conflict use_column
DECLARE
    -- The history triggers label every row this call writes with its name. Set in the
    -- body, not by a SET clause: a custom setting in a function's SET clause needs a
    -- superuser (PostgreSQL 15+), and the owner that deploys us is not one.
    v_change_reason text := pg_catalog.set_config(
        'enrolldb.history_change_reason', 'write_program_course_enrollments', TRUE
    );
    v_org text;
    v_course_org text;
    v_ords integer[];
    v_keys text[];
    v_lows text[];
    v_statuses text[];
    v_staff boolean[];
    v_outcomes text[];
    v_pe_ids integer[];
    v_user_ids integer[];
    v_pce_ids integer[];
    v_new_pe_ids integer[];
    v_new_pce_ids integer[];
    v_activated integer[];
    v_deactivated integer[];
BEGIN
    IF p_program_uuid IS NULL OR p_course_key IS NULL OR p_requests IS NULL OR p_create IS NULL
        OR p_update IS NULL THEN
        RAISE EXCEPTION 'write_program_course_enrollments: no argument may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM enrolldb.check_write_requests(
        'write_program_course_enrollments', p_requests, p_create, p_update,
        'course_staff', ARRAY['boolean', 'null'],
        'course_staff true, false or null'
    );

    SELECT p.authoring_organization_key INTO v_org
    FROM enrolldb.program_enrollments_program AS p
    WHERE p.program_uuid = p_program_uuid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'write_program_course_enrollments: unknown program uuid=%', p_program_uuid
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT co.org INTO v_course_org
    FROM enrolldb.course_overviews_courseoverview AS co
    WHERE co.id = p_course_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'write_program_course_enrollments: course % does not exist', p_course_key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_array_length(p_requests) = 0 THEN
        RETURN '{}'::jsonb;
    END IF;

    -- The requests, with the outcomes that need no lock: key shape, duplicates, status.
    SELECT
        pg_catalog.array_agg(c.ord ORDER BY c.ord),
        pg_catalog.array_agg(c.k ORDER BY c.ord),
        pg_catalog.array_agg(c.low ORDER BY c.ord),
        pg_catalog.array_agg(c.status ORDER BY c.ord),
        pg_catalog.array_agg(c.staff ORDER BY c.ord),
        pg_catalog.array_agg(
            CASE
                WHEN c.low IS NULL THEN 'invalid-key'
                WHEN c.nth > 1 THEN 'duplicated'
                WHEN c.status NOT IN ('active', 'inactive') THEN 'invalid-status'
            END
            ORDER BY c.ord
        )
    INTO v_ords, v_keys, v_lows, v_statuses, v_staff, v_outcomes
    FROM (
        SELECT
            r.ord::integer AS ord,
            r.req ->> 'external_user_key' AS k,
            r.req ->> 'status' AS status,
            (r.req ->> 'course_staff')::boolean AS staff,
            kk.low,
            pg_catalog.row_number() OVER (PARTITION BY kk.low ORDER BY r.ord) AS nth
        FROM pg_catalog.jsonb_array_elements(p_requests) WITH ORDINALITY AS r (req, ord)
        CROSS JOIN LATERAL (
            SELECT enrolldb.comparable_external_key(r.req ->> 'external_user_key') AS low
        ) AS kk
    ) AS c;

    -- lock order: docs/design.md#lock-order
    -- Locks, in the global order: learner keys, then the program's enrollments of those keys
    -- (id order), their users, their program course enrollments for the course, and the users'
    -- course enrollments for the course.
    PERFORM enrolldb.lock_learner_keys(
        p_program_uuid,
        v_org,
        ARRAY(SELECT e.low FROM unnest(v_lows, v_outcomes) AS e (low, o) WHERE e.o IS NULL)
    );

    -- Each request's program enrollment: the key's enrollment in the program (when the key is
    -- enrolled in several curricula: the newest one that already has a row for the course, else
    -- the newest one).
    SELECT
        pg_catalog.array_agg(t.pe_id ORDER BY e.ord),
        pg_catalog.array_agg(t.user_id ORDER BY e.ord),
        pg_catalog.array_agg(t.pce_id ORDER BY e.ord)
    INTO v_pe_ids, v_user_ids, v_pce_ids
    FROM unnest(v_ords, v_lows, v_outcomes) AS e (ord, low, o)
    LEFT JOIN LATERAL (
        SELECT pe.id AS pe_id, pe.user_id, pce.id AS pce_id
        FROM enrolldb.program_enrollments_programenrollment AS pe
        LEFT JOIN enrolldb.program_enrollments_programcourseenrollment AS pce
            ON pe.id = pce.program_enrollment_id AND pce.course_key = p_course_key
        WHERE
            pe.program_uuid = p_program_uuid
            AND pg_catalog.lower(pe.external_user_key) = e.low
        ORDER BY pce.id IS NULL, pe.id DESC
        LIMIT 1
    ) AS t ON e.o IS NULL;

    PERFORM enrolldb_internal.lock_users(v_user_ids);
    PERFORM 1
    FROM enrolldb.program_enrollments_programcourseenrollment AS pce
    WHERE pce.id = ANY(v_pce_ids)
    ORDER BY pce.id
    FOR UPDATE;
    PERFORM 1
    FROM enrolldb.student_courseenrollment AS ce
    WHERE ce.user_id = ANY(v_user_ids) AND ce.course_id = p_course_key
    ORDER BY ce.id
    FOR UPDATE;

    -- Outcomes. The one-active rule: a learner (the same user, or the same key of the program's
    -- organization, waiting or realized) may hold one active program course enrollment for the
    -- course, whatever the program; 'active' requested while another program enrollment of the
    -- learner holds one is a conflict, also when both requests are in this call.
    SELECT
        pg_catalog.array_agg(
            CASE
                WHEN e.o IS NOT NULL THEN e.o
                WHEN e.pe_id IS NULL THEN 'not-in-program'
                WHEN e.status = 'active' AND other.active THEN 'conflict'
                WHEN e.pce_id IS NOT NULL AND NOT p_update THEN 'conflict'
                WHEN e.pce_id IS NULL AND NOT p_create THEN 'not-found'
                ELSE e.status
            END
            ORDER BY e.ord
        )
    INTO v_outcomes
    FROM (
        -- Requests of the call asking 'active' for the same user (distinct keys, so distinct
        -- program enrollments): counted with a window, one sort whatever the estimates.
        SELECT
            u.*,
            pg_catalog.count(*) FILTER (
                WHERE u.status = 'active' AND u.o IS NULL AND u.user_id IS NOT NULL
            ) OVER (PARTITION BY u.user_id) AS n_active_same_user
        FROM unnest(v_ords, v_lows, v_statuses, v_outcomes, v_pe_ids, v_user_ids, v_pce_ids)
            AS u (ord, low, status, o, pe_id, user_id, pce_id)
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
                        pg_catalog.lower(ype.external_user_key) = e.low
                        AND yp.authoring_organization_key = v_org
                ) AS ype
                CROSS JOIN LATERAL (
                    SELECT y.status
                    FROM enrolldb.program_enrollments_programcourseenrollment AS y
                    WHERE y.program_enrollment_id = ype.id AND y.course_key = p_course_key
                    OFFSET 0
                ) AS y
                WHERE ype.id <> e.pe_id AND y.status = 'active'
            )
            OR (e.user_id IS NOT NULL AND e.n_active_same_user > 1) AS active
    ) AS other;

    -- Status changes of existing rows, only where the status differs (v_pce_ids still holds
    -- only the rows that existed before this call).
    WITH upd AS (
        UPDATE enrolldb.program_enrollments_programcourseenrollment AS pce
        SET status = e.status
        FROM unnest(v_statuses, v_outcomes, v_pce_ids) AS e (status, o, pce_id)
        WHERE
            pce.id = e.pce_id
            AND e.o = e.status
            AND pce.status <> e.status
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
        SELECT e.pe_id, p_course_key, e.status
        FROM unnest(v_ords, v_statuses, v_outcomes, v_pe_ids, v_pce_ids)
            AS e (ord, status, o, pe_id, pce_id)
        WHERE e.pce_id IS NULL AND e.o = e.status
        ORDER BY e.ord
        RETURNING id, program_enrollment_id
    )

    SELECT
        pg_catalog.array_agg(ins.program_enrollment_id ORDER BY ins.id),
        pg_catalog.array_agg(ins.id ORDER BY ins.id)
    INTO v_new_pe_ids, v_new_pce_ids
    FROM ins;

    SELECT pg_catalog.array_agg(n.pce_id ORDER BY e.ord)
    INTO v_pce_ids
    FROM unnest(v_ords, v_pe_ids, v_pce_ids) AS e (ord, pe_id, pce_id)
    LEFT JOIN unnest(v_new_pe_ids, v_new_pce_ids) AS nw (pe_id, pce_id) ON e.pe_id = nw.pe_id
    CROSS JOIN LATERAL (SELECT COALESCE(e.pce_id, nw.pce_id) AS pce_id) AS n;

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
        COALESCE(v_new_pce_ids, '{}') || COALESCE(v_activated, '{}')
    );

    -- course_staff of the successful requests: true grants (realized) or records as pending
    -- (waiting), false revokes both, null leaves them.
    INSERT INTO enrolldb.student_courseaccessrole (user_id, org, course_id, role)
    SELECT e.user_id, v_course_org, p_course_key, 'staff'
    FROM unnest(v_statuses, v_outcomes, v_user_ids, v_staff) AS e (status, o, user_id, staff)
    WHERE e.o = e.status AND e.staff AND e.user_id IS NOT NULL
    ORDER BY e.user_id
    ON CONFLICT ON CONSTRAINT courseaccessrole_user_org_course_role_uq DO NOTHING;

    DELETE FROM enrolldb.student_courseaccessrole AS r
    USING unnest(v_statuses, v_outcomes, v_user_ids, v_staff) AS e (status, o, user_id, staff)
    WHERE
        e.o = e.status
        AND NOT e.staff
        AND r.user_id = e.user_id
        AND r.org = v_course_org
        AND r.course_id = p_course_key
        AND r.role = 'staff';

    INSERT INTO enrolldb.program_enrollments_courseaccessroleassignment (role, enrollment_id)
    SELECT 'staff', e.pce_id
    FROM unnest(v_statuses, v_outcomes, v_user_ids, v_staff, v_pce_ids)
        AS e (status, o, user_id, staff, pce_id)
    WHERE e.o = e.status AND e.staff AND e.user_id IS NULL
    ORDER BY e.pce_id
    ON CONFLICT ON CONSTRAINT courseaccessroleassignment_role_enrollment_uq DO NOTHING;

    DELETE FROM enrolldb.program_enrollments_courseaccessroleassignment AS a
    USING unnest(v_statuses, v_outcomes, v_staff, v_pce_ids) AS e (status, o, staff, pce_id)
    WHERE e.o = e.status AND NOT e.staff AND a.enrollment_id = e.pce_id AND a.role = 'staff';

    RETURN (
        SELECT pg_catalog.jsonb_object_agg(r.k, r.o ORDER BY r.o = 'duplicated', r.ord)
        FROM unnest(v_ords, v_keys, v_outcomes) AS r (ord, k, o)
    );
END;
$$;

COMMENT ON FUNCTION enrolldb.write_program_course_enrollments(uuid, text, jsonb, boolean, boolean)
IS
'The registrar''s writes for one course of a program (docs/reference.md, '
'write_program_course_enrollments). p_requests is a JSON array of '
'{external_user_key, status (active|inactive), course_staff (true|false|null, may be absent)}; '
'returns {key as requested: outcome}. Per request, first match wins: invalid-key (empty after '
'trimming or over 255 characters); duplicated (a later occurrence of a key, not applied; the '
'same spelling twice says duplicated); invalid-status; not-in-program (no enrollment of the '
'program with the key; with several curricula the newest enrollment that has a row for the '
'course, else the newest, is used); conflict when active is requested while the learner - the '
'same user, or the same key of the program''s organization, waiting or realized - holds an '
'active program course enrollment for the course in another program enrollment (or another '
'request of the call would give that user one); conflict when the row exists and p_update is '
'false; not-found when it is missing and p_create is false; else the row is created or its '
'status set (written only when it differs) and the status returned. A realized learner''s course '
'enrollment follows as in linking: created or activated rows get one through '
'attach_course_enrollments (created, reactivated or converted to masters; inactive rows only '
'point); a deactivated row deactivates it (mode kept) unless another active program course '
'enrollment points at it. course_staff true grants the staff role (realized) or records a '
'pending assignment (waiting); false revokes the role and deletes the assignment; null leaves '
'them; only for successful requests. Whole-call errors: a NULL argument or a null key or status '
'in a request (22004); neither flag, a malformed request array, an unknown program or course '
'(22023).';

REVOKE ALL ON FUNCTION enrolldb.write_program_course_enrollments(
    uuid, text, jsonb, boolean, boolean
) FROM public;
GRANT EXECUTE ON FUNCTION enrolldb.write_program_course_enrollments(
    uuid, text, jsonb, boolean, boolean
) TO enrolldb_app;
