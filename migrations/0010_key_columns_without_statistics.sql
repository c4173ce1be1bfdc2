-- Columns holding external user keys keep no planner statistics (pg_stats showed readers
-- the most common keys, retired ones included, until the next ANALYZE).
-- depends: 0009_import_staging

-- pg_stats shows a column's statistics to every role that may SELECT the column, and the
-- readers may. Statistics target 0: ANALYZE collects nothing for these columns. ANALYZE
-- does not delete what it collected before, and only a superuser may delete from
-- pg_statistic; changing a column's type does, so each column is "changed" to the type it
-- has: no rewrite, indexes kept, its statistics removed.
-- The expression indexes on lower(external_user_key) keep their statistics: pg_stats
-- shows an index's statistics only to the table owner.
ALTER TABLE enrolldb.program_enrollments_programenrollment
ALTER COLUMN external_user_key TYPE varchar(255),
ALTER COLUMN external_user_key SET STATISTICS 0;

ALTER TABLE enrolldb.program_enrollments_historicalprogramenrollment
ALTER COLUMN external_user_key TYPE varchar(255),
ALTER COLUMN external_user_key SET STATISTICS 0;

ALTER TABLE enrolldb.program_enrollments_learneridentity
ALTER COLUMN external_user_key TYPE varchar(255),
ALTER COLUMN external_user_key SET STATISTICS 0;

ALTER TABLE enrolldb.waiting_learner_active_course
ALTER COLUMN lower_external_user_key TYPE text,
ALTER COLUMN lower_external_user_key SET STATISTICS 0;
