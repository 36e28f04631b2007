-- 011: reorgs past finality (issue 18).
--
-- A deposit past `detected` (verified, pinned, submitted, minted, credited,
-- or dead) whose block leaves the canonical chain keeps its state: moving it
-- back would hide a mint and a credit that already happened, and re-running
-- them would pay twice. detect marks it instead, once, with the state it had
-- when the chain took its block back and when it saw that
-- (common/detector.c, handle_reorg). What to do about it is an operator's
-- decision (docs/operations.md, "detect-reorg-past-finality"): a ledger
-- reversal is never automatic.
ALTER TABLE deposits ADD COLUMN reorged_after text, ADD COLUMN reorged_at timestamptz;

-- The runbook's and the alert's question: which marked rows are there.
CREATE INDEX deposits_reorged_after ON deposits (reorged_at) WHERE reorged_after IS NOT NULL;

GRANT UPDATE (reorged_after, reorged_at) ON deposits TO zl_detect;
