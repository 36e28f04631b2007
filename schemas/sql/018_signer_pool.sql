-- 018: a pool of signer keys, each leased by one mint copy at a time
-- (issue 19, common/signer_pool.h).
--
-- Copies of the mint stage that share one key queue on its signer_nonces row
-- (004), so a second copy added nothing. With a pool, every copy leases a key
-- of its own here and signs only with it: copies scale with keys.
--
-- A lease is a row per signer: who holds it and until when (the database's
-- clock). The holder renews it by a heartbeat; a copy that cannot renew
-- stops using the key before expires_at (it exits and restarts), and any
-- copy may take a key whose lease has expired. The nonce rows are per
-- signer, so the next holder continues the last one's stored transactions.
CREATE TABLE IF NOT EXISTS signer_leases (
    signer      text        PRIMARY KEY CHECK (signer ~ '^0x[0-9a-f]{40}$'),
    holder      text        NOT NULL CHECK (holder <> ''),  -- host/pid/random of the copy
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    renewed_at  timestamptz NOT NULL DEFAULT now(),
    takeovers   bigint      NOT NULL DEFAULT 0              -- times another holder took it over
);

-- Fencing in the database, beside the holder's own clock: a NEW signature
-- at a signer's nonce (a stored transaction, a replacement's bytes, the next
-- nonce) is accepted only from a session that names the lease's live holder
-- in zl.signer_holder (common/signer_pool.c sets it on the mint's
-- connection). A copy whose lease was taken over can then never store
-- anything its successor does not know about; re-sending stored bytes and
-- recording receipts stay free. Signers without a lease row (tools, a
-- database used before 018) are not fenced. The error is a serialization
-- failure (40001): the caller retries, and its lease check stops it.
CREATE OR REPLACE FUNCTION signer_lease_fence() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    l signer_leases%ROWTYPE;
BEGIN
    -- Nested: PL/pgSQL would resolve NEW.raw_tx on signer_nonces too.
    IF TG_OP = 'UPDATE' THEN
        IF TG_TABLE_NAME = 'signer_txs' THEN
            IF NEW.raw_tx IS NOT DISTINCT FROM OLD.raw_tx THEN
                RETURN NEW; -- a receipt or a note: no new signature
            END IF;
        ELSIF NEW.next_nonce = OLD.next_nonce THEN
            RETURN NEW;
        END IF;
    END IF;
    SELECT * INTO l FROM signer_leases WHERE signer = NEW.signer;
    IF NOT FOUND OR l.expires_at <= now() THEN
        RETURN NEW;
    END IF;
    IF l.holder IS DISTINCT FROM current_setting('zl.signer_holder', true) THEN
        RAISE EXCEPTION 'signer % is leased to another mint copy (%): not signing', NEW.signer, l.holder
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$;

-- On 004's tables, when present (as 009 grants them): a database that
-- applies 004 late runs its mint with the shared single key, which no lease
-- fences; apply 018 again (this block) before turning a pool on there.
DO $$
BEGIN
    IF to_regclass('signer_txs') IS NOT NULL AND to_regclass('signer_nonces') IS NOT NULL THEN
        DROP TRIGGER IF EXISTS signer_txs_lease_fence ON signer_txs;
        CREATE TRIGGER signer_txs_lease_fence BEFORE INSERT OR UPDATE ON signer_txs
            FOR EACH ROW EXECUTE FUNCTION signer_lease_fence();
        DROP TRIGGER IF EXISTS signer_nonces_lease_fence ON signer_nonces;
        CREATE TRIGGER signer_nonces_lease_fence BEFORE INSERT OR UPDATE ON signer_nonces
            FOR EACH ROW EXECUTE FUNCTION signer_lease_fence();
    END IF;
END $$;

-- mint (common/signer_pool.c): takes, renews and gives back leases, and
-- reads its signer's pending transactions (004's grants cover those).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zl_mint') THEN
        BEGIN
            CREATE ROLE zl_mint NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by another database's migration
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO zl_mint', current_schema());
END $$;
GRANT SELECT, INSERT, UPDATE ON signer_leases TO zl_mint;
