/* ledger.c: exact eggs arithmetic and the double-entry write (ledger.h). */
#include "ledger.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "envelope.h"

/* Digits of a uint256 (2^256 - 1 has 78). */
#define LEDGER_AMOUNT_DIGITS_MAX 78
/* Characters of a rate, as zl_valid_rate bounds it (the event's buffer). */
#define LEDGER_RATE_CHARS_MAX 47
/* Digits a product can have: amount digits + rate digits. */
#define LEDGER_PRODUCT_DIGITS_MAX (LEDGER_AMOUNT_DIGITS_MAX + LEDGER_RATE_CHARS_MAX)

/* Namespace of the name-based entry ids: a constant chosen once for
 * zeroloss, so the same deposit always maps to the same ids and no other
 * system's name-based UUIDs collide with ours. Never change it: ids already
 * in ledgers would stop matching. */
static const char ENTRY_ID_NAMESPACE[] = "6f1c2d0e-7a43-4b8e-9c55-2d1e0f3a9b71";

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int zl_ledger_eggs(const char *amount, const char *rate, int decimals, char *eggs, size_t eggs_size, char *errstr,
                   size_t errstr_size)
{
    ZL_ASSERT(eggs != NULL && eggs_size >= ZL_UINT256_DEC_SIZE);
    eggs[0] = '\0';
    if (amount == NULL || !zl_valid_uint256_dec(amount)) {
        snprintf(errstr, errstr_size, "eggs: amount \"%s\" is not a decimal uint256", amount ? amount : "(null)");
        return -1;
    }
    if (decimals < 0 || decimals > ZL_TOKEN_DECIMALS_MAX) {
        snprintf(errstr, errstr_size, "eggs: token decimals %d is outside 0..%d", decimals, ZL_TOKEN_DECIMALS_MAX);
        return -1;
    }
    size_t rlen = rate == NULL ? 0 : strlen(rate);
    if (rlen == 0 || rlen > LEDGER_RATE_CHARS_MAX || !zl_valid_rate(rate)) {
        snprintf(errstr, errstr_size, "eggs: rate \"%s\" is not a decimal rate", rate ? rate : "(null)");
        return -1;
    }
    /* The rate as an integer r and a scale f: rate = r / 10^f. */
    uint8_t r[LEDGER_RATE_CHARS_MAX];
    size_t rn = 0, frac = 0;
    bool after_dot = false;
    for (size_t i = 0; i < rlen; i++) {
        if (rate[i] == '.') {
            after_dot = true;
            continue;
        }
        r[rn++] = (uint8_t)(rate[i] - '0');
        if (after_dot)
            frac++;
    }
    size_t an = strlen(amount);
    ZL_ASSERT(an <= LEDGER_AMOUNT_DIGITS_MAX && all_digits(amount, an));

    /* Schoolbook product, least significant digit first. */
    uint32_t prod[LEDGER_PRODUCT_DIGITS_MAX + 1];
    memset(prod, 0, sizeof(prod));
    for (size_t i = 0; i < an; i++) {
        uint32_t a = (uint32_t)(amount[an - 1 - i] - '0');
        if (a == 0)
            continue;
        for (size_t j = 0; j < rn; j++)
            prod[i + j] += a * r[rn - 1 - j];
    }
    size_t pn = an + rn + 1;
    ZL_ASSERT(pn <= LEDGER_PRODUCT_DIGITS_MAX + 1);
    uint32_t carry = 0;
    for (size_t k = 0; k < pn; k++) {
        uint32_t v = prod[k] + carry;
        prod[k] = v % 10;
        carry = v / 10;
    }
    ZL_ASSERT(carry == 0);

    /* Dividing by 10^(decimals + f) and truncating drops that many of the
     * lowest digits: floor for a non-negative value. */
    size_t drop = (size_t)decimals + frac;
    size_t top = pn; /* one past the most significant non-zero digit */
    while (top > 0 && prod[top - 1] == 0)
        top--;
    if (top <= drop) {
        memcpy(eggs, "0", 2);
        return 0;
    }
    size_t en = top - drop;
    if (en > LEDGER_AMOUNT_DIGITS_MAX) {
        snprintf(errstr, errstr_size, "eggs: %s * %s / 10^%d has %zu digits: more than a uint256 holds", amount,
                 rate, decimals, en);
        return -1;
    }
    for (size_t k = 0; k < en; k++)
        eggs[k] = (char)('0' + prod[top - 1 - k]);
    eggs[en] = '\0';
    if (!zl_valid_uint256_dec(eggs)) {
        snprintf(errstr, errstr_size, "eggs: %s * %s / 10^%d is 2^256 or more", amount, rate, decimals);
        eggs[0] = '\0';
        return -1;
    }
    return 0;
}

