/* credit_decimals.c: see credit_decimals.h. A wrong ZL_TOKEN_DECIMALS would
 * credit every deposit off by a power of ten; the chain's own decimals()
 * (recorded by detect) is the reference. */
#include "credit_decimals.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static const char MISMATCH_FMT[] =
    "token %s on chain %llu has %d decimals on the chain, ZL_TOKEN_DECIMALS is %d: set ZL_TOKEN_DECIMALS=%d "
    "and restart credit";
static const char LIST_MISMATCH_FMT[] =
    "token %s %s on chain %llu has %d decimals on the chain, ZL_TOKENS says %d: correct its entry in ZL_TOKENS "
    "and restart credit";

/* The decimals the setting gives token t: -1 when ZL_TOKENS does not list it. */
static int configured_of(const struct credit_decimals *d, const char *token, const struct zl_token **entry)
{
    *entry = NULL;
    if (d->tokens.n == 0)
        return d->configured;
    *entry = zl_tokens_find(&d->tokens, token);
    return *entry != NULL ? (*entry)->decimals : -1;
}

int credit_decimals_at_start(const struct credit_decimals *d, const struct zl_runtime_env *env, char *errstr,
                             size_t errstr_size)
{
    struct zl_pg pg;
    if (zl_pg_init(&pg, env->cfg->pg_dsn, env->cfg->pg_connect_timeout_ms) != 0) {
        snprintf(errstr, errstr_size, "credit: out of memory");
        return -1;
    }
    int rc = 0;
    bool found = false;
    struct zl_ledger_decimals other;
    char derr[ZL_ERRSTR_SIZE] = "";
    if (zl_ledger_decimals_prepare(&pg) != 0) {
        snprintf(errstr, errstr_size, "credit: cannot register the decimals statements (ZL_PG_STMTS_MAX too small?)");
        rc = -1;
    } else if (zl_pg_ensure(&pg, derr, sizeof(derr)) != ZL_OK) {
        zl_log_kv(ZL_LOG_WARN, NULL, "token decimals not checked at start: checked at each token's first deposit",
                  "error", derr, NULL);
    } else if (d->tokens.n == 0) {
        if (zl_ledger_decimals_other(&pg, NULL, d->configured, &found, &other, derr, sizeof(derr)) != ZL_OK)
            zl_log_kv(ZL_LOG_WARN, NULL, "token decimals not checked at start", "error", derr, NULL);
        else if (found) {
            snprintf(errstr, errstr_size, MISMATCH_FMT, other.token, (unsigned long long)other.chain_id,
                     other.decimals, d->configured, other.decimals);
            rc = ZL_RUNTIME_INIT_REFUSED;
        }
    } else {
        for (size_t i = 0; i < d->tokens.n && rc == 0; i++) {
            const struct zl_token *t = &d->tokens.t[i];
            if (zl_ledger_decimals_other(&pg, t->address, t->decimals, &found, &other, derr, sizeof(derr)) != ZL_OK)
                zl_log_kv(ZL_LOG_WARN, NULL, "token decimals not checked at start", "token", t->symbol, "error", derr,
                          NULL);
            else if (found) {
                snprintf(errstr, errstr_size, LIST_MISMATCH_FMT, t->symbol, t->address,
                         (unsigned long long)other.chain_id, other.decimals, t->decimals);
                rc = ZL_RUNTIME_INIT_REFUSED;
            }
        }
    }
    zl_pg_close(&pg);
    return rc;
}

zl_class credit_decimals_check(struct credit_decimals *d, struct zl_pg *pg, const struct zl_facts *f, int *decimals,
                               char *errstr, size_t errstr_size)
{
    const struct zl_token *entry = NULL;
    int configured = configured_of(d, f->token, &entry);
    if (configured < 0) {
        snprintf(errstr, errstr_size, "token %s is not in ZL_TOKENS: not a deposit token, nothing credited",
                 f->token);
        return ZL_PERMANENT;
    }
    *decimals = configured;
    for (size_t i = 0; i < d->nchecked; i++)
        if (d->checked[i].chain_id == f->chain_id && strcmp(d->checked[i].token, f->token) == 0)
            return ZL_OK;
    bool recorded = false;
    int chain_dec = 0;
    zl_class c = zl_ledger_decimals_of(pg, f->chain_id, f->token, &recorded, &chain_dec, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    if (!recorded) {
        zl_log_kv(ZL_LOG_WARN, NULL, "token decimals not recorded by detect yet: crediting with ZL_TOKEN_DECIMALS",
                  "token", f->token, NULL);
        return ZL_OK;
    }
    if (chain_dec != configured) {
        d->held = true;
        d->held_chain_id = f->chain_id;
        snprintf(d->held_token, sizeof(d->held_token), "%s", f->token);
        if (entry != NULL)
            snprintf(errstr, errstr_size, LIST_MISMATCH_FMT, entry->symbol, entry->address,
                     (unsigned long long)f->chain_id, chain_dec, configured);
        else
            snprintf(errstr, errstr_size, MISMATCH_FMT, f->token, (unsigned long long)f->chain_id, chain_dec,
                     configured, chain_dec);
        return ZL_OUTAGE;
    }
    d->held = false;
    if (d->nchecked < CREDIT_TOKENS_CHECKED_MAX) {
        d->checked[d->nchecked].chain_id = f->chain_id;
        snprintf(d->checked[d->nchecked].token, sizeof(d->checked[0].token), "%s", f->token);
        d->nchecked++;
    }
    return ZL_OK;
}

zl_class credit_decimals_probe(struct credit_decimals *d, struct zl_pg *pg, char *errstr, size_t errstr_size)
{
    if (!d->held)
        return ZL_OK;
    struct zl_facts f = {.chain_id = d->held_chain_id};
    snprintf(f.token, sizeof(f.token), "%s", d->held_token);
    zl_class c = zl_pg_ensure(pg, errstr, errstr_size);
    if (c != ZL_OK)
        return c;
    int decimals = 0;
    return credit_decimals_check(d, pg, &f, &decimals, errstr, errstr_size);
}
