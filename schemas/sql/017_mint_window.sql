-- 017: the mint stage's in-flight window (issue 19, common/txmgr.h,
-- common/nonce.h). A signer now keeps up to ZL_MINT_INFLIGHT_MAX transactions
-- unconfirmed at consecutive nonces, so two more facts are kept per nonce:
--
--   signed_block  the chain's head when the current bytes were signed: a
--                 transaction is bumped after ZL_MINT_BUMP_AFTER_BLOCKS blocks
--                 without a receipt (block time, not wall time, is what a
--                 real chain's fee market moves by). NULL for rows signed
--                 before this migration: their wall-clock stuck timer still
--                 applies.
--   status taken  the chain's nonce moved past this one and none of its
--                 hashes was mined: another sender used the same key (a
--                 nonce taken outside zeroloss). Nothing this row carried
--                 happened; its deposits are minted again at a later nonce.
--
-- Re-runnable: every statement checks before it changes anything.

ALTER TABLE signer_txs ADD COLUMN IF NOT EXISTS signed_block bigint CHECK (signed_block >= 0);

ALTER TABLE signer_txs DROP CONSTRAINT IF EXISTS signer_txs_status_check;
ALTER TABLE signer_txs ADD CONSTRAINT signer_txs_status_check
    CHECK (status IN ('pending', 'mined', 'taken'));
