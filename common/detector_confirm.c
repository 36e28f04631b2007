/* detector_confirm.c: a scanned range is taken on the word of k endpoints,
 * not one (architecture §10 "detect: k of n").
 *
 * With ZL_DETECT_CONFIRM_K (default ZL_RPC_QUORUM) above 1, every
 * eth_getLogs of the live scan and of the backfill goes to the endpoints one
 * after another, in preference order, each through its own client (so an
 * answer is known to come from that endpoint, which the failover client
 * cannot say), as one JSON-RPC batch with eth_getBlockByNumber of the range's
 * last block. Each answer is reduced to a digest: the number of logs, a
 * keccak256 of their sorted (tx hash, log index, block, address, topics,
 * data), and the block hash at the range's end. Field order, extra fields and
 * `removed: true` logs (which the scan drops anyway) do not enter it, so two
 * honest nodes agree; an endpoint that drops, invents or alters a log, or is
 * behind (no block at the range's end), does not.
 *
 * The first digest k endpoints return is used. When the endpoints that
 * answered disagree and no digest has k votes, the range is held: the call
 * fails (the step rolls back, the cursor stays, the step retries after its
 * backoff), the digests are logged and zl_detect_range_disagreements_total
 * {outcome="held"} counts it, so it alerts. A dishonest endpoint outvoted by
 * k honest ones is logged and counted as outcome="outvoted".
 */
#include "detector.h"
#include "detector_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keccak.h"
#include "log.h"

/* Bytes of one log's digest line besides its data and topics: tx hash, log
 * index, block hash, block number, address and separators. */
#define DET_DIGEST_LINE_FIXED_BYTES 256
/* Bytes a digest is shown with in the log ("12 logs, keccak 0x..., block
 * 0x...", both hashes cut to 16 digits: enough to tell answers apart). */
#define DET_DIGEST_TEXT_BYTES 192

struct logs_digest {
    size_t n;                       /* logs counted (removed ones left out) */
    char hash[ZL_HASH_HEX_SIZE];    /* keccak256 of the sorted lines */
    char block[ZL_HASH_HEX_SIZE];   /* hash of the range's last block */
};

/* One distinct answer: its logs (those of the first endpoint that gave it). */
struct answer {
    json_t *logs;
    struct logs_digest dg;
    int votes;
    size_t first_ep;
};

/* scheme://host[:port] of a URL: the path may hold an API key. */
static void url_label(const char *url, size_t len, char *out, size_t out_size)
{
    const char *p = strstr(url, "://");
    const char *host = p != NULL && (size_t)(p - url) < len ? p + 3 : url;
    const char *end = host;
    while ((size_t)(end - url) < len && *end != '/' && *end != '?' && *end != '#')
        end++;
    const char *at = memchr(host, '@', (size_t)(end - host));
    if (at != NULL) {
        snprintf(out, out_size, "%.*s%.*s", (int)(host - url), url, (int)(end - at - 1), at + 1);
        return;
    }
    snprintf(out, out_size, "%.*s", (int)(end - url), url);
}

int det_confirm_init(struct zl_detector *d, const struct zl_rpc_opts *tmpl, char *errstr, size_t errstr_size)
{
    d->nconfirm = 0;
    if (d->o.confirm_k <= 1)
        return 0;
    if (tmpl == NULL || tmpl->urls == NULL) {
        snprintf(errstr, errstr_size, "detector: confirm_k %d needs the endpoint list", d->o.confirm_k);
        return -1;
    }
    const char *cursor = tmpl->urls;
    const char *p;
    size_t len;
    while ((p = zl_rpc_next_url(&cursor, &len)) != NULL) {
        if (d->nconfirm >= ZL_RPC_ENDPOINTS_MAX) {
            snprintf(errstr, errstr_size, "rpc urls: more than %d endpoints", ZL_RPC_ENDPOINTS_MAX);
            return -1;
        }
        char *one = strndup(p, len);
        if (one == NULL) {
            snprintf(errstr, errstr_size, "detector: out of memory");
            return -1;
        }
        struct zl_rpc_opts o = *tmpl;
        o.urls = one;
        o.quorum = 1;
        o.hedge_after_ms = 0;
        o.metrics = NULL; /* the main client reports the endpoints' health */
        o.health = NULL;
        o.name = "rpc_confirm";
        url_label(one, strlen(one), d->confirm_label[d->nconfirm], sizeof(d->confirm_label[0]));
        int rc = zl_rpc_new(&d->confirm[d->nconfirm], &o, errstr, errstr_size);
        free(one);
        if (rc != 0)
            return -1;
        d->nconfirm++;
    }
    if ((size_t)d->o.confirm_k > d->nconfirm) {
        snprintf(errstr, errstr_size,
                 "ZL_DETECT_CONFIRM_K (or ZL_RPC_QUORUM) %d is larger than the %zu endpoints in ZL_RPC_URLS",
                 d->o.confirm_k, d->nconfirm);
        return -1;
    }
    return 0;
}

