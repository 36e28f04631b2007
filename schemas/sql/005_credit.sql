-- 005: the credit stage's double-entry ledger and its rates
-- (docs/architecture.md §4, issue 7). Uses only 001's tables.
--
-- Every credit is two entries that sum to zero: +eggs on the user's eggs
-- account ('user_credit') and -eggs on the system account of the deposit's
-- token ('system_debit'). The entries, the account balances and the state
-- row's credit_id/credit_eggs are written in the same transaction as the
-- runtime's compare-and-set of the row to 'credited'.

-- Rates: eggs per whole token, per token, effective from a time. The newest
-- row whose effective_from has passed is the rate. numeric, never a double.
CREATE TABLE credit_rates (
    token          text        NOT NULL CHECK (token ~ '^0x[0-9a-f]{40}$'),
    rate           numeric     NOT NULL CHECK (rate > 0),
    effective_from timestamptz NOT NULL DEFAULT now(),
    note           text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token, effective_from)
);

-- Accounts and their balances. A user account can never go below zero: any
-- debit that would (a refund, a spend, a bad manual fix) is refused by
-- ledger_accounts_balance_nonnegative. The system account of a token is the
-- other side of every credit, so its balance is minus the eggs issued
-- against that token: never above zero.
CREATE TABLE ledger_accounts (
    account_id text        PRIMARY KEY,            -- 'user:<user_id>' or 'system:<token>'
    kind       text        NOT NULL CHECK (kind IN ('user', 'system')),
    owner      text        NOT NULL,               -- user_id, or token address (lower case)
    balance    numeric(100,0) NOT NULL DEFAULT 0,  -- eggs; sums of uint256 values
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, owner),
    CHECK (account_id = kind || ':' || owner),
    CONSTRAINT ledger_accounts_balance_nonnegative CHECK (kind <> 'user' OR balance >= 0),
    CONSTRAINT ledger_accounts_system_nonpositive CHECK (kind <> 'system' OR balance <= 0)
);

-- Entries. At most one entry per deposit and kind: a second credit of the
-- same deposit cannot be written. The rate used, where it came from and the
-- token amount and decimals are kept on the entry, and the rounding rule
-- (floor(amount * rate / 10^decimals)) is checked here too, so a wrong
-- amount cannot be stored whatever code writes it.
CREATE TABLE ledger_entries (
    entry_id       uuid        PRIMARY KEY,
    credit_id      uuid        NOT NULL,   -- the credit both entries belong to: the user entry's id
    deposit_id     text        NOT NULL REFERENCES deposits (deposit_id),
    kind           text        NOT NULL CHECK (kind IN ('user_credit', 'system_debit')),
    account_id     text        NOT NULL REFERENCES ledger_accounts (account_id),
    amount         numeric(80,0) NOT NULL,           -- signed eggs
    token_amount   numeric(78,0) NOT NULL CHECK (token_amount >= 0),
    token_decimals integer     NOT NULL CHECK (token_decimals BETWEEN 0 AND 77),
    rate           numeric     NOT NULL CHECK (rate > 0),
    rate_source    text        NOT NULL CHECK (rate_source IN ('db', 'http', 'stale_cache', 'static')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_entries_one_per_deposit_kind UNIQUE (deposit_id, kind),
    CONSTRAINT ledger_entries_sign CHECK ((kind = 'user_credit' AND amount >= 0)
                                          OR (kind = 'system_debit' AND amount <= 0)),
    CONSTRAINT ledger_entries_rounding CHECK
        (abs(amount) = div(token_amount * rate, power(10::numeric, token_decimals)))
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id);
CREATE INDEX ledger_entries_credit ON ledger_entries (credit_id);
