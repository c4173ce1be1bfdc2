-- Drops everything of enrolldb in this database. The roles enrolldb_app and enrolldb_readonly
-- are shared by the cluster's databases and are kept.
DROP SCHEMA enrolldb CASCADE;
