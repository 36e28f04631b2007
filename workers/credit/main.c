/* credit: zl.nft.minted -> zl.credits.applied, the last stage.
 *
 * For each minted deposit: find the rate for its token (rates.h: cache ->
 * credit_rates table or HTTP price source -> stale cache -> static), compute
 * eggs = floor(amount * rate / 10^decimals) exactly (ledger.h), with the
 * token's decimals from ZL_TOKENS (or ZL_TOKEN_DECIMALS for every token), and
 * in the runtime's compare-and-set transaction write the two ledger entries,
 * the balances and the row's credit_id/credit_eggs (in_tx) while the row
 * moves minted -> credited. Nothing is written outside that transaction, so
 * a crash leaves either all of a credit or none of it.
 *
 * A redelivery of a credited deposit finds the row done and re-publishes the
 * event from the ledger (republish), crediting nothing. The credit id is a
 * name-based UUID of the deposit id, so every copy computes the same one.
 *
 * Decimals (credit_decimals.h): the configured value is checked against the decimals detect read
 * from the chain (token_decimals). At start, any recorded token that differs
 * refuses to start (init fails: the runtime exits 1, the message names the
 * token, the configured and the chain's value). Each token is checked again
 * at its first deposit: a difference recorded since is an outage (pause,
 * never a credit with the wrong value, never DLQ); a token detect has not
 * recorded yet is credited with the configured value and a warning, and
 * looked up again at its next deposit.
 *
 * Failures: no rate for the token, or eggs beyond a uint256, are permanent
 * (DLQ with the reason; replay after fixing the rate). A price source that
 * is down falls back as above; with no fallback left it is an outage (pause,
 * never DLQ).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "breaker_watch.h"
#include "credit_decimals.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "rates.h"
#include "runtime.h"
#include "solana_chain.h"

struct credit_config {
    int64_t token_decimals;
    char *tokens;
    char *rate_url;
    int64_t rate_timeout_ms;
    int64_t rate_ttl_ms;
    int64_t rate_stale_max_ms;
    char *rate_static;
    int64_t breaker_failure_pct;
    int64_t breaker_sampling_ms;
    int64_t breaker_min_throughput;
    int64_t breaker_break_ms;
};

#define OFF(f) offsetof(struct credit_config, f)
static const struct zl_setting credit_settings[] = {
    {"ZL_TOKEN_DECIMALS", ZL_CFG_INT, "18",
     "decimals of the deposit token: eggs = floor(amount * rate / 10^decimals); must equal decimals() on the chain "
     "(recorded by detect), or credit refuses to start",
     OFF(token_decimals), 0, ZL_TOKEN_DECIMALS_MAX},
    ZL_TOKENS_SETTING("each token is credited with its own decimals; empty: ZL_TOKEN_DECIMALS for every token",
                      OFF(tokens)),
    {"ZL_CREDIT_RATE_URL", ZL_CFG_STR, "",
     "HTTP price source answering {\"rate\":\"<decimal>\"}, {token} replaced by the token; empty: the credit_rates "
     "table",
     OFF(rate_url), 0, 0},
    {"ZL_CREDIT_RATE_TIMEOUT_MS", ZL_CFG_INT, "2000", "timeout of one price source request", OFF(rate_timeout_ms), 10,
     60000},
    {"ZL_CREDIT_RATE_TTL_MS", ZL_CFG_INT, "60000", "a cached rate is used without asking the source for this long",
     OFF(rate_ttl_ms), 0, 86400000},
    {"ZL_CREDIT_RATE_STALE_MAX_MS", ZL_CFG_INT, "7200000",
     "with the source down, a cached rate up to this old is used (seed 002: 2 h)", OFF(rate_stale_max_ms), 0,
     604800000},
    {"ZL_CREDIT_RATE_STATIC", ZL_CFG_STR, "",
     "conservative rate used when the source is down and the cache too old; empty: none (pause instead)",
     OFF(rate_static), 0, 0},
    {"ZL_CREDIT_RATE_BREAKER_FAILURE_PCT", ZL_CFG_INT, "50", "price source breaker opens at this failure percentage",
     OFF(breaker_failure_pct), 1, 100},
    {"ZL_CREDIT_RATE_BREAKER_SAMPLING_MS", ZL_CFG_INT, "30000", "price source breaker sampling window",
     OFF(breaker_sampling_ms), 1, 86400000},
    {"ZL_CREDIT_RATE_BREAKER_MIN_THROUGHPUT", ZL_CFG_INT, "3", "calls in the window before the breaker may open",
     OFF(breaker_min_throughput), 1, 100000},
    {"ZL_CREDIT_RATE_BREAKER_BREAK_MS", ZL_CFG_INT, "5000", "price source breaker stays open this long",
     OFF(breaker_break_ms), 1, 86400000},
};
#undef OFF

/* What process() decided for a work, until in_tx writes it: the event
 * carries eggs, rate and credit id, but not where the rate came from. */
