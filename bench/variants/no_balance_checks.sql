-- Ablation (measurement only): what the commit-time balance checks cost in all.
drop trigger postings_balanced on postings;
drop trigger transactions_balanced on transactions;
