-- 009: least privilege (issue 17). One NOLOGIN group role per stage and
-- tool, granted exactly what that binary's SQL does, so a stage that is
-- taken over (or merely wrong) can touch only its own part of the state:
-- ipfs-upload cannot write the ledger, verify cannot mint, no stage can
-- write the admin audit. An operator gives each binary its own LOGIN role
-- that is a member of its group role (docs/deploy.md, "Database roles").
--
--   zl_detect       detect        zl_sweep    zl-sweep
--   zl_verify       verify        zl_replay   zl-replay
--   zl_ipfs_upload  ipfs-upload   zl_admin    zl-admin
--   zl_mint         mint          zl_audit    zl-audit (read only)
--   zl_credit       credit        zl_address  zl-address
--
-- zl-migrate runs as the schema's owner, which needs CREATEROLE the first
-- time (or the roles created beforehand by someone who has it).
--
-- Every stage reads the whole state row (the row is its input: it acts on
-- the row, not on the message), so SELECT on deposits is table-wide; what a
-- stage may change is listed column by column. The runtime's own writes
-- (common/state.c: compare-and-set, failure, dead letter) are the columns
-- in the first list below; each stage adds its results.

-- Roles are cluster-wide, grants per database: several databases of one
-- cluster (test databases) each apply this file, and may do so at once, so
-- a role another database just created is not an error.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['zl_detect', 'zl_verify', 'zl_ipfs_upload', 'zl_mint', 'zl_credit',
                             'zl_sweep', 'zl_replay', 'zl_admin', 'zl_audit', 'zl_address'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by another database's migration
            END;
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
    END LOOP;
END $$;

-- The history rows are the trigger's to write, not the stages': running as
-- the owner, it needs no stage to hold INSERT on deposit_history (so none
-- can forge or skip one). search_path is pinned for a definer function.
ALTER FUNCTION deposits_history_ins() SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION deposits_history_upd() SECURITY DEFINER SET search_path FROM CURRENT;

-- detect (common/detector.c): its cursor and recent blocks, the deposit
-- addresses it watches, new rows and reorged ones, token decimals.
GRANT SELECT, INSERT, UPDATE ON detector_cursor TO zl_detect;
GRANT SELECT, INSERT, UPDATE, DELETE ON detector_blocks TO zl_detect;
GRANT SELECT ON deposit_addresses TO zl_detect;
-- the backfill of late-registered addresses (008, common/detector_addr.c)
GRANT SELECT, INSERT, UPDATE ON address_backfill TO zl_detect;
GRANT SELECT, INSERT, UPDATE ON token_decimals TO zl_detect;
GRANT SELECT, INSERT ON deposits TO zl_detect;
GRANT UPDATE (state, block_number, block_hash, last_error, last_error_class, updated_at) ON deposits TO zl_detect;

-- The runtime's writes, for every stage it runs (common/state.c).
GRANT SELECT ON deposits TO zl_verify, zl_ipfs_upload, zl_mint, zl_credit;
GRANT UPDATE (state, attempts, last_error, last_error_class, next_attempt_at, updated_at, dead_from_state,
              dlq_topic, dlq_partition, dlq_offset)
    ON deposits TO zl_verify, zl_ipfs_upload, zl_mint, zl_credit;

-- verify (workers/verify): confirmations and the block it was seen in.
GRANT UPDATE (confirmations, block_number, block_hash) ON deposits TO zl_verify;

-- ipfs-upload (workers/ipfs-upload): the metadata's CID and URI, and the
-- images it has pinned.
GRANT UPDATE (metadata_cid, token_uri) ON deposits TO zl_ipfs_upload;
GRANT SELECT, INSERT ON ipfs_images TO zl_ipfs_upload;

-- mint (workers/mint, common/nonce.c): the signer's nonces and
-- transactions are its own; on the row, the mint's results.
-- 004 may come after this file where it was held back on purpose (the mint
-- stage's test of a missing migration): then its tables get these grants
-- from whoever applies it late; here they are granted when present.
GRANT UPDATE (mint_tx_hash, token_id, nft_contract) ON deposits TO zl_mint;
DO $$
BEGIN
    IF to_regclass('signer_nonces') IS NOT NULL AND to_regclass('signer_txs') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE ON signer_nonces, signer_txs TO zl_mint;
    END IF;
END $$;

-- credit (workers/credit, common/ledger.c, common/rates.c): the ledger,
-- the rates it reads, the credit on the row.
GRANT UPDATE (credit_id, credit_eggs) ON deposits TO zl_credit;
GRANT SELECT, INSERT, UPDATE ON ledger_accounts TO zl_credit;
GRANT SELECT, INSERT ON ledger_entries TO zl_credit;
GRANT SELECT ON credit_rates TO zl_credit;

-- zl-sweep (common/sweep.c): stale rows, its marks, sweep requests, and
-- the state gauges (dead letters resolved by hand are not counted).
GRANT SELECT ON deposits, dead_resolutions TO zl_sweep;
GRANT SELECT, INSERT, UPDATE ON sweep_marks TO zl_sweep;
GRANT SELECT, UPDATE ON sweep_requests TO zl_sweep;

-- zl-replay (common/replay.c): its log, and a dead row restored to the
-- state it died in.
GRANT SELECT, INSERT, UPDATE ON replay_log TO zl_replay;
GRANT SELECT ON deposits TO zl_replay;
GRANT UPDATE (state, dead_from_state, attempts, next_attempt_at, last_error, last_error_class, updated_at)
    ON deposits TO zl_replay;

-- zl-admin (common/admin.c): reads a deposit's whole story; resolves and
-- requeues dead rows; asks for sweeps; writes the audit and idempotency
-- records (never changes or deletes one).
GRANT SELECT ON deposits, deposit_history, replay_log TO zl_admin;
GRANT UPDATE (state, dead_from_state, attempts, next_attempt_at, last_error, last_error_class, updated_at)
    ON deposits TO zl_admin;
GRANT SELECT, INSERT ON dead_resolutions, admin_audit, admin_idempotency, sweep_requests TO zl_admin;
GRANT USAGE ON SEQUENCE admin_audit_id_seq, sweep_requests_id_seq TO zl_admin;

-- zl-audit (tools/zl-audit.c): reads the ledger against the rows.
GRANT SELECT ON deposits, ledger_entries, ledger_accounts TO zl_audit;

-- zl-address (tools/zl-address.c): registers and lists deposit addresses.
GRANT SELECT, INSERT ON deposit_addresses TO zl_address;
GRANT UPDATE (user_id, seq, scan_from_block) ON deposit_addresses TO zl_address;
-- a new seq for a re-registration, and the cursor its default lookback counts back from (008)
GRANT USAGE ON SEQUENCE deposit_addresses_seq_seq TO zl_address;
GRANT SELECT ON detector_cursor TO zl_address;
