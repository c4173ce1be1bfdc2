-- Undo 0009_import_staging: the staging schema, its tables and the import's functions.
DROP SCHEMA enrolldb_import CASCADE;
