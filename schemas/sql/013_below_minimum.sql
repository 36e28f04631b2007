-- 013: below-minimum deposits (issue 21).
--
-- A transfer under its token's minimum (ZL_TOKENS SYMBOL:ADDR:DEC:MIN, or
-- ZL_MIN_AMOUNT) is expected and frequent: dust, and spam sent to public
-- addresses. It used to be refused as permanent and dead-lettered, where an
-- operator had to look at every one. verify now settles it in its own
-- terminal side state, `below_minimum` (rank 0, like `reorged`): recorded,
-- counted and listed (zlctl below-minimum), never dead-lettered, never
-- lost. An operator may credit one later (zlctl credit-below-minimum): the
-- waiver below is recorded on the row, the row goes back to `detected`, and
-- verify then judges it without the minimum (docs/operations.md,
-- "Below-minimum deposits").

-- 001 named its column CHECK deposits_state_check; re-created with the new
-- state (dropped first, so running this file again changes nothing).
ALTER TABLE deposits DROP CONSTRAINT IF EXISTS deposits_state_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_state_check CHECK (state IN
    ('detected','verified','pinned','mint_submitted','minted','credited','reorged','dead','below_minimum'));

-- The operator's waiver of the minimum for this one deposit: who (the admin
-- API's actor: X-Actor, token fingerprint, peer) and when. The reason is in
-- admin_audit. NULL: the minimum applies.
ALTER TABLE deposits ADD COLUMN IF NOT EXISTS min_waived_by text,
                     ADD COLUMN IF NOT EXISTS min_waived_at timestamptz;

-- zl-admin (common/admin_dust.c) records the waiver; the state change back
-- to `detected` is covered by its grant in 009.
GRANT UPDATE (min_waived_by, min_waived_at) ON deposits TO zl_admin;
