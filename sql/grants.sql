-- What the service's role may do: read the ledger and call the operations. It writes no table
-- directly, cannot read token hashes or idempotency records, owns nothing, and cannot mint admins
-- or auditors (create_principal_token, ensure_admin_token are for the owner: CLI and start-up), nor
-- revoke a token as the system (revoke_token_as_system is the CLI's).
-- {app_role} is replaced by the configured role name, quoted, when migrations run.
-- The grants below are the whole set: start from nothing, so a privilege dropped here is revoked.
revoke all on all tables in schema timebank from public, {app_role};
revoke all on all functions in schema timebank from public, {app_role};
grant usage on schema timebank to {app_role};
grant select on communities, members, principals, accounts, transactions, postings,
    holds, hold_resolutions, audit_events to {app_role};
-- people: relatives are read like members; member_pins (PIN hashes) is not granted.
grant select on relatives to {app_role};
grant select (member_id) on member_pins to {app_role};
grant select on credit_batches, credit_batch_transactions to {app_role};
grant execute on function _credit_batch_json(uuid) to {app_role};
grant execute on function
    authenticate(bytea),
    authenticate_token(bytea),
    member_tokens(uuid, bigint, integer),
    revoke_token(uuid, text, text, bytea, uuid),
    create_community(uuid, text, text, text, text, integer, bigint, bigint, bigint, text, integer, integer, text, boolean),
    set_policy(uuid, text, text, jsonb),
    create_member(uuid, text, text, text, text[], text, date, text, text),
    issue_member_token(uuid, text, uuid, bytea),
    record_rejected_write(uuid, text, text, bytea, integer, jsonb, text, jsonb),
    record_refused_request(text, uuid, text, jsonb),
    post_credit(uuid, text, text, bytea, uuid, bigint, date, text),
    post_credits(uuid[], text[], text[], bytea[], uuid[], bigint[], date[], text[]),
    post_redemption(uuid, text, text, bytea, uuid, bigint, text, uuid),
    post_redemptions(uuid[], text[], text[], bytea[], uuid[], bigint[], text[], uuid[]),
    post_transfer(uuid, text, text, bytea, uuid, uuid, boolean, bigint, text),
    post_transfers(uuid[], text[], text[], bytea[], uuid[], uuid[], boolean[], bigint[], text[]),
    post_pool_grant(uuid, text, text, bytea, uuid, bigint, text),
    reverse_transaction(uuid, text, text, bytea, uuid, text),
    place_hold(uuid, text, text, bytea, uuid, bigint, text, timestamptz),
    capture_hold(uuid, text, text, bytea, uuid, bigint, uuid),
    release_hold(uuid, text, text, bytea, uuid),
    expire_holds(text, integer),
    -- people
    update_member(uuid, text, text, bytea, uuid, jsonb, text),
    member_pin_state(uuid, uuid),
    record_pin_failure(uuid, text, uuid),
    set_member_pin(uuid, text, text, bytea, uuid, text, boolean),
    add_relative(uuid, text, text, bytea, uuid, uuid, text),
    remove_relative(uuid, text, text, bytea, uuid, uuid),
    post_credit_batch(uuid, text, text, bytea, text, date, text, uuid[], bigint[])
to {app_role};
-- Service types and service requests (70_service_requests.sql).
grant select on service_types, service_requests to {app_role};
grant execute on function
    create_service_type(uuid, text, text, bytea, text, text, text, integer),
    update_service_type(uuid, text, text, text, text, integer, boolean),
    create_service_request(uuid, text, text, bytea, uuid, text, bigint, timestamptz, text, text),
    assign_service_request(uuid, text, text, bytea, uuid, uuid),
    check_in_service_request(uuid, text, text, bytea, uuid),
    report_service_request(uuid, text, text, bytea, uuid, bigint),
    confirm_service_request(uuid, text, text, bytea, uuid, integer, text, bigint),
    dispute_service_request(uuid, text, text, bytea, uuid, text),
    cancel_service_request(uuid, text, text, bytea, uuid, text),
    auto_confirm_service_requests(text, integer),
    expire_service_requests(text, integer)
to {app_role};
grant execute on function _service_request_json(uuid) to {app_role};
-- Read helpers; they run with the caller's rights, which are read-only.
grant execute on function _held_minutes(uuid, uuid), _transaction_json(uuid), _hold_json(uuid) to {app_role};
grant execute on function _audit_event_digest(uuid, timestamptz, text, uuid, text, text, uuid, uuid, text, jsonb)
    to {app_role};
-- Monthly reports (sql/functions/90_reports.sql): read-only.
grant execute on function report_month(uuid[], timestamptz, timestamptz),
    report_month_service_types(uuid[], timestamptz, timestamptz), community_subtree(uuid) to {app_role};
-- The public log (sql/functions/80_public_log.sql): the service's sealer appends through these only.
grant select on log_leaves, log_nodes, log_checkpoints, log_state, log_leaf_source to {app_role};
grant execute on function
    log_pending(integer),
    log_append(bigint, uuid[], smallint[], bigint[], bytea[], xid8, bigint),
    log_record_checkpoint(bigint, bytea, text),
    _log_leaf_json(uuid),
    log_inclusion(uuid, bigint)
to {app_role};
-- Signing in on the pages (sql/functions/95_sign_in.sql).
grant execute on function
    sign_in_pin_state(text, text),
    record_sign_in_failure(text, uuid),
    sign_in_with_pin(text, uuid, bytea),
    sign_out(text, bytea)
to {app_role};
-- Sign-in cards (sql/functions/96_pages_staff.sql); the table itself (secret hashes) is not granted.
grant execute on function
    issue_sign_in_card(uuid, text, uuid, bytea),
    sign_in_card_member(bytea),
    sign_in_card_issued_at(uuid)
to {app_role};
-- Signing in on the pages with an access token (sql/functions/96_sign_in_token.sql).
grant execute on function sign_in_with_token(text, bytea, bytea) to {app_role};
-- The outcome of each `timebank verify` run (sql/functions/99_verify_runs.sql): the command records
-- it, /audit shows the last one.
grant select on verify_runs to {app_role};
grant execute on function record_verify_run(uuid, boolean, integer, integer) to {app_role};
-- Read replicas' read-your-writes (sql/functions/98_read_positions.sql); the table itself is not granted.
grant execute on function
    note_read_position(text),
    read_position(text),
    forget_read_positions(pg_lsn)
to {app_role};