struct pending {
    const struct zl_work *w;
    char deposit_id[ZL_DEPOSIT_ID_SIZE];
    zl_rate_source source;
    int decimals;
};

struct credit {
    struct credit_config cfg;
    struct credit_decimals decimals;
    struct zl_pg *pg; /* the runtime's connection, lent at prepare; main thread only */
    struct zl_rates rates;
    struct zl_rates_http http;
    struct zl_breaker breaker;
    bool breaker_ready;
    struct zl_breaker_watch watch;
    zl_metric *source_total[ZL_RATE_SRC_COUNT];
    struct pending *ring; /* ring_cap entries, newest at ring_next - 1 */
    size_t ring_cap;
    size_t ring_next;
};

static void remember(struct credit *cr, const struct zl_work *w, zl_rate_source src, int decimals)
{
    struct pending *p = &cr->ring[cr->ring_next % cr->ring_cap];
    p->w = w;
    memcpy(p->deposit_id, w->in.deposit_id, sizeof(p->deposit_id));
    p->source = src;
    p->decimals = decimals;
    cr->ring_next++;
}

static const struct pending *recall(const struct credit *cr, const struct zl_work *w)
{
    size_t n = cr->ring_next < cr->ring_cap ? cr->ring_next : cr->ring_cap;
    for (size_t k = 1; k <= n; k++) { /* newest first */
        const struct pending *p = &cr->ring[(cr->ring_next - k) % cr->ring_cap];
        if (p->w == w && strcmp(p->deposit_id, w->in.deposit_id) == 0)
            return p;
    }
    return NULL;
}

static struct zl_solana_config g_sol;

/* A Solana deposit's decimals (issue 22): ZL_SOLANA_DECIMALS, which detect
 * checks against every transferChecked of the mint. A deposit of another
 * mint or cluster, or where Solana is not configured, is never credited. */
static zl_class solana_decimals(const struct zl_work *w, int *decimals, char *errstr, size_t errstr_size)
{
    if (!zl_solana_enabled(&g_sol)) {
        snprintf(errstr, errstr_size, "a Solana deposit: this credit takes none (ZL_SOLANA_CLUSTER unset)");
        return ZL_POISON;
    }
    if (strcmp(w->in.chain, g_sol.cluster) != 0 || strcmp(w->row.facts.token, g_sol.mint) != 0) {
        snprintf(errstr, errstr_size, "a deposit of %s on %s: this credit takes %s on %s", w->row.facts.token,
                 w->in.chain, g_sol.mint, g_sol.cluster);
        return ZL_PERMANENT;
    }
    *decimals = (int)g_sol.decimals;
    return ZL_OK;
}

