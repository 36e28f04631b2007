/* ledger.h: the eggs ledger (schemas/sql/005_credit.sql): exact amounts,
 * credit ids, and the double-entry write the credit stage makes inside the
 * runtime's compare-and-set transaction.
 *
 * Amounts are decimal strings and every computation is exact integer
 * arithmetic on digits: eggs = floor(amount * rate / 10^decimals), never a
 * double. The database checks the same rule on every entry
 * (ledger_entries_rounding), so C and SQL must agree or nothing is written.
 *
 * A credit is two entries that sum to zero: +eggs on 'user:<user_id>'
 * (kind user_credit) and -eggs on 'system:<token>' (kind system_debit), at
 * most one of each kind per deposit. Entry ids are name-based UUIDs
 * (libuuid, SHA-1, version 5) of the deposit id, so every copy of the stage
 * that handles a deposit names the same credit_id: a copy that loses the
 * compare-and-set race still publishes the id that was written.
 *
 * @locality pure functions: any thread. Functions taking a zl_pg: the thread
 * that owns it.
 */
#ifndef ZL_LEDGER_H
#define ZL_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg.h"
#include "zl.h"

/* Largest token decimals accepted: a uint256 has 78 digits, so 10^77 is the
 * largest power of ten below 2^256 (ERC-20's decimals is a uint8, but more
 * than 77 would make every amount round to zero eggs). */
#define ZL_TOKEN_DECIMALS_MAX 77

/* Bytes of a decimal uint256 string with its NUL (78 digits + 1). */
#define ZL_UINT256_DEC_SIZE 80

/* Bytes of a credit or entry id with its NUL (lowercase UUID 8-4-4-4-12). */
#define ZL_LEDGER_ID_SIZE 37

/* Writes floor(amount * rate / 10^decimals) into eggs as a canonical decimal
 * string. amount is a canonical decimal uint256 (zl_valid_uint256_dec), rate
 * a normalized rate (zl_rate_normalize in rates.h: "12", "0.005"), decimals
 * 0..ZL_TOKEN_DECIMALS_MAX. Rounding is toward zero, which for these
 * non-negative values is floor: a fraction of an egg is never credited.
 * Returns 0, or -1 with errstr when an input is malformed or the result does
 * not fit in a uint256 (eggs is then ""). eggs_size must be at least
 * ZL_UINT256_DEC_SIZE. */
int zl_ledger_eggs(const char *amount, const char *rate, int decimals, char *eggs, size_t eggs_size, char *errstr,
                   size_t errstr_size);

/* The ids of a deposit's two entries: credit_id (the user_credit entry, and
 * the id published as credit_id) and contra_id (the system_debit entry).
 * Deterministic: the same deposit id always gives the same pair. Both
 * buffers are ZL_LEDGER_ID_SIZE bytes. */
void zl_ledger_entry_ids(const char *deposit_id, char credit_id[ZL_LEDGER_ID_SIZE],
                         char contra_id[ZL_LEDGER_ID_SIZE]);

/* One credit to write. Every string is borrowed for the call. */
struct zl_ledger_credit {
    const char *deposit_id; /* its state row must exist (the CAS just moved it) */
    const char *amount;     /* the event's amount: must equal the row's */
    const char *eggs;       /* from zl_ledger_eggs */
    const char *rate;       /* normalized rate used */
    const char *source;     /* zl_rate_source_name(): "db", "http", ... */
    const char *credit_id;  /* from zl_ledger_entry_ids */
    const char *contra_id;
    int decimals;           /* the token's decimals the eggs were computed with */
};

/* Registers the ledger's statements on p (see pg.h). Returns -1 when p has
 * no room for them. */
int zl_ledger_prepare(struct zl_pg *p);

/* Writes credits c[0..n) in one statement, inside the caller's open
 * transaction: both entries of each, the account balances (created on first
 * use) and the state rows' credit_id and credit_eggs. The user, token and
 * amount come from the state row; a row whose amount differs from the
 * credit's, a missing row, an entry already present, a rounding mismatch or
 * a balance that would break its CHECK fails the whole call.
 * Returns ZL_OK, ZL_OUTAGE (connection lost), ZL_TRANSIENT (deadlock,
 * serialization, out of memory) or ZL_PERMANENT with errstr naming what was
 * refused; on failure the caller rolls back. */
zl_class zl_ledger_apply(struct zl_pg *p, const struct zl_ledger_credit *c, size_t n, char *errstr,
                         size_t errstr_size);

/* ---- token decimals recorded from the chain (token_decimals) ----
 * detect reads decimals() of its token from the chain at start and records
 * it; the credit stage computes eggs with its configured decimals and checks
 * that value against this record, so a wrong setting cannot credit. */

/* Bytes of a token address with its NUL ("0x" + 40 hex digits + 1). */
#define ZL_LEDGER_TOKEN_SIZE 43

/* A token whose decimals on the chain differ from the configured value. */
struct zl_ledger_decimals {
    uint64_t chain_id;
    char token[ZL_LEDGER_TOKEN_SIZE];
    int decimals; /* as read from the chain */
};

/* Registers the decimals statements on p (separately from
 * zl_ledger_prepare, so a short-lived start-up connection can use them).
 * Returns -1 when p has no room for them. */
int zl_ledger_decimals_prepare(struct zl_pg *p);

/* The decimals recorded for (chain_id, token). Returns ZL_OK with *recorded
 * false when detect has not recorded them (yet), or true and *decimals set;
 * or the class of a database failure with errstr (ZL_OUTAGE also for a
 * stored value outside the table's CHECK: a person must look). */
zl_class zl_ledger_decimals_of(struct zl_pg *p, uint64_t chain_id, const char *token, bool *recorded, int *decimals,
                               char *errstr, size_t errstr_size);

/* The first recorded token (by chain id, then address) whose decimals are
 * not `configured`, among every token (token NULL) or that one (lower-case
 * address, on any chain). Returns ZL_OK with *found and, when found, *out
 * set; or the class of a database failure with errstr. */
zl_class zl_ledger_decimals_other(struct zl_pg *p, const char *token, int configured, bool *found,
                                  struct zl_ledger_decimals *out, char *errstr, size_t errstr_size);

/* Reads back the credit of a deposit already credited, for re-publishing:
 * its credit_id, eggs and rate as stored on the user_credit entry (each
 * buffer at least ZL_UINT256_DEC_SIZE bytes; rate at least 48). Returns
 * ZL_OK, ZL_PERMANENT when the deposit has no user_credit entry (a credited
 * row without a ledger entry: an audit discrepancy), or the class of a
 * database failure. */
zl_class zl_ledger_read_credit(struct zl_pg *p, const char *deposit_id, char *credit_id, size_t credit_id_size,
                               char *eggs, size_t eggs_size, char *rate, size_t rate_size, char *errstr,
                               size_t errstr_size);

#endif /* ZL_LEDGER_H */
