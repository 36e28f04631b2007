-- 002: what the detector keeps between runs: its cursor per chain and token,
-- the hashes of recent blocks it scanned (for reorg detection), and token
-- decimals read from the chain. Applied by zl-migrate, in one transaction.

-- Where the scan stands: every block up to block_number (whose hash was
-- block_hash when scanned) is recorded in deposits. One row per chain and
-- token contract, advanced in the same transaction as the deposits it found.
CREATE TABLE detector_cursor (
    chain_id     bigint NOT NULL CHECK (chain_id > 0),
    token        text   NOT NULL CHECK (token ~ '^0x[0-9a-f]{40}$'),
    block_number bigint NOT NULL CHECK (block_number >= 0),
    block_hash   text   NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, token)
);

-- Hashes of blocks the detector scanned up to (one per scan step), newest
-- kept, older ones pruned. A stored hash that differs from the chain's at the
-- same number is a reorg; the newest stored block that still matches is the
-- common ancestor the scan restarts from.
CREATE TABLE detector_blocks (
    chain_id     bigint NOT NULL,
    token        text   NOT NULL,
    block_number bigint NOT NULL CHECK (block_number >= 0),
    block_hash   text   NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    PRIMARY KEY (chain_id, token, block_number)
);

-- decimals() of each token, read once from the chain.
CREATE TABLE token_decimals (
    chain_id  bigint  NOT NULL,
    token     text    NOT NULL CHECK (token ~ '^0x[0-9a-f]{40}$'),
    decimals  integer NOT NULL CHECK (decimals BETWEEN 0 AND 255),
    PRIMARY KEY (chain_id, token)
);

-- Reorg handling looks deposits up by block (orphaned range) and by
-- transaction (re-inclusion at another log index).
CREATE INDEX deposits_chain_block ON deposits (chain_id, block_number);
CREATE INDEX deposits_tx_hash ON deposits (tx_hash);