void det_confirm_free(struct zl_detector *d)
{
    for (size_t i = 0; i < d->nconfirm; i++)
        zl_rpc_free(d->confirm[i]);
    d->nconfirm = 0;
}

void det_confirm_metrics(struct zl_detector *d)
{
    struct zl_metrics *m = d->o.metrics;
    zl_metrics_describe(m, "zl_detect_range_disagreements_total", ZL_METRIC_COUNTER,
                        "scanned ranges whose logs endpoints disagreed on: held (cursor stays) or outvoted");
    d->m_disagree_held = zl_metrics_counter_handle(m, "zl_detect_range_disagreements_total", "outcome=\"held\"");
    d->m_disagree_outvoted =
        zl_metrics_counter_handle(m, "zl_detect_range_disagreements_total", "outcome=\"outvoted\"");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One log as a line of text from the fields that make it this log, or NULL
 * when out of memory. A log missing a field is its compact JSON (sorted
 * keys): still the same text from two nodes that return the same thing. */
static char *log_line(const json_t *log)
{
    char tx[ZL_HASH_HEX_SIZE], bh[ZL_HASH_HEX_SIZE], addr[ZL_ADDRESS_HEX_SIZE];
    uint64_t li = 0, bn = 0;
    const json_t *topics = json_object_get(log, "topics");
    const char *data = json_string_value(json_object_get(log, "data"));
    if (zl_json_hex_field(log, "transactionHash", ZL_HASH_HEX_DIGITS, tx, sizeof(tx)) != 0 ||
        zl_json_hex_field(log, "blockHash", ZL_HASH_HEX_DIGITS, bh, sizeof(bh)) != 0 ||
        zl_json_hex_field(log, "address", ZL_ADDRESS_HEX_DIGITS, addr, sizeof(addr)) != 0 ||
        zl_json_quantity_field(log, "logIndex", &li) != 0 || zl_json_quantity_field(log, "blockNumber", &bn) != 0 ||
        !json_is_array(topics) || data == NULL)
        return json_dumps(log, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    size_t cap = DET_DIGEST_LINE_FIXED_BYTES + strlen(data) + json_array_size(topics) * (ZL_HASH_HEX_SIZE + 1);
    char *line = malloc(cap);
    if (line == NULL)
        return NULL;
    /* tx hash and log index first: the lines sort as the (tx, index) pairs */
    size_t w = (size_t)snprintf(line, cap, "%s:%" PRIu64 ":%s:%" PRIu64 ":%s:", tx, li, bh, bn, addr);
    size_t i;
    const json_t *t;
    json_array_foreach(topics, i, t) {
        char th[ZL_HASH_HEX_SIZE];
        const char *s = json_string_value(t);
        if (s != NULL && zl_hex_lower(s, ZL_HASH_HEX_DIGITS, th, sizeof(th)) == 0)
            w += (size_t)snprintf(line + w, cap - w, "%s,", th);
        else
            w += (size_t)snprintf(line + w, cap - w, "?,");
    }
    w += (size_t)snprintf(line + w, cap - w, ":");
    for (const char *s = data; *s != '\0' && w + 1 < cap; s++)
        line[w++] = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
    line[w] = '\0';
    return line;
}

/* The digest of one endpoint's answer. Returns 0, or -1 when out of memory. */
static int digest_logs(const json_t *logs, const char *block_hash, struct logs_digest *dg)
{
    size_t n = json_array_size(logs), k = 0;
    char **lines = calloc(n > 0 ? n : 1, sizeof(*lines));
    if (lines == NULL)
        return -1;
    int rc = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *log = json_array_get(logs, i);
        if (json_is_true(json_object_get(log, "removed")))
            continue; /* a reorged log: the scan drops it, one node may still show it */
        lines[k] = log_line(log);
        if (lines[k] == NULL) {
            rc = -1;
            goto out;
        }
        total += strlen(lines[k]) + 1;
        k++;
    }
    qsort(lines, k, sizeof(*lines), cmp_str);
    char *all = malloc(total + 1);
    if (all == NULL) {
        rc = -1;
        goto out;
    }
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        size_t len = strlen(lines[i]);
        memcpy(all + w, lines[i], len);
        all[w + len] = '\n';
        w += len + 1;
    }
    zl_keccak256_hex(all, w, dg->hash);
    free(all);
    dg->n = k;
    snprintf(dg->block, sizeof(dg->block), "%s", block_hash);
out:
    for (size_t i = 0; i < k; i++)
        free(lines[i]);
    free(lines);
    return rc;
}

