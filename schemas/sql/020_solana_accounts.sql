-- 020: Solana deposit accounts and detect's cursor per account (issue 22;
-- docs/architecture.md, "Solana"). A user pays USDT on Solana into a token
-- account: the associated token account of a wallet the operator gave the
-- user, for the configured mint. detect reads each registered account's
-- signatures newer than its cursor (common/solana_detect.c), so an account
-- registered after its first payment is read from its first transaction:
-- late registration is backfilled by construction.
CREATE TABLE sol_deposit_accounts (
    cluster       text NOT NULL CHECK (cluster ~ '^[a-z][a-z0-9-]{0,30}$'),
    mint          text NOT NULL CHECK (mint ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    token_account text NOT NULL CHECK (token_account ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    owner         text NOT NULL CHECK (owner ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    user_id       text NOT NULL CHECK (user_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    -- The newest signature whose transfers are recorded ('' before the
    -- first scan), and when the account was last scanned (the scan order:
    -- least recently scanned first, new accounts before any).
    cursor        text NOT NULL DEFAULT '' CHECK (cursor = '' OR cursor ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'),
    scanned_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster, mint, token_account)
);
CREATE INDEX sol_deposit_accounts_scan ON sol_deposit_accounts (cluster, mint, scanned_at NULLS FIRST);

GRANT SELECT, UPDATE (cursor, scanned_at) ON sol_deposit_accounts TO zl_detect;
GRANT SELECT, INSERT ON sol_deposit_accounts TO zl_address;
GRANT SELECT ON sol_deposit_accounts TO zl_admin, zl_audit;
