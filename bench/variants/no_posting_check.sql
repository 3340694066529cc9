-- Ablation (measurement only, never a change to make as is): the commit-time balance check fires
-- once per transaction row and once per posting row, three times per credit. Without the posting
-- rows' trigger it fires once.
drop trigger postings_balanced on postings;
