-- The internal functions (schemas enrolldb_internal and enrolldb_import) executable by their
-- owner alone, whatever default privileges the owner has set (ALTER DEFAULT PRIVILEGES would
-- otherwise grant the functions this migrate creates).
--
-- Why a last file: every function file above may create functions in enrolldb_internal,
-- and PostgreSQL grants EXECUTE on a new function to PUBLIC. No role but the owner has
-- USAGE on the schema, so PUBLIC could not reach them anyway; this takes the grant back
-- too, so the catalog says plainly that nobody but the owner may call an internal. The API
-- functions (SECURITY DEFINER, same owner) call them as the owner.
REVOKE ALL ON ALL ROUTINES IN SCHEMA enrolldb_internal, enrolldb_import
FROM public, enrolldb_app, enrolldb_readonly;
