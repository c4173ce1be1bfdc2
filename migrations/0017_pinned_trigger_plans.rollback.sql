-- Undo 0017_pinned_trigger_plans: the trigger functions plan with every plan type again.

ALTER FUNCTION enrolldb_internal.check_match_on_pce_insert()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.check_match_on_pce_update()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.check_match_on_pe_update()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.check_match_on_ce_update()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.check_course_enrollment_match(text, integer[])
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.track_waiting_on_pce_insert()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.track_waiting_on_pce_update()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.track_waiting_on_pe_update()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.track_waiting_on_program_update()
RESET enable_seqscan
RESET enable_nestloop
RESET jit;

ALTER FUNCTION enrolldb_internal.refresh_waiting_learner_active_course(integer[])
RESET enable_seqscan
RESET enable_nestloop
RESET jit;
