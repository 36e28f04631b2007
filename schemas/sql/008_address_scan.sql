-- 008: a scan that does not depend on the number of addresses, and late
-- registration (issue 18).
--
-- detect now reads every Transfer of the token and keeps those to an address
-- in an in-memory set loaded from deposit_addresses. `seq` lets it read only
-- the addresses registered since its last read instead of all of them every
-- step. `scan_from_block` is the first block a late-registered address must
-- be scanned from (zl-address: --since-block, or its lookback before the
-- detector's cursor); NULL for addresses registered before this migration
-- and when nothing was scanned yet: the live scan covers them.
ALTER TABLE deposit_addresses ADD COLUMN seq bigserial NOT NULL;
ALTER TABLE deposit_addresses ADD COLUMN scan_from_block bigint CHECK (scan_from_block >= 0);
CREATE INDEX deposit_addresses_chain_seq ON deposit_addresses (chain_id, seq);

-- One backfill range per (chain, token, address, first block): blocks
-- from_block..to_block, where to_block is the live cursor when detect first
-- held the address in its set (above it the live scan covers the address).
-- next_block is the progress: a restart resumes there. done_at is set when
-- next_block passed to_block. Registering the address again with an earlier
-- --since-block adds a second range; both insert through the same
-- insert-if-absent path, so overlapping ranges never record a deposit twice.
CREATE TABLE address_backfill (
    chain_id    bigint NOT NULL,
    token       text   NOT NULL CHECK (token ~ '^0x[0-9a-f]{40}$'),
    address     text   NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    from_block  bigint NOT NULL CHECK (from_block >= 0),
    to_block    bigint NOT NULL,
    next_block  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    PRIMARY KEY (chain_id, token, address, from_block),
    CHECK (to_block >= from_block),
    CHECK (next_block BETWEEN from_block AND to_block + 1)
);
CREATE INDEX address_backfill_pending ON address_backfill (chain_id, token, created_at) WHERE done_at IS NULL;
