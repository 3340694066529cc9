-- The balance check as it was before migration 0016: a posting's check runs in full even when its
-- transaction's check covers it (written by the same statement).
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
