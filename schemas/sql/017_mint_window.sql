-- 017: the mint stage's in-flight window (issue 19, common/txmgr.h,
-- common/nonce.h). A signer keeps up to ZL_MINT_INFLIGHT_MAX transactions
-- unconfirmed at consecutive nonces, and two more facts are kept per nonce:
--
--   signed_block  the chain's head when the current bytes were signed: a
--                 transaction is bumped after ZL_MINT_BUMP_AFTER_BLOCKS blocks
--                 without a receipt (block time, not wall time, is what a
--                 real chain's fee market moves by). No row, or NULL: the
--                 wall-clock stuck timer (ZL_MINT_STUCK_MS) alone applies.
--   taken         the chain's nonce moved past this one and none of its
--                 hashes was mined: another sender used the same key (a
--                 nonce taken outside zeroloss). Nothing the signer_txs row
--                 carried happened; its deposits are minted again at a later
--                 nonce (the row stays `pending`, and is no deposit's live
--                 mint any more).
--
-- A table of its own beside signer_txs, not columns of it: 004_mint.sql may
-- be applied after this file (the mint stage's test of a missing migration
-- holds it back), and a migration recorded as applied is never run again, so
-- nothing here may depend on 004's tables. The rows are written in the same
-- statement as the signer_txs row they describe (common/nonce.c).

CREATE TABLE IF NOT EXISTS signer_tx_marks (
    chain_id      bigint  NOT NULL,
    signer        text    NOT NULL CHECK (signer ~ '^0x[0-9a-f]{40}$'),
    nonce         bigint  NOT NULL CHECK (nonce >= 0),
    signed_block  bigint  CHECK (signed_block >= 0),
    taken         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (chain_id, signer, nonce)
);

-- The mint stage writes them (009 style: the role per stage).
GRANT SELECT, INSERT, UPDATE ON signer_tx_marks TO zl_mint;
