-- 004: the mint stage's signer bookkeeping (common/nonce.h).
--
-- Exactly-once minting rests on three things (docs/architecture.md): the
-- contract refuses a second mint of a token id; the signed transaction is
-- stored HERE, in the same transaction that allocates its nonce and moves the
-- deposit to mint_submitted, BEFORE it is broadcast; a retry re-broadcasts the
-- stored bytes instead of signing anew.

-- One row per signer and chain: the next nonce to hand out. Allocation takes
-- the row FOR UPDATE, so copies of the stage sharing one signer queue on it
-- and can never hand out the same nonce twice.
CREATE TABLE signer_nonces (
    chain_id    bigint      NOT NULL CHECK (chain_id > 0),
    signer      text        NOT NULL CHECK (signer ~ '^0x[0-9a-f]{40}$'),
    next_nonce  bigint      NOT NULL CHECK (next_nonce >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, signer)
);

-- One row per nonce used: the transaction currently signed at that nonce and
-- every hash ever signed there (a fee bump replaces the bytes but the old
-- hash may still be the one that is mined).
--   purpose  mint    a mint of deposit_ids[1] (mint_batch: several)
--            filler  a 0-value self-send filling the nonce of a mint the node
--                    refused for good, so later nonces are not blocked
--   status   pending signed and stored; broadcast at least attempted
--            mined   a receipt was seen for mined_hash (receipt_status 1/0)
CREATE TABLE signer_txs (
    chain_id        bigint      NOT NULL,
    signer          text        NOT NULL,
    nonce           bigint      NOT NULL CHECK (nonce >= 0),
    purpose         text        NOT NULL CHECK (purpose IN ('mint', 'mint_batch', 'filler')),
    deposit_ids     text[]      NOT NULL DEFAULT '{}',
    tx_type         smallint    NOT NULL CHECK (tx_type IN (0, 2)),
    to_addr         text        NOT NULL CHECK (to_addr ~ '^0x[0-9a-f]{40}$'),
    gas_limit       bigint      NOT NULL CHECK (gas_limit > 0),
    max_fee_wei     numeric(78,0) NOT NULL CHECK (max_fee_wei >= 0),      -- legacy: gas price
    priority_fee_wei numeric(78,0) NOT NULL CHECK (priority_fee_wei >= 0), -- legacy: 0
    raw_tx          text        NOT NULL CHECK (raw_tx ~ '^0x[0-9a-f]+$'),
    tx_hash         text        NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    hashes          text[]      NOT NULL,   -- every hash signed at this nonce, current included
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'mined')),
    mined_hash      text,
    block_number    bigint,
    receipt_status  smallint,
    gas_used        bigint,
    replaced_from   text,       -- the mint a filler replaced: why this nonce holds a self-send
    last_error      text,
    signed_at       timestamptz NOT NULL DEFAULT now(),  -- of the current bytes: the stuck clock
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, signer, nonce),
    CHECK (tx_hash = ANY (hashes)),
    CHECK (status <> 'mined' OR mined_hash = ANY (hashes))
);

-- A deposit's mint is found by its id.
CREATE INDEX signer_txs_deposits ON signer_txs USING gin (deposit_ids);
-- The janitor looks for pending fillers and stuck transactions.
CREATE INDEX signer_txs_pending ON signer_txs (chain_id, signer, nonce) WHERE status = 'pending';
