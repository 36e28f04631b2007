#include "nonce.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The signer_tx_marks row (017) of the signer_txs row in scope. */
#define MARK_OF_ROW                                                                                               \
    " WHERE k.chain_id = signer_txs.chain_id AND k.signer = signer_txs.signer AND k.nonce = signer_txs.nonce"
/* Not a nonce another sender took (017): no longer any deposit's mint. */
#define NOT_TAKEN " AND NOT EXISTS (SELECT 1 FROM signer_tx_marks k" MARK_OF_ROW " AND k.taken)"

#define SLOT_COLS                                                                                                 \
    "nonce, purpose, tx_type, to_addr, gas_limit, max_fee_wei::text, priority_fee_wei::text, raw_tx, tx_hash,"   \
    " array_to_string(hashes, ','), status = 'mined', coalesce(mined_hash, ''), coalesce(block_number, -1),"     \
    " coalesce(receipt_status, -1), (extract(epoch from now() - signed_at) * 1000)::bigint,"                     \
    " coalesce(deposit_ids[1], ''), coalesce((SELECT k.signed_block FROM signer_tx_marks k" MARK_OF_ROW "), -1)"

/* A tx that is still a deposit's mint: a mint, not a mined revert, not a
 * nonce taken by another sender (the rule every look-up below shares). */
#define LIVE_MINT                                                                                                 \
    " AND purpose IN ('mint', 'mint_batch') AND NOT (status = 'mined' AND receipt_status = 0)" NOT_TAKEN

static const char SQL_FIND[] =
    "SELECT " SLOT_COLS " FROM signer_txs WHERE chain_id = $1::bigint AND signer = $2"
    " AND deposit_ids @> ARRAY[$3::text]" LIVE_MINT " ORDER BY nonce DESC LIMIT 1";

static const char SQL_LOCK_DEPOSIT[] = "SELECT state FROM deposits WHERE deposit_id = $1 FOR UPDATE";

static const char SQL_SIGNER_INIT[] = "INSERT INTO signer_nonces (chain_id, signer, next_nonce)"
                                      " VALUES ($1::bigint, $2, $3::bigint) ON CONFLICT DO NOTHING";

static const char SQL_SIGNER_LOCK[] =
    "SELECT next_nonce FROM signer_nonces WHERE chain_id = $1::bigint AND signer = $2 FOR UPDATE";

/* The tx and its mark (017: the head it was signed at) in one statement. */
static const char SQL_INSERT_TX[] =
    "WITH i AS (INSERT INTO signer_txs (chain_id, signer, nonce, purpose, deposit_ids, tx_type, to_addr, gas_limit,"
    " max_fee_wei, priority_fee_wei, raw_tx, tx_hash, hashes)"
    " VALUES ($1::bigint, $2, $3::bigint, $4, $5::text[], $6::smallint, $7, $8::bigint, $9::numeric,"
    " $10::numeric, $11, $12, ARRAY[$12::text]) RETURNING chain_id, signer, nonce)"
    " INSERT INTO signer_tx_marks (chain_id, signer, nonce, signed_block)"
    " SELECT chain_id, signer, nonce, nullif($13::bigint, -1) FROM i"
    " ON CONFLICT (chain_id, signer, nonce) DO UPDATE SET signed_block = EXCLUDED.signed_block, taken = false";

static const char SQL_SIGNER_ADVANCE[] = "UPDATE signer_nonces SET next_nonce = $3::bigint + 1, updated_at = now()"
                                         " WHERE chain_id = $1::bigint AND signer = $2";

static const char SQL_DEPOSIT_SUBMITTED[] =
    "UPDATE deposits SET state = 'mint_submitted', mint_tx_hash = $2, updated_at = now()"
    " WHERE deposit_id = ANY ($1::text[]) AND state IN ('pinned', 'mint_submitted')";

