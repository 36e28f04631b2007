-- 021: the mint stage's stored Solana receipt transactions (issue 22;
-- common/solana_mint.h, docs/architecture.md "Solana"). A deposit's signed
-- durable-nonce transaction is stored here BEFORE it is sent, so a crash
-- sends the same bytes again instead of signing anew; it is replaced only
-- once the chain shows the stored bytes can never run (its nonce moved on,
-- final, with no receipt). At most one pending transaction per durable
-- nonce account: a second one signed with the same value could not run
-- anyway, and the index makes every copy pick a free account.
CREATE TABLE sol_receipt_txs (
    deposit_id    text PRIMARY KEY,
    cluster       text NOT NULL CHECK (cluster ~ '^[a-z][a-z0-9-]{0,30}$'),
    nonce_account text NOT NULL CHECK (nonce_account ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    nonce_value   text NOT NULL CHECK (nonce_value ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    signature     text NOT NULL CHECK (signature ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    tx            bytea NOT NULL CHECK (length(tx) BETWEEN 1 AND 1232),
    mint          text NOT NULL CHECK (mint ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    owner         text NOT NULL CHECK (owner ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    signed_count  integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX sol_receipt_txs_nonce_busy ON sol_receipt_txs (cluster, nonce_account) WHERE state = 'pending';

GRANT SELECT, INSERT, UPDATE ON sol_receipt_txs TO zl_mint;
GRANT SELECT ON sol_receipt_txs TO zl_admin, zl_audit;
