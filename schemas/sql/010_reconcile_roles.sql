-- 010: grants for the backstops behind detect (issue 18, common/reconcile.c).
--
-- zl-admin's POST /admin/claims (zlctl claim) records a deposit detect
-- missed through detect's own insert-if-absent statement
-- (zl_detect_insert_sql): it inserts the row, joins the registered
-- addresses, and may re-include a `reorged` row with its new block facts.
GRANT SELECT ON deposit_addresses TO zl_admin;
GRANT INSERT ON deposits TO zl_admin;
GRANT UPDATE (block_number, block_hash) ON deposits TO zl_admin;

-- zl-audit --chain keeps the transfers to registered addresses.
GRANT SELECT ON deposit_addresses TO zl_audit;
