-- Record the outcome of a `timebank verify` run (migration 0013). Called by the command itself,
-- after it has printed its findings; the service reads the last one for /audit.
create or replace function record_verify_run(
    p_community_id uuid, p_with_checkpoints boolean, p_checks integer, p_violations integer
) returns timestamptz language sql security definer set search_path = timebank, pg_temp as $$
    insert into verify_runs (community_id, with_checkpoints, checks, violations)
    values (p_community_id, p_with_checkpoints, p_checks, p_violations)
    returning finished_at;
$$;
