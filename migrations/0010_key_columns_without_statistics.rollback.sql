-- Columns holding external user keys get the default statistics target back (the next
-- ANALYZE collects their statistics again).
ALTER TABLE enrolldb.program_enrollments_programenrollment
ALTER COLUMN external_user_key SET STATISTICS -1;

ALTER TABLE enrolldb.program_enrollments_historicalprogramenrollment
ALTER COLUMN external_user_key SET STATISTICS -1;

ALTER TABLE enrolldb.program_enrollments_learneridentity
ALTER COLUMN external_user_key SET STATISTICS -1;

ALTER TABLE enrolldb.waiting_learner_active_course
ALTER COLUMN lower_external_user_key SET STATISTICS -1;