static bool digest_eq(const struct logs_digest *a, const struct logs_digest *b)
{
    return a->n == b->n && strcmp(a->hash, b->hash) == 0 && strcmp(a->block, b->block) == 0;
}

static void digest_text(const struct logs_digest *dg, char *out, size_t out_size)
{
    snprintf(out, out_size, "%zu logs, keccak %.18s, block %.18s", dg->n, dg->hash, dg->block);
}

/* eth_getLogs(params) and the hash of block hi from endpoint i, in one
 * batch. Returns ZL_OK with *logs (owned by the caller) and *dg, or the
 * class of what failed with errstr. */
static zl_class read_endpoint(struct zl_detector *d, size_t i, json_t *params, uint64_t hi, json_t **logs,
                              struct logs_digest *dg, char *errstr, size_t errstr_size)
{
    char num[NUM_TEXT_MAX];
    snprintf(num, sizeof(num), "0x%" PRIx64, hi);
    json_t *bparams = json_pack("[s, b]", num, 0);
    const char *methods[2] = {"eth_getLogs", "eth_getBlockByNumber"};
    json_t *ps[2] = {params, bparams};
    json_t *res[2] = {NULL, NULL};
    struct zl_rpc_error errs[2];
    zl_class c = zl_rpc_batch(d->confirm[i], 2, methods, ps, res, errs, errstr, errstr_size);
    json_decref(bparams);
    char bh[ZL_HASH_HEX_SIZE] = "";
    if (c == ZL_OK && res[0] == NULL) {
        snprintf(errstr, errstr_size, "eth_getLogs: %s (code %ld)", errs[0].message, errs[0].code);
        c = ZL_TRANSIENT;
    } else if (c == ZL_OK && !json_is_array(res[0])) {
        snprintf(errstr, errstr_size, "eth_getLogs: result is not an array");
        c = ZL_TRANSIENT;
    } else if (c == ZL_OK && (!json_is_object(res[1]) ||
                              zl_json_hex_field(res[1], "hash", ZL_HASH_HEX_DIGITS, bh, sizeof(bh)) != 0)) {
        /* behind the range's end: its logs cannot be complete */
        snprintf(errstr, errstr_size, "eth_getBlockByNumber %" PRIu64 ": no block or no hash (endpoint behind?)", hi);
        c = ZL_TRANSIENT;
    } else if (c == ZL_OK && digest_logs(res[0], bh, dg) != 0) {
        snprintf(errstr, errstr_size, "detector: out of memory for a digest of %zu logs", json_array_size(res[0]));
        c = ZL_TRANSIENT;
    }
    if (c == ZL_OK) {
        *logs = res[0];
        res[0] = NULL;
    }
    json_decref(res[0]);
    json_decref(res[1]);
    return c;
}

/* Logs and says (one line with every distinct digest and who gave it) that
 * endpoints disagreed on blocks lo..hi. */
