-- Undo 0004_retirement_salt.
DROP TABLE enrolldb.retirement_salt;
