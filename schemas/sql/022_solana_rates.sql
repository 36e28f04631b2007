-- 022: a credit rate may be keyed by a Solana mint (issue 22): base58, kept
-- in its case (common/rates.c), beside the lower-case EVM addresses.
ALTER TABLE credit_rates DROP CONSTRAINT credit_rates_token_check;
ALTER TABLE credit_rates ADD CONSTRAINT credit_rates_token_check
    CHECK (token ~ '^0x[0-9a-f]{40}$' OR token ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$');
