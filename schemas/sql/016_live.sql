-- 016: live updates (issue 21, common/live.c). The live server streams each
-- user's deposit_history rows as Server-Sent Events, read by one poller per
-- server, and resumes a reconnecting client after the last event it saw.
--
-- The gap problem: deposit_history.id is a bigserial, handed out when a row
-- is inserted, not when its transaction commits. Two stage transactions can
-- commit in the other order (id 41 in a transaction that commits after the
-- one holding id 42), so a reader polling "id > last" would see 42, move its
-- cursor past 41, and never send 41. A client resuming "after 42" would miss
-- it the same way.
--
-- The answer: each history row records the transaction that wrote it (tx).
-- A reader sends only rows whose tx is below the xmin of its own snapshot
-- (pg_snapshot_xmin(pg_current_snapshot())): every transaction below xmin
-- has finished, so no row with such a tx can still appear. Rows are sent in
-- (tx, id) order; the set sent so far is then always a prefix of that order,
-- and resuming after event id X means "every row of the user after
-- (tx of X, X)": nothing missed, nothing twice (docs/architecture.md, "Live
-- updates").

-- Added without a default first, so existing rows are not rewritten by a
-- volatile default; they are set to 0 (before every live transaction) once.
ALTER TABLE deposit_history ADD COLUMN IF NOT EXISTS tx xid8;
UPDATE deposit_history SET tx = '0'::xid8 WHERE tx IS NULL;
-- The history trigger (007, SECURITY DEFINER) inserts without naming tx, so
-- the default fills it with the top-level transaction of the state change.
ALTER TABLE deposit_history ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
ALTER TABLE deposit_history ALTER COLUMN tx SET NOT NULL;

-- The poller reads new history by (tx, id); a client's catch-up reads its
-- user's deposits, then their history (deposit_history_deposit, 001).
CREATE INDEX IF NOT EXISTS deposit_history_tx ON deposit_history (tx, id);
CREATE INDEX IF NOT EXISTS deposits_user ON deposits (user_id);

-- The live server reads as zl_notify (shared with the notify stage, 015, by
-- name): roles are cluster-wide, so it is created here too when absent, and
-- a role another database's migration just created is not an error (009).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zl_notify') THEN
        BEGIN
            CREATE ROLE zl_notify NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by another database's migration
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO zl_notify', current_schema());
END $$;

-- What an event shows, and nothing else of the row (no DLQ bookkeeping, no
-- errors of other columns): the history and the deposit's identity.
GRANT SELECT (id, tx, deposit_id, from_state, to_state, at) ON deposit_history TO zl_notify;
GRANT SELECT (deposit_id, user_id, chain_id, tx_hash, token, amount) ON deposits TO zl_notify;
