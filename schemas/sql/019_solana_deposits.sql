-- 019: the state table takes Solana deposits (issue 22; docs/architecture.md,
-- "Solana"). A Solana deposit's id is "<cluster>:<signature>:<instruction>":
-- it has no EIP-155 chain id, no log index and no block hash (verify reads
-- a Solana deposit's finality from its signature's status, not from a block
-- hash at a height). Those three columns become NULL for it, and one check
-- per family replaces the EVM-only ones, so neither family's row can hold
-- the other's shapes. EVM rows are checked as before (007's cheap forms).
--
-- The family is the chain_id column: set for EVM, NULL for Solana. Every
-- EVM query already filters by chain_id = $n, which a NULL never matches.

ALTER TABLE deposits
    ALTER COLUMN chain_id DROP NOT NULL,
    ALTER COLUMN log_index DROP NOT NULL,
    ALTER COLUMN block_hash DROP NOT NULL;

ALTER TABLE deposits DROP CONSTRAINT deposits_check;          -- deposit_id = chain_id:tx_hash:log_index
ALTER TABLE deposits DROP CONSTRAINT deposits_tx_hash_check;
ALTER TABLE deposits DROP CONSTRAINT deposits_block_hash_check;

-- A CHECK passes on NULL, so each branch tests for NULL first and never
-- lets a NULL decide.
ALTER TABLE deposits ADD CONSTRAINT deposits_family_check CHECK (
    CASE WHEN chain_id IS NOT NULL THEN
        log_index IS NOT NULL AND block_hash IS NOT NULL
        AND length(tx_hash) = 66 AND tx_hash ~ '^0x[0-9a-f]+$'
        AND length(block_hash) = 66 AND block_hash ~ '^0x[0-9a-f]+$'
        AND deposit_id = chain_id::text || ':' || tx_hash || ':' || log_index::text
    ELSE
        log_index IS NULL AND block_hash IS NULL
        AND tx_hash ~ '^[1-9A-HJ-NP-Za-km-z]{64,88}$'
        AND deposit_id ~ '^[a-z][a-z0-9-]{0,30}:[1-9A-HJ-NP-Za-km-z]{64,88}:(0|[1-9][0-9]{0,2})([.](0|[1-9][0-9]{0,2}))?$'
        AND split_part(deposit_id, ':', 2) = tx_hash
    END IS TRUE);