static void name_uuid(const char *prefix, const char *deposit_id, char out[ZL_LEDGER_ID_SIZE])
{
    uuid_t ns, id;
    int rc = uuid_parse(ENTRY_ID_NAMESPACE, ns);
    ZL_ASSERT(rc == 0);
    char name[256];
    int len = snprintf(name, sizeof(name), "%s:%s", prefix, deposit_id);
    ZL_ASSERT(len > 0 && (size_t)len < sizeof(name)); /* deposit ids are < 160 bytes */
    uuid_generate_sha1(id, ns, name, (size_t)len);
    uuid_unparse_lower(id, out);
}

void zl_ledger_entry_ids(const char *deposit_id, char credit_id[ZL_LEDGER_ID_SIZE],
                         char contra_id[ZL_LEDGER_ID_SIZE])
{
    name_uuid("zeroloss-credit", deposit_id, credit_id);
    name_uuid("zeroloss-contra", deposit_id, contra_id);
}

/* One statement for a whole batch, so the ledger costs one round trip:
 *  i    the credits joined with their state rows (user, token and amount
 *       come from the row; a credit whose amount differs is left out, and
 *       the count check below then fails the call);
 *  acc  balances: one upsert per account, credits of the batch summed
 *       first (an upsert may not touch a row twice), in account order so
 *       concurrent copies lock accounts in the same order and cannot
 *       deadlock on them;
 *  ent  both entries of every credit;
 *  upd  the state rows' credit_id and credit_eggs.
 * The foreign keys from entries to accounts are checked at the end of the
 * statement, when the accounts inserted by acc exist. */
static const char SQL_APPLY[] =
    "WITH i AS ("
    "  SELECT t.deposit_id, t.eggs, t.rate, t.source, t.credit_id, t.contra_id, t.decimals,"
    "         d.user_id, CASE WHEN d.chain_id IS NULL THEN d.token ELSE lower(d.token) END AS token, d.amount"
    "  FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::text[], $6::uuid[], $7::uuid[],"
    "              $8::int[])"
    "       AS t(deposit_id, amount, eggs, rate, source, credit_id, contra_id, decimals)"
    "  JOIN deposits d ON d.deposit_id = t.deposit_id AND d.amount = t.amount"
    "), acc AS ("
    "  INSERT INTO ledger_accounts AS a (account_id, kind, owner, balance)"
    "  SELECT account_id, kind, owner, delta FROM ("
    "    SELECT 'user:' || user_id AS account_id, 'user' AS kind, user_id AS owner, sum(eggs) AS delta"
    "      FROM i GROUP BY user_id"
    "    UNION ALL"
    "    SELECT 'system:' || token, 'system', token, -sum(eggs) FROM i GROUP BY token"
    "  ) x ORDER BY account_id"
    "  ON CONFLICT (account_id) DO UPDATE SET balance = a.balance + EXCLUDED.balance, updated_at = now()"
    "  RETURNING 1"
    "), ent AS ("
    "  INSERT INTO ledger_entries (entry_id, credit_id, deposit_id, kind, account_id, amount, token_amount,"
    "                              token_decimals, rate, rate_source)"
    "  SELECT credit_id, credit_id, deposit_id, 'user_credit', 'user:' || user_id, eggs, amount, decimals,"
    "         rate, source FROM i"
    "  UNION ALL"
    "  SELECT contra_id, credit_id, deposit_id, 'system_debit', 'system:' || token, -eggs, amount, decimals,"
    "         rate, source FROM i"
    "  RETURNING 1"
    "), upd AS ("
    "  UPDATE deposits d SET credit_id = i.credit_id, credit_eggs = i.eggs, updated_at = now()"
    "  FROM i WHERE d.deposit_id = i.deposit_id"
    "  RETURNING 1"
    ")"
    " SELECT (SELECT count(*) FROM ent), (SELECT count(*) FROM upd), (SELECT count(*) FROM acc)";