/* Row locks in one order (deposit_id) for every batch: no deadlock. */
static const char SQL_LOCK_DEPOSITS[] =
    "SELECT deposit_id, state FROM deposits WHERE deposit_id = ANY ($1::text[]) ORDER BY deposit_id FOR UPDATE";

/* Which of the deposits already have a live mint (SQL_FIND's rule). */
static const char SQL_LIVE[] =
    "SELECT DISTINCT d FROM signer_txs, unnest(deposit_ids) AS d WHERE chain_id = $1::bigint AND signer = $2"
    " AND deposit_ids && $3::text[]" LIVE_MINT " AND d = ANY ($3::text[])";

/* Each deposit's live mint (SQL_FIND's rule), by nonce: one row per
 * deposit that has one, named by its 1-based place in $3. */
static const char SQL_LIVE_NONCES[] =
    "SELECT DISTINCT ON (i.ord) i.ord, nonce FROM signer_txs, unnest(deposit_ids) AS d,"
    " unnest($3::text[]) WITH ORDINALITY AS i(id, ord) WHERE chain_id = $1::bigint AND signer = $2"
    " AND deposit_ids && $3::text[]" LIVE_MINT " AND d = i.id ORDER BY i.ord, nonce DESC";

static const char SQL_GET[] =
    "SELECT " SLOT_COLS " FROM signer_txs WHERE chain_id = $1::bigint AND signer = $2 AND nonce = $3::bigint";

/* The CAS replacement and its mark's new head in one statement: the
 * command's row count is the replacement's (0 or 1). */
static const char SQL_REPLACE[] =
    "WITH u AS (UPDATE signer_txs SET raw_tx = $5, tx_hash = $6, hashes = hashes || $6::text,"
    " max_fee_wei = $7::numeric, priority_fee_wei = $8::numeric, gas_limit = $9::bigint, to_addr = $10,"
    " purpose = CASE WHEN $11::boolean THEN 'filler' ELSE purpose END,"
    " replaced_from = CASE WHEN $11::boolean THEN array_to_string(deposit_ids, ',') ELSE replaced_from END,"
    " signed_at = now(), updated_at = now()"
    " WHERE chain_id = $1::bigint AND signer = $2 AND nonce = $3::bigint AND tx_hash = $4 AND status = 'pending'"
    " AND cardinality(hashes) < $12::int RETURNING chain_id, signer, nonce)"
    " INSERT INTO signer_tx_marks (chain_id, signer, nonce, signed_block)"
    " SELECT chain_id, signer, nonce, nullif($13::bigint, -1) FROM u"
    " ON CONFLICT (chain_id, signer, nonce) DO UPDATE SET signed_block = EXCLUDED.signed_block";

static const char SQL_MINED[] =
    "UPDATE signer_txs SET status = 'mined', mined_hash = $4, block_number = $5::bigint,"
    " receipt_status = $6::smallint, updated_at = now()"
    " WHERE chain_id = $1::bigint AND signer = $2 AND nonce = $3::bigint AND $4 = ANY (hashes)";

static const char SQL_NOTE[] = "UPDATE signer_txs SET last_error = left($4, 2000), updated_at = now()"
                               " WHERE chain_id = $1::bigint AND signer = $2 AND nonce = $3::bigint";

/* $4 true: fillers only (the janitor's old pass); false: every pending tx
 * from nonce $5 up (the window's gap repair). */
static const char SQL_PENDING[] = "SELECT " SLOT_COLS " FROM signer_txs WHERE chain_id = $1::bigint AND signer = $2"
                                  " AND status = 'pending' AND (NOT $4::boolean OR purpose = 'filler')" NOT_TAKEN
                                  " AND nonce >= $5::bigint ORDER BY nonce LIMIT $3::int";

