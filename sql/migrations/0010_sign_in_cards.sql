-- Sign-in cards (issue 11, PAGES.md): a coordinator prints a card whose QR code opens
-- /login/card/<secret> on the member's own phone. One card per member: printing a new card
-- replaces the row, so the old card's secret no longer opens anything. Only the secret's SHA-256
-- is stored, as for tokens; the secret itself is shown once, on the printed card.
create table sign_in_cards (
    member_id uuid primary key references members (id),
    secret_hash bytea not null,
    issued_at timestamptz not null default clock_timestamp(),
    issued_by text not null,
    constraint sign_in_cards_secret_hash_sha256 check (octet_length(secret_hash) = 32),
    constraint sign_in_cards_secret_hash_key unique (secret_hash)
);