static void log_disagreement(struct zl_detector *d, const struct answer *ans, size_t na, uint64_t lo, uint64_t hi,
                             bool held)
{
    char text[ZL_RPC_ENDPOINTS_MAX * (DET_DIGEST_TEXT_BYTES + 96)];
    size_t w = 0;
    for (size_t i = 0; i < na && w < sizeof(text); i++) {
        char dt[DET_DIGEST_TEXT_BYTES];
        digest_text(&ans[i].dg, dt, sizeof(dt));
        w += (size_t)snprintf(text + w, sizeof(text) - w, "%s%s (and %d more agreeing): %s", i > 0 ? "; " : "",
                              d->confirm_label[ans[i].first_ep], ans[i].votes - 1, dt);
    }
    char range[2 * NUM_TEXT_MAX + 4];
    snprintf(range, sizeof(range), "%" PRIu64 "..%" PRIu64, lo, hi);
    zl_log_kv(held ? ZL_LOG_ERROR : ZL_LOG_WARN, NULL,
              held ? "endpoints disagree on the logs of a range: range held (the cursor stays), retrying"
                   : "an endpoint disagreed on the logs of a range and was outvoted",
              "blocks", range, "digests", text, NULL);
    det_count(held ? d->m_disagree_held : d->m_disagree_outvoted, 1);
}

zl_class det_get_logs(struct zl_detector *d, json_t *params, uint64_t lo, uint64_t hi, json_t **out, bool *held,
                      char *errstr, size_t errstr_size)
{
    *out = NULL;
    *held = false;
    if (d->o.confirm_k <= 1) {
        json_t *res = NULL;
        zl_class c = zl_rpc_call(d->o.rpc, "eth_getLogs", params, &res, NULL, errstr, errstr_size);
        if (c != ZL_OK)
            return c;
        if (!json_is_array(res)) {
            json_decref(res);
            snprintf(errstr, errstr_size, "eth_getLogs: result is not an array");
            return ZL_TRANSIENT;
        }
        *out = res;
        return ZL_OK;
    }
    struct answer ans[ZL_RPC_ENDPOINTS_MAX];
    size_t na = 0;
    struct answer *won = NULL;
    zl_class last = ZL_OUTAGE;
    char lasterr[ZL_ERRSTR_SIZE] = "no endpoint answered";
    for (size_t i = 0; i < d->nconfirm && won == NULL; i++) {
        json_t *logs = NULL;
        struct logs_digest dg;
        char err[ZL_ERRSTR_SIZE];
        zl_class c = read_endpoint(d, i, params, hi, &logs, &dg, err, sizeof(err));
        if (c != ZL_OK) {
            if (c != ZL_OUTAGE)
                last = ZL_TRANSIENT; /* all down is an outage; anything else is not */
            snprintf(lasterr, sizeof(lasterr), "%s: %s", d->confirm_label[i], err);
            continue;
        }
        struct answer *a = NULL;
        for (size_t k = 0; k < na && a == NULL; k++)
            if (digest_eq(&ans[k].dg, &dg))
                a = &ans[k];
        if (a != NULL) {
            json_decref(logs);
            a->votes++;
        } else {
            a = &ans[na++];
            a->logs = logs;
            a->dg = dg;
            a->votes = 1;
            a->first_ep = i;
        }
        if (a->votes >= d->o.confirm_k)
            won = a;
    }
    zl_class c = ZL_OK;
    if (won != NULL) {
        if (na > 1)
            log_disagreement(d, ans, na, lo, hi, false);
        *out = json_incref(won->logs);
    } else if (na > 1) {
        log_disagreement(d, ans, na, lo, hi, true);
        *held = true;
        int answered = 0;
        for (size_t k = 0; k < na; k++)
            answered += ans[k].votes;
        snprintf(errstr, errstr_size, "blocks %" PRIu64 "..%" PRIu64 ": %d endpoints answered, %zu different"
                 " answers, none from %d endpoints: range held", lo, hi, answered, na, d->o.confirm_k);
        c = ZL_TRANSIENT;
    } else {
        /* Too few answers: the last failure says why (a range cap is
         * handled by the caller like a refused request). */
        snprintf(errstr, errstr_size, "blocks %" PRIu64 "..%" PRIu64 ": %d endpoints must agree, %d answered alike"
                 "; last failure: %s", lo, hi, d->o.confirm_k, na > 0 ? ans[0].votes : 0, lasterr);
        c = na > 0 ? ZL_TRANSIENT : last;
    }
    for (size_t k = 0; k < na; k++)
        json_decref(ans[k].logs);
    return c;
}
