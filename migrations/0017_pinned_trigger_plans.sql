-- The integrity and waiting-learner trigger functions plan without sequential scans or
-- nested loops, whatever the sizes and statistics their cached plans were made for.
-- depends: 0016_status_values

-- Why (measured): a statement of a plpgsql function that has no parameter (these statements
-- read only the transition tables) gets one generic plan per session, kept until a table it
-- reads is analyzed or altered; plan_cache_mode = force_custom_plan does not apply to it.
-- That plan is made for the transition tables and the tables as they are at its first
-- execution. Two ways it went quadratic:
-- * The course enrollments analyzed while empty (reltuples 0: a load, ANALYZE, then the
--   first link): check_match_on_pe_update's probe `ce.id = p.course_enrollment_id` was a
--   Seq Scan (estimated cost 0.00..0.00) inside the nested loop, and stayed one while the
--   table grew: slice 4 of 3,000 learners after 100,000 loaded, 5.07 s in that statement,
--   "Seq Scan on student_courseenrollment ce ... loops=6000 ... Rows Removed by Filter:
--   18000", 1,230,000 buffers; each later slice slower, until an autoanalyze happened to
--   invalidate the plan (the bench's CLI section: one 10,000-learner call over 80 s).
-- * The first execution in the session changed one row (a sign-in, a one-learner link): the
--   join of the new and old transition tables was a Nested Loop with a join filter, which a
--   later 10,000-row statement runs 10,000 x 10,000 times.
-- Every lookup in these functions has an index (the probes of 0006), and the only join that
-- is not a probe is the one of the transition tables with each other, which a hash or merge
-- join does in linear time. So sequential scans and nested loops are disabled in them:
-- a probe is then an index scan, and the transition tables are hashed or merged, whatever
-- the plan was made for. A LATERAL probe can only be a nested loop and stays one. The
-- functions the triggers call (check_course_enrollment_match, one probe per table since
-- 0014, and refresh_waiting_learner_active_course) get the same settings, so the guarantee
-- does not depend on the caller (a named tuplestore scan is not a sequential scan:
-- unaffected). A disabled
-- plan type adds 1e10 to a plan's cost, which would pass every JIT threshold: jit is off in
-- them too (measured with it on: 350 ms of JIT compilation for a one-row update).
-- tests/test_plans_stale_statistics.py ("first planned for one learner", "analyzed before
-- linking") fails without this.

ALTER FUNCTION enrolldb_internal.check_match_on_pce_insert()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.check_match_on_pce_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.check_match_on_pe_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.check_match_on_ce_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.check_course_enrollment_match(text, integer[])
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.track_waiting_on_pce_insert()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.track_waiting_on_pce_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.track_waiting_on_pe_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.track_waiting_on_program_update()
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;

ALTER FUNCTION enrolldb_internal.refresh_waiting_learner_active_course(integer[])
SET enable_seqscan = off
SET enable_nestloop = off
SET jit = off;