static const char SQL_READ_CREDIT[] =
    "SELECT credit_id::text, amount::text, rate::text FROM ledger_entries"
    " WHERE deposit_id = $1 AND kind = 'user_credit'";

int zl_ledger_prepare(struct zl_pg *p)
{
    if (zl_pg_add_stmt(p, "zl_ledger_apply", SQL_APPLY, 8) != 0 ||
        zl_pg_add_stmt(p, "zl_ledger_read_credit", SQL_READ_CREDIT, 1) != 0)
        return -1;
    return 0;
}

/* Columns of the apply statement, in parameter order ($1..$8). */
enum { COL_ID, COL_AMOUNT, COL_EGGS, COL_RATE, COL_SOURCE, COL_CREDIT, COL_CONTRA, COL_DECIMALS, COLS_N };

zl_class zl_ledger_apply(struct zl_pg *p, const struct zl_ledger_credit *c, size_t n, char *errstr,
                         size_t errstr_size)
{
    if (n == 0)
        return ZL_OK;
    zl_class cls = ZL_TRANSIENT;
    const char **cols[COLS_N] = {NULL};
    char *arrs[COLS_N] = {NULL};
    char(*dec)[ZL_INT64_DEC_SIZE] = calloc(n, sizeof(*dec));
    bool oom = dec == NULL;
    for (int k = 0; k < COLS_N; k++) {
        cols[k] = calloc(n, sizeof(char *));
        oom = oom || cols[k] == NULL;
    }
    for (size_t i = 0; !oom && i < n; i++) {
        /* Both sides of the boundary: only well-formed values are sent. */
        ZL_ASSERT(zl_valid_uint256_dec(c[i].amount) && zl_valid_uint256_dec(c[i].eggs) &&
                  zl_valid_rate(c[i].rate) && zl_valid_uuid(c[i].credit_id) && zl_valid_uuid(c[i].contra_id) &&
                  c[i].decimals >= 0 && c[i].decimals <= ZL_TOKEN_DECIMALS_MAX);
        cols[COL_ID][i] = c[i].deposit_id;
        cols[COL_AMOUNT][i] = c[i].amount;
        cols[COL_EGGS][i] = c[i].eggs;
        cols[COL_RATE][i] = c[i].rate;
        cols[COL_SOURCE][i] = c[i].source;
        cols[COL_CREDIT][i] = c[i].credit_id;
        cols[COL_CONTRA][i] = c[i].contra_id;
        snprintf(dec[i], sizeof(dec[i]), "%d", c[i].decimals);
        cols[COL_DECIMALS][i] = dec[i];
    }
    for (int k = 0; !oom && k < COLS_N; k++) {
        arrs[k] = zl_pg_array_literal(cols[k], n);
        oom = arrs[k] == NULL;
    }
    if (oom) {
        snprintf(errstr, errstr_size, "ledger: out of memory building a batch of %zu credits", n);
        goto out;
    }
    const char *params[8] = {arrs[0], arrs[1], arrs[2], arrs[3], arrs[4], arrs[5], arrs[6], arrs[7]};
    char perr[ZL_ERRSTR_SIZE];
    PGresult *r = zl_pg_prepared(p, "zl_ledger_apply", 8, params, PGRES_TUPLES_OK, &cls, perr, sizeof(perr));
    if (r == NULL) {
        snprintf(errstr, errstr_size, "ledger write refused: %s", perr);
        goto out;
    }
    long entries = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    long rows = strtol(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (entries != (long)(2 * n) || rows != (long)n) {
        /* Rolled back by the caller: nothing of this batch is written. */
        snprintf(errstr, errstr_size,
                 "ledger write: %ld entries and %ld state rows for %zu credits: a state row is missing or its "
                 "amount differs from the event's",
                 entries, rows, n);
        cls = ZL_PERMANENT;
        goto out;
    }
    cls = ZL_OK;
out:
    for (int k = 0; k < COLS_N; k++) {
        free(cols[k]);
        free(arrs[k]);
    }
    free(dec);
    return cls;
}

zl_class zl_ledger_read_credit(struct zl_pg *p, const char *deposit_id, char *credit_id, size_t credit_id_size,
                               char *eggs, size_t eggs_size, char *rate, size_t rate_size, char *errstr,
                               size_t errstr_size)
{
    const char *params[1] = {deposit_id};
    zl_class cls;
    PGresult *r = zl_pg_prepared(p, "zl_ledger_read_credit", 1, params, PGRES_TUPLES_OK, &cls, errstr, errstr_size);
    if (r == NULL)
        return cls;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(errstr, errstr_size,
                 "deposit %s is credited but has no user_credit ledger entry: run zl-audit and repair by hand",
                 deposit_id);
        return ZL_PERMANENT;
    }
    int bad = zl_pg_copy_value(credit_id, credit_id_size, r, 0, 0) | zl_pg_copy_value(eggs, eggs_size, r, 0, 1) |
              zl_pg_copy_value(rate, rate_size, r, 0, 2);
    PQclear(r);
    if (bad != 0 || !zl_valid_uuid(credit_id) || !zl_valid_uint256_dec(eggs) || !zl_valid_rate(rate)) {
        snprintf(errstr, errstr_size, "deposit %s: stored ledger entry is malformed (credit id, eggs or rate)",
                 deposit_id);
        return ZL_PERMANENT;
    }
    return ZL_OK;
}