static zl_class credit_process(void *ctx, struct zl_work *w)
{
    struct credit *cr = ctx;
    struct zl_rate rate;
    int decimals = 0;
    zl_class c = zl_event_is_solana(&w->in)
                     ? solana_decimals(w, &decimals, w->error, sizeof(w->error))
                     : credit_decimals_check(&cr->decimals, cr->pg, &w->row.facts, &decimals, w->error,
                                             sizeof(w->error));
    if (c != ZL_OK)
        return c;
    c = zl_rates_get(&cr->rates, w->row.facts.token, zl_now_ms(), &rate, w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_CREDITED);
    if (zl_ledger_eggs(w->row.facts.amount, rate.value, decimals, w->out.credit_eggs,
                       sizeof(w->out.credit_eggs), w->error, sizeof(w->error)) != 0)
        return ZL_PERMANENT;
    memcpy(w->out.rate, rate.value, sizeof(w->out.rate));
    zl_ledger_entry_ids(w->in.deposit_id, w->out.credit_id, (char[ZL_LEDGER_ID_SIZE]){0});
    zl_metric_counter_add(cr->source_total[rate.source], 1);
    if (rate.source == ZL_RATE_SRC_STALE_CACHE || rate.source == ZL_RATE_SRC_STATIC) {
        struct zl_log_ctx lc;
        zl_work_log_ctx(w, &lc);
        char age[ZL_INT64_DEC_SIZE];
        snprintf(age, sizeof(age), "%lld", (long long)rate.age_ms);
        zl_log_kv(ZL_LOG_WARN, &lc, "rate source down: crediting with a fallback rate", "source",
                  zl_rate_source_name(rate.source), "rate", rate.value, "age_ms", age, NULL);
    }
    remember(cr, w, rate.source, decimals);
    return ZL_OK;
}

static zl_class credit_republish(void *ctx, struct zl_work *w)
{
    struct credit *cr = ctx;
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_CREDITED);
    zl_class c = zl_ledger_read_credit(cr->pg, w->in.deposit_id, w->out.credit_id, sizeof(w->out.credit_id),
                                       w->out.credit_eggs, sizeof(w->out.credit_eggs), w->out.rate,
                                       sizeof(w->out.rate), w->error, sizeof(w->error));
    if (c != ZL_OK)
        return c;
    /* Both sides of the boundary: the row and its ledger entry agree. */
    if (strcmp(w->row.credit_id, w->out.credit_id) != 0 || strcmp(w->row.credit_eggs, w->out.credit_eggs) != 0) {
        snprintf(w->error, sizeof(w->error),
                 "deposit %s: state row says credit %s of %s eggs, the ledger says %s of %s: run zl-audit",
                 w->in.deposit_id, w->row.credit_id, w->row.credit_eggs, w->out.credit_id, w->out.credit_eggs);
        return ZL_PERMANENT;
    }
    return ZL_OK;
}

