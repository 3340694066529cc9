-- Ablation (measurement only): what the foreign-key checks of the rows a credit writes cost.
alter table postings drop constraint postings_account_id_fkey, drop constraint postings_transaction_id_fkey;
alter table transactions drop constraint transactions_community_id_fkey, drop constraint transactions_created_by_fkey,
    drop constraint transactions_hold_id_fkey, drop constraint transactions_on_behalf_of_fkey,
    drop constraint transactions_reverses_fkey, drop constraint transactions_service_request_id_fkey;
alter table audit_events drop constraint audit_events_community_id_fkey;
alter table idempotency_keys drop constraint idempotency_keys_principal_id_fkey;
