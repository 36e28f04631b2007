-- 014: orphaned pins (issue 21). A deposit that ends `reorged`, or `dead`
-- with its dead letter resolved by an operator, after ipfs-upload pinned its
-- metadata, holds those pins for nothing: no NFT will ever point at them.
-- ipfs-upload's unpin pass (common/unpin.c) removes them from every provider
-- after ZL_UNPIN_GRACE_MS and records it here, on the row, so it happens
-- once, survives a crash (an unpin run twice finds "not pinned": harmless)
-- and shows in the admin API's deposit view with the rest of the row.
--
--   unpinned_at     when every provider confirmed the metadata CID gone;
--                   NULL: still held (or never pinned)
--   unpin_error     the last failed attempt's reason; NULL after success
--   unpin_tried_at  the last attempt: failed rows go to the back of the queue
--   unpin_attempts  attempts so far (1 after a first-time success)
--
-- Images are never unpinned: every deposit's document points at the same
-- few (003's ipfs_images).
ALTER TABLE deposits ADD COLUMN unpinned_at timestamptz, ADD COLUMN unpin_error text,
    ADD COLUMN unpin_tried_at timestamptz, ADD COLUMN unpin_attempts integer NOT NULL DEFAULT 0;

-- The pass's and the zl_ipfs_orphaned_pins gauge's question: terminal rows
-- with metadata still pinned. Few rows, so a small partial index.
CREATE INDEX deposits_pins_held ON deposits (updated_at)
    WHERE metadata_cid IS NOT NULL AND unpinned_at IS NULL AND state IN ('reorged', 'dead');

-- A row whose pins were removed may still come back: detect (or zlctl
-- claim) re-includes a `reorged` deposit whose transfer is back on the chain
-- (det_insert sets it `detected`), and an operator may requeue, or zl-replay
-- replay, a dead letter even after resolving it. Its metadata_cid then names
-- content no provider holds, and a mint would point an NFT at it. So when
-- such a row leaves dead/reorged, whoever moves it, this trigger forgets the
-- stale CID and URI and sends a row that would resume at `pinned` back to
-- `verified`: ipfs-upload pins the (identical) document again before any mint
-- sees it. A row past pinned is never unpinned (the pass's rule), so one
-- coming back there is a broken invariant: refused, never papered over.
CREATE FUNCTION deposits_unpinned_leaves_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IN ('mint_submitted', 'minted', 'credited') THEN
        RAISE EXCEPTION 'deposit %: its metadata pins were removed at %, it cannot resume at %',
            NEW.deposit_id, OLD.unpinned_at, NEW.state
            USING HINT = 'requeue it to verified (ipfs-upload pins it again), see docs/operations.md "Orphaned pins"';
    END IF;
    NEW.metadata_cid := NULL;
    NEW.token_uri := NULL;
    NEW.unpinned_at := NULL;
    NEW.unpin_error := NULL;
    NEW.unpin_tried_at := NULL;
    NEW.unpin_attempts := 0;
    IF NEW.state = 'pinned' THEN
        NEW.state := 'verified';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER deposits_unpinned_leaves BEFORE UPDATE OF state ON deposits
    FOR EACH ROW
    WHEN (OLD.unpinned_at IS NOT NULL AND OLD.state IN ('dead', 'reorged') AND NEW.state NOT IN ('dead', 'reorged'))
    EXECUTE FUNCTION deposits_unpinned_leaves_trg();

-- ipfs-upload runs the pass (workers/ipfs-upload/unpin.c): it reads which
-- dead letters were resolved and whether a mint transaction names the
-- deposit, and writes only its own bookkeeping columns (009 style). 004 may
-- be held back (the mint stage's migration test): signer_txs is granted
-- when present, as 009 does.
GRANT UPDATE (unpinned_at, unpin_error, unpin_tried_at, unpin_attempts) ON deposits TO zl_ipfs_upload;
GRANT SELECT ON dead_resolutions TO zl_ipfs_upload;
DO $$
BEGIN
    IF to_regclass('signer_txs') IS NOT NULL THEN
        GRANT SELECT ON signer_txs TO zl_ipfs_upload;
    END IF;
END $$;
