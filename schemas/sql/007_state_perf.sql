-- 007: cheaper per-row work on the state table's hot path, measured by the
-- runtime pass-through benchmark (bench/results/2026-11-23.md): the CAS
-- UPDATE of a 500-row batch spent most of its time re-checking two regexes,
-- firing a row-level history trigger, and checking the history table's
-- foreign key for every history row.

-- Same set of accepted values, ~7x cheaper than '^0x[0-9a-f]{64}$'.
ALTER TABLE deposits DROP CONSTRAINT deposits_tx_hash_check;
ALTER TABLE deposits DROP CONSTRAINT deposits_block_hash_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_tx_hash_check
    CHECK (length(tx_hash) = 66 AND tx_hash ~ '^0x[0-9a-f]+$');
ALTER TABLE deposits ADD CONSTRAINT deposits_block_hash_check
    CHECK (length(block_hash) = 66 AND block_hash ~ '^0x[0-9a-f]+$');

-- Only the trigger below writes deposit_history, always for a row it was
-- fired by, so the foreign key proves nothing and costs a lookup per row.
ALTER TABLE deposit_history DROP CONSTRAINT deposit_history_deposit_id_fkey;

-- One INSERT ... SELECT per statement instead of one per row.
DROP TRIGGER deposits_history ON deposits;
DROP FUNCTION deposits_history_trg();

CREATE FUNCTION deposits_history_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deposit_history (deposit_id, from_state, to_state)
    SELECT n.deposit_id, NULL, n.state FROM new_rows n;
    RETURN NULL;
END $$;

CREATE FUNCTION deposits_history_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deposit_history (deposit_id, from_state, to_state, error_class, error)
    SELECT n.deposit_id, o.state, n.state, n.last_error_class, n.last_error
      FROM new_rows n JOIN old_rows o USING (deposit_id)
     WHERE n.state IS DISTINCT FROM o.state;
    RETURN NULL;
END $$;

CREATE TRIGGER deposits_history_ins AFTER INSERT ON deposits
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deposits_history_ins();
CREATE TRIGGER deposits_history_upd AFTER UPDATE ON deposits
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deposits_history_upd();
