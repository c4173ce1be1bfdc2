-- Undo 0011_internal_schema: the schema and the internal functions in it. The API functions
-- of sql/functions call them, so run this only to go back to a release before 0011 (whose
-- function files define their helpers in schema enrolldb).
DROP SCHEMA enrolldb_internal CASCADE;
