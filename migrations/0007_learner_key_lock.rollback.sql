-- Undo 0007_learner_key_lock.
DROP TABLE enrolldb.learner_key_lock;
