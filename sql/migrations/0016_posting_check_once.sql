-- The balance check runs at commit once per transaction row and once per posting row: three full
-- checks for a two-legged transaction, about a fifth of PostgreSQL's CPU per credit in a batch
-- (README, "Performance": `python -m bench.write_cost --variant bench/variants/no_posting_check.sql`).
-- A posting's check is needed only when its transaction's check might already have run without it:
-- when the posting was written by a later statement than the transaction (a shortcut that skipped
-- every posting of the same database transaction was withdrawn for exactly that case: SET
-- CONSTRAINTS ALL IMMEDIATE runs the transaction's check, and a posting added afterwards went
-- unchecked). Rows of one statement share their inserting transaction (xmin) and command (cmin), and
-- postings and transactions are never updated, so those two columns say it exactly. The batch
-- operations write each transaction with its postings in one statement; the single operations write
-- them in two and keep the full checks.
create or replace function check_transaction_balanced() returns trigger
    language plpgsql
    set enable_seqscan = off
as $$
declare
    v_tx_id uuid;
    v_tx transactions;
    v_policy communities;
    v_count integer;
    v_sum bigint;
    v_foreign integer;
    v_bad_amount integer;
    v_mismatch integer;
begin
    if tg_table_name = 'transactions' then
        v_tx_id := new.id;
    else
        v_tx_id := new.transaction_id;
        -- A posting written by the same statement as its transaction (same inserting transaction
        -- and command) is covered by that transaction's own check: that check cannot run before
        -- the statement has ended (deferred, it runs at commit; immediate, at the statement's end),
        -- so it sees this posting. A posting written by any later statement is checked in full.
        if exists (select 1
                     from postings p, transactions t
                    where p.id = new.id and t.id = v_tx_id
                      and p.xmin = t.xmin and p.cmin = t.cmin) then
            return null;
        end if;
    end if;
    select * into v_tx from transactions where id = v_tx_id;
    if not found then
        raise exception using errcode = 'TB901', message = format('posting to unknown transaction %s', v_tx_id),
            detail = 'unbalanced_transaction';
    end if;
    select * into v_policy from communities where id = v_tx.community_id;
    select count(*), coalesce(sum(p.minutes), 0),
           count(*) filter (where a.community_id <> v_tx.community_id),
           count(*) filter (where abs(p.minutes) % v_policy.unit_minutes <> 0
                               or abs(p.minutes) > v_policy.max_transaction_minutes)
      into v_count, v_sum, v_foreign, v_bad_amount
      from postings p join accounts a on a.id = p.account_id
     where p.transaction_id = v_tx_id;
    if v_count < 2 or v_sum <> 0 then
        raise exception using errcode = 'TB901',
            message = format('transaction %s does not balance: %s postings summing to %s', v_tx_id, v_count, v_sum),
            detail = 'unbalanced_transaction';
    end if;
    if v_foreign > 0 then
        raise exception using errcode = 'TB901',
            message = format('transaction %s posts outside its community', v_tx_id),
            detail = 'cross_community_not_allowed';
    end if;
    if v_tx.kind = 'reversal' then
        select count(*) into v_mismatch from (
            (select account_id, -minutes from postings where transaction_id = v_tx.reverses
             except all select account_id, minutes from postings where transaction_id = v_tx_id)
            union all
            (select account_id, minutes from postings where transaction_id = v_tx_id
             except all select account_id, -minutes from postings where transaction_id = v_tx.reverses)
        ) d;
        if v_mismatch > 0 then
            raise exception using errcode = 'TB901',
                message = format('reversal %s does not mirror transaction %s', v_tx_id, v_tx.reverses),
                detail = 'unbalanced_transaction';
        end if;
    elsif v_bad_amount > 0 then
        raise exception using errcode = 'TB901',
            message = format('transaction %s has an amount outside the community policy', v_tx_id),
            detail = 'amount_not_multiple_of_unit';
    end if;
    return null;
end;
$$;