/* ---- token decimals recorded from the chain ---- */

static const char SQL_DECIMALS_OF[] = "SELECT decimals FROM token_decimals WHERE chain_id = $1 AND token = $2";

static const char SQL_DECIMALS_OTHER[] = "SELECT chain_id::text, token, decimals FROM token_decimals"
                                         " WHERE decimals <> $1 AND ($2::text IS NULL OR token = $2)"
                                         " ORDER BY chain_id, token LIMIT 1";

int zl_ledger_decimals_prepare(struct zl_pg *p)
{
    if (zl_pg_add_stmt(p, "zl_ledger_decimals_of", SQL_DECIMALS_OF, 2) != 0 ||
        zl_pg_add_stmt(p, "zl_ledger_decimals_other", SQL_DECIMALS_OTHER, 2) != 0)
        return -1;
    return 0;
}

zl_class zl_ledger_decimals_of(struct zl_pg *p, uint64_t chain_id, const char *token, bool *recorded, int *decimals,
                               char *errstr, size_t errstr_size)
{
    char chain[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%llu", (unsigned long long)chain_id);
    const char *params[2] = {chain, token};
    zl_class c;
    PGresult *res = zl_pg_prepared(p, "zl_ledger_decimals_of", 2, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (res == NULL)
        return c;
    *recorded = PQntuples(res) > 0;
    long long v = 0;
    if (*recorded && zl_pg_int_value(res, 0, 0, 0, 255 /* the table's CHECK */, &v, errstr, errstr_size) != 0) {
        PQclear(res);
        return ZL_OUTAGE; /* the table holds what its CHECK forbids: a person must look, no deposit is at fault */
    }
    *decimals = (int)v;
    PQclear(res);
    return ZL_OK;
}

zl_class zl_ledger_decimals_other(struct zl_pg *p, const char *token, int configured, bool *found,
                                  struct zl_ledger_decimals *out, char *errstr, size_t errstr_size)
{
    char dec[ZL_INT64_DEC_SIZE];
    snprintf(dec, sizeof(dec), "%d", configured);
    const char *params[2] = {dec, token};
    zl_class c;
    PGresult *res = zl_pg_prepared(p, "zl_ledger_decimals_other", 2, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (res == NULL)
        return c;
    *found = PQntuples(res) > 0;
    long long chain = 0, d = 0;
    if (*found && (zl_pg_int_value(res, 0, 0, 1, INT64_MAX, &chain, errstr, errstr_size) != 0 ||
                   zl_pg_int_value(res, 0, 2, 0, 255 /* the table's CHECK */, &d, errstr, errstr_size) != 0)) {
        PQclear(res);
        return ZL_OUTAGE; /* as above: the table holds what its CHECKs forbid */
    }
    if (*found) {
        out->chain_id = (uint64_t)chain;
        zl_pg_copy_value(out->token, sizeof(out->token), res, 0, 1);
        out->decimals = (int)d;
    }
    PQclear(res);
    return ZL_OK;
}
