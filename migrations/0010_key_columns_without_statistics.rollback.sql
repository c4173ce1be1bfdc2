-- Columns holding external user keys get the default statistics target back (the next
-- ANALYZE collects their statistics again). sqlfluff cannot parse a negative target.
ALTER TABLE enrolldb.program_enrollments_programenrollment  -- noqa: PRS
ALTER COLUMN external_user_key SET STATISTICS -1;

ALTER TABLE enrolldb.program_enrollments_historicalprogramenrollment  -- noqa: PRS
ALTER COLUMN external_user_key SET STATISTICS -1;

ALTER TABLE enrolldb.program_enrollments_learneridentity  -- noqa: PRS
ALTER COLUMN external_user_key SET STATISTICS -1;

ALTER TABLE enrolldb.waiting_learner_active_course  -- noqa: PRS
ALTER COLUMN lower_external_user_key SET STATISTICS -1;