/* A pending nonce another sender took: noted on the row, marked taken. */
static const char SQL_TAKEN[] =
    "WITH u AS (UPDATE signer_txs SET last_error = left($4, 2000), updated_at = now()"
    " WHERE chain_id = $1::bigint AND signer = $2 AND nonce = $3::bigint AND status = 'pending'"
    " RETURNING chain_id, signer, nonce)"
    " INSERT INTO signer_tx_marks (chain_id, signer, nonce, taken) SELECT chain_id, signer, nonce, true FROM u"
    " ON CONFLICT (chain_id, signer, nonce) DO UPDATE SET taken = true";

void zl_nonce_tx_clear(struct zl_nonce_tx *t)
{
    free(t->raw_hex);
    t->raw_hex = NULL;
}

int zl_nonce_prepare(struct zl_pg *p)
{
    if (zl_pg_add_stmt(p, "nonce_find", SQL_FIND, 3) != 0 || zl_pg_add_stmt(p, "nonce_lock_dep", SQL_LOCK_DEPOSIT, 1) != 0 ||
        zl_pg_add_stmt(p, "nonce_signer_init", SQL_SIGNER_INIT, 3) != 0 ||
        zl_pg_add_stmt(p, "nonce_signer_lock", SQL_SIGNER_LOCK, 2) != 0 ||
        zl_pg_add_stmt(p, "nonce_insert_tx", SQL_INSERT_TX, 13) != 0 ||
        zl_pg_add_stmt(p, "nonce_signer_advance", SQL_SIGNER_ADVANCE, 3) != 0 ||
        zl_pg_add_stmt(p, "nonce_dep_submitted", SQL_DEPOSIT_SUBMITTED, 2) != 0 ||
        zl_pg_add_stmt(p, "nonce_replace", SQL_REPLACE, 13) != 0 || zl_pg_add_stmt(p, "nonce_mined", SQL_MINED, 6) != 0 ||
        zl_pg_add_stmt(p, "nonce_note", SQL_NOTE, 4) != 0 || zl_pg_add_stmt(p, "nonce_pending", SQL_PENDING, 5) != 0 ||
        zl_pg_add_stmt(p, "nonce_taken", SQL_TAKEN, 4) != 0 ||
        zl_pg_add_stmt(p, "nonce_lock_deps", SQL_LOCK_DEPOSITS, 1) != 0 ||
        zl_pg_add_stmt(p, "nonce_live", SQL_LIVE, 3) != 0 ||
        zl_pg_add_stmt(p, "nonce_live_nonces", SQL_LIVE_NONCES, 3) != 0 || zl_pg_add_stmt(p, "nonce_get", SQL_GET, 3) != 0)
        return -1;
    return 0;
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

static int read_slot(const PGresult *r, int row, struct zl_nonce_tx *t)
{
    memset(t, 0, sizeof(*t));
    t->nonce = strtoull(PQgetvalue(r, row, 0), NULL, 10);
    copy(t->purpose, sizeof(t->purpose), PQgetvalue(r, row, 1));
    t->tx_type = (int)strtol(PQgetvalue(r, row, 2), NULL, 10);
    copy(t->to_addr, sizeof(t->to_addr), PQgetvalue(r, row, 3));
    t->gas_limit = strtoull(PQgetvalue(r, row, 4), NULL, 10);
    t->max_fee_wei = strtoull(PQgetvalue(r, row, 5), NULL, 10);
    t->priority_fee_wei = strtoull(PQgetvalue(r, row, 6), NULL, 10);
    t->raw_hex = strdup(PQgetvalue(r, row, 7));
    if (t->raw_hex == NULL)
        return -1;
    copy(t->tx_hash, sizeof(t->tx_hash), PQgetvalue(r, row, 8));
    const char *h = PQgetvalue(r, row, 9);
    while (*h != '\0' && t->nhashes < ZL_NONCE_HASHES_MAX) {
        const char *comma = strchr(h, ',');
        size_t n = comma != NULL ? (size_t)(comma - h) : strlen(h);
        if (n < sizeof(t->hashes[0])) {
            memcpy(t->hashes[t->nhashes], h, n);
            t->hashes[t->nhashes][n] = '\0';
            t->nhashes++;
        }
        h += n + (comma != NULL ? 1 : 0);
    }
    t->mined = strcmp(PQgetvalue(r, row, 10), "t") == 0;
    copy(t->mined_hash, sizeof(t->mined_hash), PQgetvalue(r, row, 11));
    t->block_number = strtoll(PQgetvalue(r, row, 12), NULL, 10);
    t->receipt_status = (int)strtol(PQgetvalue(r, row, 13), NULL, 10);
    t->signed_age_ms = strtoll(PQgetvalue(r, row, 14), NULL, 10);
    copy(t->first_deposit, sizeof(t->first_deposit), PQgetvalue(r, row, 15));
    t->signed_block = strtoll(PQgetvalue(r, row, 16), NULL, 10);
    return 0;
}

/* Runs statement stmt (chain, signer, key) and reads its first row, if
 * any, into out (*found). */
static zl_class one_slot(struct zl_pg *p, const char *stmt, uint64_t chain_id, const char *signer, const char *key,
                         struct zl_nonce_tx *out, bool *found, char *errstr, size_t errstr_size)
{
    *found = false;
    char chain[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    const char *params[3] = {chain, signer, key};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, stmt, 3, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    if (PQntuples(r) > 0) {
        if (read_slot(r, 0, out) != 0) {
            PQclear(r);
            snprintf(errstr, errstr_size, "out of memory");
            return ZL_TRANSIENT;
        }
        out->chain_id = chain_id;
        copy(out->signer, sizeof(out->signer), signer);
        *found = true;
    }
    PQclear(r);
    return ZL_OK;
}

zl_class zl_nonce_find_for_deposit(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *deposit_id,
                                   struct zl_nonce_tx *out, bool *found, char *errstr, size_t errstr_size)
{
    return one_slot(p, "nonce_find", chain_id, signer, deposit_id, out, found, errstr, errstr_size);
}

zl_class zl_nonce_live_nonces(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *const *deposit_ids,
                              size_t n, int64_t *nonces, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++)
        nonces[i] = -1;
    if (n == 0)
        return ZL_OK;
    char *ids = zl_pg_array_literal(deposit_ids, n);
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    char chain[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    const char *params[3] = {chain, signer, ids};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, "nonce_live_nonces", 3, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    free(ids);
    if (r == NULL)
        return c;
    for (int row = 0; row < PQntuples(r); row++) {
        long long ord = strtoll(PQgetvalue(r, row, 0), NULL, 10); /* our own $3's places: 1..n */
        if (ord >= 1 && (size_t)ord <= n)
            nonces[ord - 1] = strtoll(PQgetvalue(r, row, 1), NULL, 10);
    }
    PQclear(r);
    return ZL_OK;
}

zl_class zl_nonce_get(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce, struct zl_nonce_tx *out,
                      bool *found, char *errstr, size_t errstr_size)
{
    char n[ZL_INT64_DEC_SIZE];
    snprintf(n, sizeof(n), "%" PRIu64, nonce);
    return one_slot(p, "nonce_get", chain_id, signer, n, out, found, errstr, errstr_size);
}

/* Locks the signer's row (creating it at chain_floor) inside the open
 * transaction and returns max(next_nonce, chain_floor) in *nonce. Does not
 * roll back. */
static zl_class lock_signer(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t chain_floor,
                            uint64_t window_max, uint64_t *nonce, char *errstr, size_t errstr_size)
{
    char chain[ZL_INT64_DEC_SIZE], floor_s[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    snprintf(floor_s, sizeof(floor_s), "%" PRIu64, chain_floor);
    const char *init[3] = {chain, signer, floor_s};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, "nonce_signer_init", 3, init, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    PQclear(r);
    r = zl_pg_prepared(p, "nonce_signer_lock", 2, init, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(errstr, errstr_size, "signer_nonces row for %s vanished", signer);
        return ZL_TRANSIENT;
    }
    uint64_t next = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    *nonce = next > chain_floor ? next : chain_floor;
    /* Nonces handed out but not yet mined: the window in flight. */
    if (window_max > 0 && *nonce - chain_floor >= window_max) {
        snprintf(errstr, errstr_size, "signer %s has %" PRIu64 " transactions in flight (window of %" PRIu64
                 "): waiting for receipts", signer, *nonce - chain_floor, window_max);
        return ZL_DEFER;
    }
    return ZL_OK;
}

zl_class zl_nonce_begin(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *deposit_id,
                        uint64_t chain_floor, uint64_t window_max, uint64_t *nonce, struct zl_nonce_tx *existing,
                        bool *found, bool *wrong_state, char *errstr, size_t errstr_size)
{
    *found = false;
    *wrong_state = false;
    zl_class c = zl_pg_exec(p, "BEGIN", errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    const char *dep[1] = {deposit_id};
    PGresult *r = zl_pg_prepared(p, "nonce_lock_dep", 1, dep, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    bool ok_state = PQntuples(r) == 1 && (strcmp(PQgetvalue(r, 0, 0), "pinned") == 0 ||
                                          strcmp(PQgetvalue(r, 0, 0), "mint_submitted") == 0);
    if (!ok_state) {
        snprintf(errstr, errstr_size, "deposit %s is %s, not pinned or mint_submitted", deposit_id,
                 PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "missing");
        PQclear(r);
        *wrong_state = true;
        c = ZL_TRANSIENT; /* another copy moved the row: look again */
        goto fail;
    }
    PQclear(r);
    c = zl_nonce_find_for_deposit(p, chain_id, signer, deposit_id, existing, found, errstr, errstr_size);
    if (c != ZL_OK)
        goto fail;
    if (*found) {
        zl_pg_rollback(p);
        return ZL_OK;
    }
    c = lock_signer(p, chain_id, signer, chain_floor, window_max, nonce, errstr, errstr_size);
    if (c != ZL_OK)
        goto fail;
    return ZL_OK;
fail:
    zl_pg_rollback(p);
    return c;
}

zl_class zl_nonce_begin_batch(struct zl_pg *p, uint64_t chain_id, const char *signer, const char *const *deposit_ids,
                              size_t n, uint64_t chain_floor, uint64_t window_max, uint64_t *nonce, bool *skip,
                              size_t *nkept, char *errstr, size_t errstr_size)
{
    ZL_ASSERT(n >= 1 && n <= ZL_NONCE_BATCH_MAX);
    *nkept = 0;
    char *ids = zl_pg_array_literal(deposit_ids, n);
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++)
        skip[i] = true; /* until its row is seen in an accepted state */
    zl_class c = zl_pg_exec(p, "BEGIN", errstr, errstr_size);
    if (c != ZL_OK)
        goto out_free;
    const char *lock[1] = {ids};
    PGresult *r = zl_pg_prepared(p, "nonce_lock_deps", 1, lock, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    for (int row = 0; row < PQntuples(r); row++) {
        const char *state = PQgetvalue(r, row, 1);
        if (strcmp(state, "pinned") != 0 && strcmp(state, "mint_submitted") != 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (strcmp(deposit_ids[i], PQgetvalue(r, row, 0)) == 0)
                skip[i] = false;
    }
    PQclear(r);
    char chain[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    const char *live[3] = {chain, signer, ids};
    r = zl_pg_prepared(p, "nonce_live", 3, live, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    for (int row = 0; row < PQntuples(r); row++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(deposit_ids[i], PQgetvalue(r, row, 0)) == 0)
                skip[i] = true;
    PQclear(r);
    for (size_t i = 0; i < n; i++)
        *nkept += skip[i] ? 0 : 1;
    if (*nkept == 0) {
        zl_pg_rollback(p);
        goto out_free;
    }
    c = lock_signer(p, chain_id, signer, chain_floor, window_max, nonce, errstr, errstr_size);
    if (c != ZL_OK)
        goto fail;
    goto out_free;
fail:
    zl_pg_rollback(p);
out_free:
    free(ids);
    return c;
}

zl_class zl_nonce_store_batch(struct zl_pg *p, const struct zl_nonce_tx *t, const char *const *deposit_ids, size_t n,
                              char *errstr, size_t errstr_size)
{
    char chain[ZL_INT64_DEC_SIZE], nonce[ZL_INT64_DEC_SIZE], type[8], gas[ZL_INT64_DEC_SIZE], fee[ZL_INT64_DEC_SIZE],
        prio[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, t->chain_id);
    snprintf(nonce, sizeof(nonce), "%" PRIu64, t->nonce);
    snprintf(type, sizeof(type), "%d", t->tx_type);
    snprintf(gas, sizeof(gas), "%" PRIu64, t->gas_limit);
    snprintf(fee, sizeof(fee), "%" PRIu64, t->max_fee_wei);
    snprintf(prio, sizeof(prio), "%" PRIu64, t->priority_fee_wei);
    zl_class c = ZL_TRANSIENT;
    char *ids = zl_pg_array_literal(deposit_ids, n);
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    char sblock[ZL_INT64_DEC_SIZE];
    snprintf(sblock, sizeof(sblock), "%" PRId64, t->signed_block);
    const char *ins[13] = {chain, t->signer, nonce, t->purpose, ids, type, t->to_addr, gas, fee, prio,
                           t->raw_hex, t->tx_hash, sblock};
    PGresult *r = zl_pg_prepared(p, "nonce_insert_tx", 13, ins, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    PQclear(r);
    const char *adv[3] = {chain, t->signer, nonce};
    r = zl_pg_prepared(p, "nonce_signer_advance", 3, adv, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    PQclear(r);
    const char *dep[2] = {ids, t->tx_hash};
    r = zl_pg_prepared(p, "nonce_dep_submitted", 2, dep, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        goto fail;
    long moved = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if (moved != (long)n) {
        /* Cannot happen under the row locks taken in zl_nonce_begin(_batch). */
        snprintf(errstr, errstr_size, "%ld of %zu deposits left pinned/mint_submitted while locked", (long)n - moved,
                 n);
        c = ZL_TRANSIENT;
        goto fail;
    }
    free(ids);
    return zl_pg_exec(p, "COMMIT", errstr, errstr_size);
fail:
    free(ids);
    zl_pg_rollback(p);
    return c;
}

zl_class zl_nonce_store(struct zl_pg *p, const struct zl_nonce_tx *t, const char *deposit_id, char *errstr,
                        size_t errstr_size)
{
    const char *ids[1] = {deposit_id};
    return zl_nonce_store_batch(p, t, ids, 1, errstr, errstr_size);
}

void zl_nonce_abort(struct zl_pg *p)
{
    zl_pg_rollback(p);
}

zl_class zl_nonce_replace(struct zl_pg *p, const struct zl_nonce_tx *t, const char *old_hash, bool to_filler,
                          bool *replaced, char *errstr, size_t errstr_size)
{
    *replaced = false;
    char chain[ZL_INT64_DEC_SIZE], nonce[ZL_INT64_DEC_SIZE], gas[ZL_INT64_DEC_SIZE], fee[ZL_INT64_DEC_SIZE],
        prio[ZL_INT64_DEC_SIZE], maxh[12];
    snprintf(chain, sizeof(chain), "%" PRIu64, t->chain_id);
    snprintf(nonce, sizeof(nonce), "%" PRIu64, t->nonce);
    snprintf(gas, sizeof(gas), "%" PRIu64, t->gas_limit);
    snprintf(fee, sizeof(fee), "%" PRIu64, t->max_fee_wei);
    snprintf(prio, sizeof(prio), "%" PRIu64, t->priority_fee_wei);
    snprintf(maxh, sizeof(maxh), "%d", ZL_NONCE_HASHES_MAX);
    char sblock[ZL_INT64_DEC_SIZE];
    snprintf(sblock, sizeof(sblock), "%" PRId64, t->signed_block);
    const char *params[13] = {chain, t->signer, nonce, old_hash, t->raw_hex, t->tx_hash, fee, prio, gas,
                              t->to_addr, to_filler ? "true" : "false", maxh, sblock};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, "nonce_replace", 13, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    *replaced = strtol(PQcmdTuples(r), NULL, 10) == 1;
    PQclear(r);
    return ZL_OK;
}

zl_class zl_nonce_mark_mined(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce,
                             const char *hash, int64_t block_number, int receipt_status, char *errstr,
                             size_t errstr_size)
{
    char chain[ZL_INT64_DEC_SIZE], n[ZL_INT64_DEC_SIZE], block[ZL_INT64_DEC_SIZE], st[8];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    snprintf(n, sizeof(n), "%" PRIu64, nonce);
    snprintf(block, sizeof(block), "%" PRId64, block_number);
    snprintf(st, sizeof(st), "%d", receipt_status);
    const char *params[6] = {chain, signer, n, hash, block, st};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, "nonce_mined", 6, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r != NULL)
        PQclear(r);
    return c;
}

zl_class zl_nonce_note_error(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce,
                             const char *error, char *errstr, size_t errstr_size)
{
    char chain[ZL_INT64_DEC_SIZE], n[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    snprintf(n, sizeof(n), "%" PRIu64, nonce);
    const char *params[4] = {chain, signer, n, error};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, "nonce_note", 4, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r != NULL)
        PQclear(r);
    return c;
}

zl_class zl_nonce_pending(struct zl_pg *p, uint64_t chain_id, const char *signer, bool fillers_only,
                          uint64_t from_nonce, struct zl_nonce_tx *out, size_t max, size_t *n, char *errstr,
                          size_t errstr_size)
{
    *n = 0;
    char chain[ZL_INT64_DEC_SIZE], lim[ZL_INT64_DEC_SIZE], from[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    snprintf(lim, sizeof(lim), "%zu", max);
    snprintf(from, sizeof(from), "%" PRIu64, from_nonce);
    const char *params[5] = {chain, signer, lim, fillers_only ? "true" : "false", from};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, "nonce_pending", 5, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (size_t)i < max; i++) {
        if (read_slot(r, i, &out[*n]) != 0)
            break;
        out[*n].chain_id = chain_id;
        copy(out[*n].signer, sizeof(out[*n].signer), signer);
        (*n)++;
    }
    PQclear(r);
    return ZL_OK;
}

zl_class zl_nonce_pending_fillers(struct zl_pg *p, uint64_t chain_id, const char *signer, struct zl_nonce_tx *out,
                                  size_t max, size_t *n, char *errstr, size_t errstr_size)
{
    return zl_nonce_pending(p, chain_id, signer, true, 0, out, max, n, errstr, errstr_size);
}

zl_class zl_nonce_mark_taken(struct zl_pg *p, uint64_t chain_id, const char *signer, uint64_t nonce, const char *why,
                             bool *marked, char *errstr, size_t errstr_size)
{
    *marked = false;
    char chain[ZL_INT64_DEC_SIZE], n[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    snprintf(n, sizeof(n), "%" PRIu64, nonce);
    const char *params[4] = {chain, signer, n, why};
    zl_class c;
    PGresult *r = zl_pg_prepared(p, "nonce_taken", 4, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    *marked = strtol(PQcmdTuples(r), NULL, 10) == 1;
    PQclear(r);
    return ZL_OK;
}
