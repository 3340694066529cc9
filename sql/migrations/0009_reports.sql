-- Monthly reports (API.md "Reports") read one community's transactions of one month. Without this
-- index that is a scan of every community's transactions (EXPLAIN: Seq Scan on transactions, filter
-- on community_id and created_at); with it, a range scan of that community's month only.
create index transactions_community_id_created_at_idx on transactions (community_id, created_at);