static zl_class credit_in_tx(void *ctx, struct zl_pg *pg, struct zl_work *const *moved, size_t n, char *errstr,
                             size_t errstr_size)
{
    struct credit *cr = ctx;
    struct zl_ledger_credit *cs = calloc(n, sizeof(*cs));
    char(*contra)[ZL_LEDGER_ID_SIZE] = calloc(n, sizeof(*contra));
    zl_class c = ZL_TRANSIENT;
    if (cs == NULL || contra == NULL) {
        snprintf(errstr, errstr_size, "credit: out of memory for %zu credits", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct zl_work *w = moved[i];
        const struct pending *p = recall(cr, w);
        if (p == NULL) {
            snprintf(errstr, errstr_size, "credit: lost the rate source of deposit %s (batch larger than %zu?)",
                     w->in.deposit_id, cr->ring_cap);
            goto out;
        }
        char credit_id[ZL_LEDGER_ID_SIZE];
        zl_ledger_entry_ids(w->in.deposit_id, credit_id, contra[i]);
        ZL_ASSERT(strcmp(credit_id, w->out.credit_id) == 0);
        cs[i] = (struct zl_ledger_credit){
            .deposit_id = w->in.deposit_id,
            .amount = w->row.facts.amount,
            .eggs = w->out.credit_eggs,
            .rate = w->out.rate,
            .source = zl_rate_source_name(p->source),
            .credit_id = w->out.credit_id,
            .contra_id = contra[i],
            .decimals = p->decimals,
        };
    }
    c = zl_ledger_apply(pg, cs, n, errstr, errstr_size);
out:
    free(cs);
    free(contra);
    return c;
}

/* The table source reads through the runtime's connection, which exists
 * only after prepare (init runs first): look it up at call time. */
static zl_class db_fetch(void *opaque, const char *token, char *rate, size_t rate_size, char *errstr,
                         size_t errstr_size)
{
    struct credit *cr = opaque;
    ZL_ASSERT(cr->pg != NULL);
    return zl_rates_db_fetch(cr->pg, token, rate, rate_size, errstr, errstr_size);
}

static int credit_prepare(void *ctx, struct zl_pg *pg)
{
    struct credit *cr = ctx;
    cr->pg = pg;
    if (zl_ledger_prepare(pg) != 0 || zl_ledger_decimals_prepare(pg) != 0 || zl_rates_db_prepare(pg) != 0)
        return -1;
    return 0;
}

static zl_class credit_probe(void *ctx, char *errstr, size_t errstr_size)
{
    struct credit *cr = ctx;
    /* A token whose decimals differ holds the pause until they match. */
    zl_class c = credit_decimals_probe(&cr->decimals, cr->pg, errstr, errstr_size);
    if (c != ZL_OK || cr->cfg.rate_url[0] == '\0')
        return c; /* the table: the runtime probes PostgreSQL itself */
    return zl_rates_probe(&cr->rates, zl_now_ms(), errstr, errstr_size);
}

static int credit_init(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size)
{
    struct credit *cr = ctx;
    const char *labels[ZL_RATE_SRC_COUNT] = {"source=\"db\"", "source=\"http\"", "source=\"stale_cache\"",
                                             "source=\"static\""};
    zl_metrics_describe(env->metrics, "zl_credit_rate_source_total", ZL_METRIC_COUNTER,
                        "Rates used for credits, by where they came from (db, http, stale_cache, static).");
    for (int s = 0; s < ZL_RATE_SRC_COUNT; s++)
        cr->source_total[s] = zl_metrics_counter_handle(env->metrics, "zl_credit_rate_source_total", labels[s]);

    /* Every work of a batch is remembered once before in_tx; twice the
     * batch leaves room for in-place retries that succeed. */
    cr->ring_cap = (size_t)env->cfg->batch_size_max * 2;
    cr->ring = calloc(cr->ring_cap, sizeof(*cr->ring));
    if (cr->ring == NULL) {
        snprintf(errstr, errstr_size, "credit: out of memory");
        return -1;
    }

    struct zl_rates_opts ro = {
        .primary = ZL_RATE_SRC_DB,
        .fetch = db_fetch,
        .opaque = cr,
        .breaker = NULL,
        .ttl_ms = cr->cfg.rate_ttl_ms,
        .stale_max_ms = cr->cfg.rate_stale_max_ms,
        .static_rate = cr->cfg.rate_static,
    };
    if (cr->cfg.rate_url[0] != '\0') {
        cr->watch = (struct zl_breaker_watch){.stage = "credit", .metrics = env->metrics, .health = env->health};
        struct zl_breaker_opts bo;
        zl_breaker_opts_default(&bo);
        bo.failure_ratio = (double)cr->cfg.breaker_failure_pct / 100.0;
        bo.sampling_duration_ms = cr->cfg.breaker_sampling_ms;
        bo.minimum_throughput = (int32_t)cr->cfg.breaker_min_throughput;
        bo.break_duration_ms = cr->cfg.breaker_break_ms;
        bo.on_state_change = zl_breaker_watch_cb;
        bo.opaque = &cr->watch;
        if (zl_breaker_init(&cr->breaker, "rate-source", &bo, errstr, errstr_size) != 0)
            return -1;
        cr->breaker_ready = true;
        zl_breaker_watch_register(&cr->watch, "rate-source");
        cr->http = (struct zl_rates_http){.url_template = cr->cfg.rate_url, .timeout_ms = cr->cfg.rate_timeout_ms};
        ro.primary = ZL_RATE_SRC_HTTP;
        ro.fetch = zl_rates_http_fetch;
        ro.opaque = &cr->http;
        ro.breaker = &cr->breaker;
    }
    if (zl_solana_enabled(&g_sol) && zl_solana_check(&g_sol, false, errstr, errstr_size) != 0)
        return ZL_RUNTIME_INIT_REFUSED;
    cr->decimals.configured = (int)cr->cfg.token_decimals;
    /* credit reads no chain, so the single-token form does not concern it */
    if (zl_tokens_load(&cr->decimals.tokens, cr->cfg.tokens, NULL, NULL, errstr, errstr_size) != 0)
        return ZL_RUNTIME_INIT_REFUSED;
    if (cr->cfg.rate_stale_max_ms < cr->cfg.rate_ttl_ms) {
        snprintf(errstr, errstr_size, "ZL_CREDIT_RATE_STALE_MAX_MS (%lld) must be >= ZL_CREDIT_RATE_TTL_MS (%lld)",
                 (long long)cr->cfg.rate_stale_max_ms, (long long)cr->cfg.rate_ttl_ms);
        return ZL_RUNTIME_INIT_REFUSED;
    }
    if (zl_rates_init(&cr->rates, &ro, errstr, errstr_size) != 0)
        return -1;
    int at_start = credit_decimals_at_start(&cr->decimals, env, errstr, errstr_size);
    if (at_start != 0)
        return at_start;
    if (cr->decimals.tokens.n > 1 && cr->cfg.rate_static[0] != '\0')
        zl_log_kv(ZL_LOG_WARN, NULL,
                  "ZL_CREDIT_RATE_STATIC is one rate for every token in ZL_TOKENS: it must suit each of them",
                  "rate_static", cr->cfg.rate_static, NULL);
    zl_log_kv(ZL_LOG_INFO, NULL, "credit stage ready", "rate_primary", zl_rate_source_name(ro.primary),
              "rate_static", cr->cfg.rate_static[0] != '\0' ? cr->cfg.rate_static : NULL, NULL);
    return 0;
}

/* The admin API's breaker reset: the price source's breaker, the stage's
 * only one ("rate-source"; none without ZL_CREDIT_RATE_URL). */
static int credit_reset_breakers(void *ctx, const char *dependency)
{
    struct credit *cr = ctx;
    if (!cr->breaker_ready || (dependency != NULL && strcmp(dependency, "rate-source") != 0))
        return 0;
    zl_breaker_reset(&cr->breaker, zl_now_ms());
    return 1;
}

static void credit_fini(void *ctx)
{
    struct credit *cr = ctx;
    if (cr->breaker_ready)
        zl_breaker_destroy(&cr->breaker);
    free(cr->ring);
    cr->ring = NULL;
}

/* The stage's one instance, like every stage's g_<stage>. */
static struct credit g_credit;

int main(int argc, char **argv)
{
    const struct zl_stage stage = {
        .name = "credit",
        .in_kind = ZL_TOPIC_MINTED,
        .out_kind = ZL_TOPIC_CREDITED,
        .accept_states = "{minted}",
        .done_state = ZL_STATE_CREDITED,
        .process = credit_process,
        .republish = credit_republish,
        .in_tx = credit_in_tx,
        .prepare = credit_prepare,
        .probe = credit_probe,
        .init = credit_init,
        .reset_breakers = credit_reset_breakers,
        .fini = credit_fini,
        .ctx = &g_credit,
    };
    struct zl_config_section extra[2] = {
        {"Credit stage", credit_settings, sizeof(credit_settings) / sizeof(credit_settings[0]), &g_credit.cfg},
        {"solana", zl_solana_settings, zl_solana_settings_count, &g_sol}};
    return zl_runtime_main(&stage, extra, 2, argc, argv);
}
