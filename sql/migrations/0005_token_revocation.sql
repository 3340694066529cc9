-- Tokens can be revoked (a lost phone must be shut out), listed, and show when they were last used.
--
-- A revocation is a row of its own in an append-only table, like a hold's resolution: once written it
-- cannot be changed or removed, and a revoked token's row can neither be deleted (the revocation
-- refers to it) nor given another hash, so no role can un-revoke a token.

-- Tokens are listed newest first, keyset-paged on a sequence number like every other list. Existing
-- tokens are numbered in the order they were made.
alter table tokens add column seq bigint;
update tokens t
   set seq = o.n
  from (select id, row_number() over (order by created_at, id) as n from tokens) o
 where o.id = t.id;
alter table tokens alter column seq set not null;
alter table tokens alter column seq add generated always as identity;
select setval(pg_get_serial_sequence('tokens', 'seq'), coalesce(max(seq), 0) + 1, false) from tokens;
alter table tokens add constraint tokens_seq_key unique (seq);
create index tokens_principal_id_seq_idx on tokens (principal_id, seq);

-- When the token last authenticated against the database. Authentication touches it at most once a
-- minute per token, so it is accurate to about a minute plus the token cache's lifetime.
alter table tokens add column last_used_at timestamptz;

create table token_revocations (
    token_id uuid primary key references tokens (id),
    revoked_at timestamptz not null default clock_timestamp(),
    revoked_by text not null,
    request_id text not null
);

create trigger token_revocations_append_only before update or delete on token_revocations
    for each row execute function reject_ledger_change();
create trigger token_revocations_no_truncate before truncate on token_revocations
    for each statement execute function reject_ledger_change();

-- A token is never deleted and its identity never changes; only last_used_at moves.
create function reject_token_change() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE'
       and (new.id, new.principal_id, new.token_hash, new.created_at, new.created_by, new.seq)
           is not distinct from (old.id, old.principal_id, old.token_hash, old.created_at, old.created_by, old.seq) then
        return new;
    end if;
    raise exception using
        errcode = 'TB900',
        message = format('tokens: %s is not allowed; only last_used_at may change', lower(tg_op)),
        detail = 'append_only';
end;
$$;

create trigger tokens_identity_fixed before update or delete on tokens
    for each row execute function reject_token_change();
create trigger tokens_no_truncate before truncate on tokens
    for each statement execute function reject_ledger_change();
