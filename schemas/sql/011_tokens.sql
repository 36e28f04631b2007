-- 011: the credit stage reads the decimals detect recorded from the chain,
-- to check its ZL_TOKEN_DECIMALS against them (workers/credit/credit_decimals.c).
-- Applied by zl-migrate, in one transaction.
GRANT SELECT ON token_decimals TO zl_credit;
