/* rpc.c: the Ethereum JSON-RPC client behind rpc.h.
 *
 * Every request goes through one engine (rpc_run_request): candidates are the
 * endpoints in rank order; the best one is asked first; when it fails the
 * next is asked at once (failover), and when it has not answered after
 * hedge_after_ms the next is asked too (hedging). The first good answer wins
 * and the requests still running are abandoned. All of it runs on one curl
 * multi handle, whose connection cache keeps connections alive between calls;
 * each endpoint owns one easy handle that is reused for every request.
 *
 * Endpoint URLs may carry API keys in their path or query, so logs, metrics
 * and health only ever show scheme://host[:port] (the endpoint's label).
 * Batches and quorum reads are in rpc_batch.c; the structs both files share
 * are in rpc_int.h.
 */
#include "rpc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "hex.h"
#include "log.h"
#include "rpc_int.h"

/* Largest response body accepted: eth_getLogs over a busy range can be large,
 * but a body bigger than this is a misbehaving endpoint, not data. */
#define RPC_RESPONSE_BYTES_MAX (64u * 1024u * 1024u)
/* Longest Retry-After honoured; a longer one is capped so a confused endpoint
 * cannot take itself out of rotation for hours. */
#define RPC_RETRY_AFTER_MAX_MS INT64_C(60000)
/* Rate-limit pause when the endpoint said 429 / -32005 without Retry-After. */
#define RPC_RATE_LIMIT_DEFAULT_MS INT64_C(1000)
/* Weight of the newest sample in the ranking averages. */
#define RPC_EWMA_ALPHA 0.2

static int curl_global_done;

/* ---------- helpers ---------- */

static void endpoint_label(const char *url, char *out, size_t out_size)
{
    const char *p = strstr(url, "://");
    const char *host = p != NULL ? p + 3 : url;
    const char *at = NULL;
    const char *end = host;
    while (*end != '\0' && *end != '/' && *end != '?' && *end != '#') {
        if (*end == '@')
            at = end;
        end++;
    }
    if (at != NULL)
        host = at + 1;
    int scheme_len = p != NULL ? (int)(p - url) : 0;
    snprintf(out, out_size, "%.*s%s%.*s", scheme_len, url, p != NULL ? "://" : "", (int)(end - host), host);
}

static size_t header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct rpc_endpoint *ep = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(buffer, name, sizeof(name) - 1) == 0) {
        char val[32];
        size_t vlen = n - (sizeof(name) - 1);
        if (vlen >= sizeof(val))
            vlen = sizeof(val) - 1;
        memcpy(val, buffer + sizeof(name) - 1, vlen);
        val[vlen] = '\0';
        char *s = val;
        while (*s == ' ' || *s == '\t')
            s++;
        char *end = NULL;
        errno = 0;
        long secs = strtol(s, &end, 10);
        if (end != s && errno == 0 && secs >= 0) {
            int64_t ms = (int64_t)secs * 1000;
            ep->retry_after_ms = ms > RPC_RETRY_AFTER_MAX_MS ? RPC_RETRY_AFTER_MAX_MS : ms;
        } else {
            /* an HTTP date: honour it as "a while" rather than parse dates */
            ep->retry_after_ms = RPC_RATE_LIMIT_DEFAULT_MS;
        }
    }
    return n;
}

int zl_rpc_parse_quantity(const json_t *v, uint64_t *out)
{
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len < 3 || !zl_hex_has_prefix(s))
        return -1;
    size_t i = 2;
    while (i < len - 1 && s[i] == '0')
        i++; /* leading zeros are not canonical, but harmless */
    if (len - i > 16)
        return -1;
    uint64_t val = 0;
    for (; i < len; i++) {
        int d = zl_hex_digit((unsigned char)s[i]);
        if (d < 0)
            return -1;
        val = (val << 4) | (uint64_t)d;
    }
    *out = val;
    return 0;
}

/* Rate limiting as providers spell it: -32005 (EIP-1474 "limit exceeded"),
 * and messages naming rate limits or request-per-second caps. Range caps on
 * eth_getLogs ("block range too large") are NOT rate limits: they go back to
 * the caller, who shrinks the range. */
static bool is_rate_limit_error(long code, const char *msg)
{
    if (code == -32005 || code == 429)
        return true;
    if (msg == NULL)
        return false;
    char low[256];
    size_t i = 0;
    for (; msg[i] != '\0' && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)msg[i]);
    low[i] = '\0';
    return strstr(low, "rate limit") != NULL || strstr(low, "too many requests") != NULL ||
           strstr(low, "exceeded the quota") != NULL || strstr(low, "capacity exceeded") != NULL;
}

void rpc_fill_error(const json_t *err, struct zl_rpc_error *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    json_t *code = json_object_get(err, "code");
    json_t *msg = json_object_get(err, "message");
    json_t *data = json_object_get(err, "data");
    out->code = json_is_integer(code) ? (long)json_integer_value(code) : 0;
    if (json_is_string(msg))
        snprintf(out->message, sizeof(out->message), "%s", json_string_value(msg));
    if (json_is_string(data)) {
        snprintf(out->data, sizeof(out->data), "%s", json_string_value(data));
    } else if (data != NULL && !json_is_null(data)) {
        char *txt = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (txt != NULL) {
            snprintf(out->data, sizeof(out->data), "%s", txt);
            free(txt);
        }
    }
}

/* ---------- response checks ---------- */

/* Judges one JSON-RPC response object. */
static enum ep_verdict judge_single(const json_t *resp, struct zl_rpc_error *err)
{
    if (!json_is_object(resp))
        return EP_BAD;
    json_t *e = json_object_get(resp, "error");
    if (e != NULL && !json_is_null(e)) {
        if (!json_is_object(e))
            return EP_BAD;
        struct zl_rpc_error tmp;
        rpc_fill_error(e, &tmp);
        if (err != NULL)
            *err = tmp;
        return is_rate_limit_error(tmp.code, tmp.message) ? EP_RATE_LIMITED : EP_RPC_ERROR;
    }
    if (json_object_get(resp, "result") == NULL)
        return EP_BAD;
    return EP_GOOD;
}

/* A batch answer must be an array holding one response per id we sent. */
static enum ep_verdict judge_batch(const json_t *resp, const struct batch_ctx *bc, struct zl_rpc_error *err)
{
    if (!json_is_array(resp) || json_array_size(resp) != bc->n)
        return EP_BAD;
    size_t i;
    json_t *item;
    json_array_foreach(resp, i, item) {
        json_t *id = json_object_get(item, "id");
        if (!json_is_integer(id))
            return EP_BAD;
        json_int_t v = json_integer_value(id);
        if (v < (json_int_t)bc->first_id || v >= (json_int_t)(bc->first_id + bc->n))
            return EP_BAD;
        struct zl_rpc_error tmp;
        enum ep_verdict vd = judge_single(item, &tmp);
        if (vd == EP_BAD || vd == EP_RATE_LIMITED) {
            if (err != NULL)
                *err = tmp;
            return vd;
        }
    }
    return EP_GOOD;
}

/* ---------- ranking, health, metrics ---------- */

static double rank_key(const struct rpc_endpoint *ep, int64_t now)
{
    double key = (1.0 - ep->success_ewma) * 10000.0 + ep->latency_ewma_ms;
    if (ep->rate_limited_until_ms > now)
        key += 1e9; /* still asked when nothing else is left */
    return key;
}

/* Fills order[] with endpoint indexes, best first; stable on ties so the
 * configured preference decides between equals. */
static void rank(struct zl_rpc *r, int *order)
{
    int64_t now = zl_now_ms();
    double keys[ZL_RPC_ENDPOINTS_MAX];
    for (int i = 0; i < r->n; i++) {
        order[i] = i;
        keys[i] = rank_key(&r->eps[i], now);
    }
    for (int i = 1; i < r->n; i++) { /* insertion sort: n <= 16 */
        int o = order[i];
        int j = i - 1;
        while (j >= 0 && keys[order[j]] > keys[o]) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = o;
    }
}

static const char *verdict_name(enum ep_verdict v)
{
    switch (v) {
    case EP_GOOD: return "ok";
    case EP_RPC_ERROR: return "rpc_error";
    case EP_RATE_LIMITED: return "rate_limited";
    case EP_BAD: return "bad_answer";
    case EP_DOWN: return "down";
    }
    return "unknown";
}

static void note_outcome(struct zl_rpc *r, struct rpc_endpoint *ep, enum ep_verdict v, int64_t elapsed_ms)
{
    bool ok = v == EP_GOOD || v == EP_RPC_ERROR;
    ep->success_ewma = (1 - RPC_EWMA_ALPHA) * ep->success_ewma + RPC_EWMA_ALPHA * (ok ? 1.0 : 0.0);
    ep->latency_ewma_ms = (1 - RPC_EWMA_ALPHA) * ep->latency_ewma_ms + RPC_EWMA_ALPHA * (double)elapsed_ms;
    zl_breaker_record(&ep->br, ok, zl_now_ms());
    if (r->metrics != NULL) {
        char esc[200];
        char labels[320];
        if (zl_metrics_label_escape(ep->label, esc, sizeof(esc)) != 0)
            snprintf(esc, sizeof(esc), "invalid");
        snprintf(labels, sizeof(labels), "dependency=\"%s\",endpoint=\"%s\",outcome=\"%s\"", r->name, esc,
                 verdict_name(v));
        zl_metrics_counter_add(r->metrics, "zl_rpc_requests_total", labels, 1);
        snprintf(labels, sizeof(labels), "dependency=\"%s\",endpoint=\"%s\"", r->name, esc);
        zl_metrics_observe(r->metrics, "zl_rpc_request_seconds", labels, (double)elapsed_ms / 1000.0);
    }
}

static void report_health(struct zl_rpc *r)
{
    if (r->health == NULL)
        return;
    int64_t now = zl_now_ms();
    int healthy = 0;
    for (int i = 0; i < r->n; i++) {
        zl_breaker_state s = zl_breaker_state_at(&r->eps[i].br, now);
        if (s == ZL_BREAKER_CLOSED || s == ZL_BREAKER_HALF_OPEN)
            healthy++;
    }
    if (healthy == r->last_healthy_reported)
        return;
    r->last_healthy_reported = healthy;
    char detail[128];
    snprintf(detail, sizeof(detail), "%d of %d endpoints admit calls", healthy, r->n);
    zl_health_set_dep(r->health, r->name, healthy > 0, healthy > 0 ? "up" : "down", detail);
}

/* ---------- the engine ---------- */

static void finish_transfer(struct zl_rpc *r, struct rpc_endpoint *ep)
{
    if (ep->running) {
        curl_multi_remove_handle(r->multi, ep->easy);
        ep->running = false;
    }
}

static int start_request(struct zl_rpc *r, struct rpc_endpoint *ep, const char *body, size_t body_len)
{
    zl_httpbuf_reset(&ep->body);
    ep->retry_after_ms = -1;
    curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    if (curl_multi_add_handle(r->multi, ep->easy) != CURLM_OK)
        return -1;
    ep->running = true;
    ep->started_ms = zl_now_ms();
    return 0;
}

/* Classifies a finished transfer; on EP_GOOD or EP_RPC_ERROR *parsed holds
 * the decoded body (new reference). */
static enum ep_verdict judge_transfer(struct zl_rpc *r, struct rpc_endpoint *ep, CURLcode cc,
                                      const struct batch_ctx *bc, json_t **parsed, struct zl_rpc_error *err,
                                      char *why, size_t why_size)
{
    (void)r;
    *parsed = NULL;
    /* Our write callback refused the body: too large, or no memory for it. */
    bool refused = ep->body.too_big || ep->body.no_memory;
    if (cc != CURLE_OK) {
        snprintf(why, why_size, "%s: %s", ep->label, refused ? "response too large" : curl_easy_strerror(cc));
        return refused ? EP_BAD : EP_DOWN;
    }
    long status = 0;
    curl_easy_getinfo(ep->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status == 429 || (ep->retry_after_ms >= 0 && status != 200)) {
        snprintf(why, why_size, "%s: rate limited (HTTP %ld)", ep->label, status);
        return EP_RATE_LIMITED;
    }
    if (status != 200) {
        snprintf(why, why_size, "%s: HTTP %ld", ep->label, status);
        return EP_BAD;
    }
    json_error_t jerr;
    /* anvil and geth put revert arguments into error.message as raw bytes,
     * \u0000 included: refusing them would call a healthy answer garbage. */
    json_t *body = json_loadb(zl_httpbuf_str(&ep->body), ep->body.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (body == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        size_t qlen = 0;
        char *quoted = zl_rpc_quote_big_ints(zl_httpbuf_str(&ep->body), ep->body.len, &qlen);
        if (quoted != NULL)
            body = json_loadb(quoted, qlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        free(quoted);
    }
    if (body == NULL) {
        snprintf(why, why_size, "%s: response is not JSON: %s", ep->label, jerr.text);
        return EP_BAD;
    }
    struct zl_rpc_error tmp;
    memset(&tmp, 0, sizeof(tmp));
    enum ep_verdict v = bc != NULL ? judge_batch(body, bc, &tmp) : judge_single(body, &tmp);
    if (v == EP_GOOD || v == EP_RPC_ERROR) {
        *parsed = body;
        if (v == EP_RPC_ERROR && err != NULL)
            *err = tmp;
        if (v == EP_RPC_ERROR)
            snprintf(why, why_size, "%s: JSON-RPC error %ld: %s", ep->label, tmp.code, tmp.message);
        return v;
    }
    json_decref(body);
    if (v == EP_RATE_LIMITED) {
        if (err != NULL)
            *err = tmp;
        snprintf(why, why_size, "%s: rate limited (JSON-RPC %ld: %s)", ep->label, tmp.code, tmp.message);
    } else {
        snprintf(why, why_size, "%s: malformed JSON-RPC response", ep->label);
    }
    return v;
}

/* Runs one request over the endpoints not in `skip`, with failover and
 * (when hedge is true) hedging. Returns ZL_OK with res->body on a good answer,
 * ZL_TRANSIENT with res->body and *err (answered) on a JSON-RPC error from a
 * healthy endpoint, ZL_OUTAGE when no endpoint could be reached (all refused
 * by their breaker or down), ZL_TRANSIENT otherwise. */
zl_class rpc_run_request(struct zl_rpc *r, const char *body, const struct batch_ctx *bc, const bool *skip, bool hedge,
                         struct engine_result *res, struct zl_rpc_error *err, char *errstr, size_t errstr_size)
{
    int order[ZL_RPC_ENDPOINTS_MAX];
    rank(r, order);
    res->body = NULL;
    res->endpoint = -1;
    size_t body_len = strlen(body);
    int next = 0;          /* next position in order[] to try */
    int running = 0;
    int tried = 0, down = 0, refused = 0;
    zl_class result = ZL_TRANSIENT;
    bool answered = false; /* a healthy endpoint answered with an error object */
    char last_why[ZL_ERRSTR_SIZE] = "no endpoint available";
    bool done = false;
    int64_t last_start_ms = 0;

    while (!done) {
        /* Start another request when nothing runs (failover) or the newest
         * one has stalled past the hedge delay. */
        bool want_start = running == 0 ||
                          (hedge && r->opts.hedge_after_ms > 0 &&
                           zl_now_ms() - last_start_ms >= r->opts.hedge_after_ms);
        while (want_start && next < r->n) {
            struct rpc_endpoint *ep = &r->eps[order[next++]];
            if (skip != NULL && skip[ep->index])
                continue;
            if (!zl_breaker_allow(&ep->br, zl_now_ms())) {
                refused++;
                snprintf(last_why, sizeof(last_why), "%s: circuit open", ep->label);
                continue;
            }
            if (start_request(r, ep, body, body_len) != 0) {
                zl_breaker_record(&ep->br, false, zl_now_ms());
                down++;
                continue;
            }
            tried++;
            running++;
            last_start_ms = zl_now_ms();
            want_start = false;
        }
        if (running == 0)
            break;

        int wait_ms = 100;
        if (hedge && r->opts.hedge_after_ms > 0 && next < r->n) {
            int64_t due = last_start_ms + r->opts.hedge_after_ms - zl_now_ms();
            wait_ms = due < 0 ? 0 : (due < wait_ms ? (int)due : wait_ms);
        }
        int still = 0;
        curl_multi_perform(r->multi, &still);
        CURLMsg *msg;
        int left = 0;
        while (!done && (msg = curl_multi_info_read(r->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct rpc_endpoint *ep = NULL;
            for (int i = 0; i < r->n; i++)
                if (r->eps[i].easy == msg->easy_handle)
                    ep = &r->eps[i];
            if (ep == NULL)
                continue;
            CURLcode cc = msg->data.result;
            finish_transfer(r, ep);
            running--;
            int64_t elapsed = zl_now_ms() - ep->started_ms;
            json_t *parsed = NULL;
            struct zl_rpc_error tmp;
            memset(&tmp, 0, sizeof(tmp));
            char why[ZL_ERRSTR_SIZE];
            enum ep_verdict v = judge_transfer(r, ep, cc, bc, &parsed, &tmp, why, sizeof(why));
            note_outcome(r, ep, v, elapsed);
            if (v == EP_GOOD || v == EP_RPC_ERROR) {
                res->body = parsed;
                res->endpoint = ep->index;
                res->verdict = v;
                if (v == EP_RPC_ERROR) {
                    tmp.answered = true;
                    if (err != NULL)
                        *err = tmp;
                    snprintf(errstr, errstr_size, "%s", why);
                    answered = true;
                    result = ZL_TRANSIENT;
                } else {
                    result = ZL_OK;
                }
                done = true;
                break;
            }
            if (v == EP_RATE_LIMITED) {
                int64_t pause = ep->retry_after_ms >= 0 ? ep->retry_after_ms : RPC_RATE_LIMIT_DEFAULT_MS;
                ep->rate_limited_until_ms = zl_now_ms() + pause;
                if (err != NULL)
                    *err = tmp;
            }
            if (v == EP_DOWN)
                down++;
            snprintf(last_why, sizeof(last_why), "%s", why);
            zl_log_kv(ZL_LOG_DEBUG, NULL, "rpc endpoint failed", "dependency", r->name, "error", why, NULL);
        }
        if (done)
            break;
        if (running > 0)
            curl_multi_poll(r->multi, NULL, 0, wait_ms, NULL);
    }

    /* Abandon hedged requests still running: the winner answered. A
     * request that outlived the hedge delay is slow, which ranking notes. */
    for (int i = 0; i < r->n; i++) {
        struct rpc_endpoint *ep = &r->eps[i];
        if (ep->running) {
            finish_transfer(r, ep);
            int64_t elapsed = zl_now_ms() - ep->started_ms;
            ep->latency_ewma_ms = (1 - RPC_EWMA_ALPHA) * ep->latency_ewma_ms + RPC_EWMA_ALPHA * (double)elapsed;
        }
    }
    report_health(r);
    if (result == ZL_OK || answered)
        return result;
    if (tried == 0 && refused == 0 && down == 0) {
        snprintf(errstr, errstr_size, "rpc %s: no endpoint left to ask", r->name);
        return ZL_TRANSIENT;
    }
    /* Every endpoint we could ask was unreachable or refused by its breaker. */
    if (down + refused >= tried + refused && down + refused > 0) {
        snprintf(errstr, errstr_size, "rpc %s: every endpoint is down or open (last: %s)", r->name, last_why);
        return ZL_OUTAGE;
    }
    snprintf(errstr, errstr_size, "rpc %s: no endpoint gave a usable answer (last: %s)", r->name, last_why);
    return ZL_TRANSIENT;
}

/* ---------- public API ---------- */

static void on_breaker_change(void *opaque, const char *name, zl_breaker_state old_state,
                              zl_breaker_state new_state)
{
    struct zl_rpc *r = opaque;
    zl_log_kv(new_state == ZL_BREAKER_OPEN ? ZL_LOG_WARN : ZL_LOG_INFO, NULL, "rpc endpoint breaker state change",
              "dependency", name, "from", zl_breaker_state_name(old_state), "to", zl_breaker_state_name(new_state),
              NULL);
    if (r->metrics != NULL) {
        char esc[200];
        char labels[320];
        if (zl_metrics_label_escape(name, esc, sizeof(esc)) != 0)
            snprintf(esc, sizeof(esc), "invalid");
        snprintf(labels, sizeof(labels), "dependency=\"%s\"", esc);
        zl_metrics_gauge_set(r->metrics, "zl_breaker_state", labels, (double)zl_breaker_state_metric(new_state));
    }
}

/* True for a host[:port] that names this machine: localhost, 127.0.0.0/8 or
 * [::1]. Plain http to it never crosses a network, so it needs no TLS. */
static bool host_is_loopback(const char *hostport)
{
    size_t n = strlen(hostport);
    if (strncmp(hostport, "[::1]", 5) == 0)
        return hostport[5] == '\0' || hostport[5] == ':';
    const char *colon = strchr(hostport, ':');
    size_t hl = colon != NULL ? (size_t)(colon - hostport) : n;
    if (hl == 9 && strncasecmp(hostport, "localhost", 9) == 0)
        return true;
    /* 127.a.b.c: four dotted decimal parts, the first 127 */
    if (hl < 9 || strncmp(hostport, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (size_t i = 4; i < hl; i++) {
        if (hostport[i] == '.')
            dots++;
        else if (!isdigit((unsigned char)hostport[i]))
            return false;
    }
    return dots == 2;
}

static int endpoint_init(struct zl_rpc *r, struct rpc_endpoint *ep, const char *url, size_t url_len, int index,
                         char *errstr, size_t errstr_size)
{
    if (url_len == 0 || url_len >= sizeof(ep->url)) {
        snprintf(errstr, errstr_size, "rpc urls: endpoint %d is empty or longer than %zu bytes", index + 1,
                 sizeof(ep->url) - 1);
        return -1;
    }
    memcpy(ep->url, url, url_len);
    ep->url[url_len] = '\0';
    if (strncmp(ep->url, "http://", 7) != 0 && strncmp(ep->url, "https://", 8) != 0) {
        endpoint_label(ep->url, ep->label, sizeof(ep->label));
        snprintf(errstr, errstr_size, "rpc urls: endpoint %d (%s) must start with http:// or https://", index + 1,
                 ep->label);
        return -1;
    }
    endpoint_label(ep->url, ep->label, sizeof(ep->label));
    if (strncmp(ep->url, "http://", 7) == 0 && !r->opts.allow_http && !host_is_loopback(ep->label + 7)) {
        snprintf(errstr, errstr_size,
                 "rpc urls: endpoint %d (%s) is plain http:// to a host that is not loopback: anyone on the path"
                 " can change its answers; use https://, or set ZL_RPC_ALLOW_HTTP=true to accept it",
                 index + 1, ep->label);
        return -1;
    }
    ep->index = index;
    ep->success_ewma = 1.0;
    ep->latency_ewma_ms = 0.0;

    struct zl_breaker_opts bo;
    zl_breaker_opts_default(&bo);
    if (r->opts.breaker_failure_ratio > 0)
        bo.failure_ratio = r->opts.breaker_failure_ratio;
    if (r->opts.breaker_sampling_ms > 0)
        bo.sampling_duration_ms = r->opts.breaker_sampling_ms;
    if (r->opts.breaker_min_throughput > 0)
        bo.minimum_throughput = r->opts.breaker_min_throughput;
    if (r->opts.breaker_break_ms > 0)
        bo.break_duration_ms = r->opts.breaker_break_ms;
    bo.on_state_change = on_breaker_change;
    bo.opaque = r;
    char bname[ZL_BREAKER_NAME_MAX];
    snprintf(bname, sizeof(bname), "%s:%s", r->name, ep->label);
    if (zl_breaker_init(&ep->br, bname, &bo, errstr, errstr_size) != 0)
        return -1;
    ep->br_ready = true;

    ep->easy = curl_easy_init();
    if (ep->easy == NULL) {
        snprintf(errstr, errstr_size, "rpc: curl_easy_init failed (out of memory)");
        return -1;
    }
    ep->headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(ep->easy, CURLOPT_URL, ep->url);
    curl_easy_setopt(ep->easy, CURLOPT_HTTPHEADER, ep->headers);
    zl_httpbuf_init(&ep->body, RPC_RESPONSE_BYTES_MAX);
    curl_easy_setopt(ep->easy, CURLOPT_WRITEFUNCTION, zl_httpbuf_write_cb);
    curl_easy_setopt(ep->easy, CURLOPT_WRITEDATA, &ep->body);
    curl_easy_setopt(ep->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(ep->easy, CURLOPT_HEADERDATA, ep);
    curl_easy_setopt(ep->easy, CURLOPT_TIMEOUT_MS, (long)r->opts.timeout_ms);
    curl_easy_setopt(ep->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)r->opts.timeout_ms);
    curl_easy_setopt(ep->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(ep->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(ep->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(ep->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(ep->easy, CURLOPT_FOLLOWLOCATION, 0L);
    return 0;
}

const char *zl_rpc_next_url(const char **cursor, size_t *len)
{
    const char *p = *cursor;
    while (*p == ' ' || *p == ',')
        p++;
    const char *end = p;
    while (*end != '\0' && *end != ',')
        end++;
    *cursor = end;
    while (end > p && end[-1] == ' ')
        end--;
    if (end == p)
        return NULL; /* only separators were left */
    *len = (size_t)(end - p);
    return p;
}

int zl_rpc_new(struct zl_rpc **out, const struct zl_rpc_opts *opts, char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (opts == NULL || opts->urls == NULL || opts->urls[0] == '\0') {
        snprintf(errstr, errstr_size, "rpc: no endpoint URLs given (set ZL_RPC_URLS, comma-separated)");
        return -1;
    }
    if (opts->timeout_ms <= 0 || opts->hedge_after_ms < 0) {
        snprintf(errstr, errstr_size, "rpc: timeout_ms must be > 0 and hedge_after_ms >= 0");
        return -1;
    }
    if (!curl_global_done) {
        /* Once per process; the first zl_rpc_new runs on the main thread
         * before workers start, as rpc.h's locality asks. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_global_done = 1;
    }
    struct zl_rpc *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(errstr, errstr_size, "rpc: out of memory");
        return -1;
    }
    r->opts = *opts;
    r->opts.urls = NULL; /* not kept: each URL is copied below */
    snprintf(r->name, sizeof(r->name), "%s", opts->name != NULL && opts->name[0] != '\0' ? opts->name : "rpc");
    r->opts.name = NULL;
    r->metrics = opts->metrics;
    r->health = opts->health;
    r->last_healthy_reported = -1;
    r->next_id = 1;
    r->multi = curl_multi_init();
    if (r->multi == NULL) {
        snprintf(errstr, errstr_size, "rpc: curl_multi_init failed (out of memory)");
        free(r);
        return -1;
    }
    curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)ZL_RPC_ENDPOINTS_MAX * 2);

    const char *cursor = opts->urls;
    const char *p;
    size_t len;
    while ((p = zl_rpc_next_url(&cursor, &len)) != NULL) {
        if (r->n >= ZL_RPC_ENDPOINTS_MAX) {
            snprintf(errstr, errstr_size, "rpc urls: more than %d endpoints", ZL_RPC_ENDPOINTS_MAX);
            goto fail;
        }
        if (endpoint_init(r, &r->eps[r->n], p, len, r->n, errstr, errstr_size) != 0) {
            r->n++; /* so fail: releases what was set up */
            goto fail;
        }
        r->n++;
    }
    if (r->n == 0) {
        snprintf(errstr, errstr_size, "rpc: no endpoint URLs given (set ZL_RPC_URLS, comma-separated)");
        goto fail;
    }
    if (r->opts.quorum < 1)
        r->opts.quorum = 1;
    if (r->opts.quorum > r->n) {
        snprintf(errstr, errstr_size, "rpc: quorum %d is larger than the %d endpoints configured", r->opts.quorum,
                 r->n);
        goto fail;
    }
    if (r->metrics != NULL) {
        zl_metrics_describe(r->metrics, "zl_rpc_requests_total", ZL_METRIC_COUNTER,
                            "JSON-RPC HTTP requests by endpoint and outcome");
        zl_metrics_describe(r->metrics, "zl_rpc_request_seconds", ZL_METRIC_HISTOGRAM,
                            "JSON-RPC HTTP request latency by endpoint");
        zl_metrics_describe(r->metrics, "zl_breaker_state", ZL_METRIC_GAUGE,
                            "circuit breaker state: 0 closed, 1 half-open, 2 open, 3 isolated");
        for (int i = 0; i < r->n; i++)
            on_breaker_change(r, r->eps[i].br.name, ZL_BREAKER_CLOSED, ZL_BREAKER_CLOSED);
    }
    report_health(r);
    *out = r;
    return 0;
fail:
    zl_rpc_free(r);
    return -1;
}

void zl_rpc_free(struct zl_rpc *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->n; i++) {
        struct rpc_endpoint *ep = &r->eps[i];
        if (ep->easy != NULL) {
            finish_transfer(r, ep);
            curl_easy_cleanup(ep->easy);
        }
        curl_slist_free_all(ep->headers);
        zl_httpbuf_free(&ep->body);
        if (ep->br_ready)
            zl_breaker_destroy(&ep->br);
    }
    if (r->multi != NULL)
        curl_multi_cleanup(r->multi);
    free(r);
}

/* Encodes {"jsonrpc":"2.0","id":id,"method":m,"params":p}; NULL on failure. */
json_t *rpc_make_request(uint64_t id, const char *method, json_t *params)
{
    json_t *req = json_object();
    if (req == NULL)
        return NULL;
    json_object_set_new(req, "jsonrpc", json_string("2.0"));
    json_object_set_new(req, "id", json_integer((json_int_t)id));
    json_object_set_new(req, "method", json_string(method));
    if (params != NULL)
        json_object_set(req, "params", params); /* borrowed: the object takes its own reference */
    else
        json_object_set_new(req, "params", json_array());
    return req;
}

zl_class rpc_call_once(struct zl_rpc *r, const char *method, json_t *params, const bool *skip, bool hedge,
                       json_t **result, int *endpoint, struct zl_rpc_error *rpc_err, char *errstr, size_t errstr_size)
{
    *result = NULL;
    json_t *req = rpc_make_request(r->next_id++, method, params);
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        snprintf(errstr, errstr_size, "rpc %s: cannot encode request (out of memory)", method);
        return ZL_TRANSIENT;
    }
    struct engine_result res;
    zl_class c = rpc_run_request(r, body, NULL, skip, hedge, &res, rpc_err, errstr, errstr_size);
    free(body);
    if (endpoint != NULL)
        *endpoint = res.endpoint;
    if (c == ZL_OK) {
        *result = json_incref(json_object_get(res.body, "result"));
    }
    json_decref(res.body);
    if (c != ZL_OK) {
        char tmp[ZL_ERRSTR_SIZE];
        snprintf(tmp, sizeof(tmp), "%s", errstr);
        snprintf(errstr, errstr_size, "%s: %s", method, tmp);
    }
    return c;
}

zl_class zl_rpc_call(struct zl_rpc *r, const char *method, json_t *params, json_t **result,
                     struct zl_rpc_error *rpc_err, char *errstr, size_t errstr_size)
{
    if (rpc_err != NULL)
        memset(rpc_err, 0, sizeof(*rpc_err));
    return rpc_call_once(r, method, params, NULL, true, result, NULL, rpc_err, errstr, errstr_size);
}

bool zl_rpc_any_healthy(struct zl_rpc *r)
{
    int64_t now = zl_now_ms();
    for (int i = 0; i < r->n; i++) {
        zl_breaker_state s = zl_breaker_state_at(&r->eps[i].br, now);
        if (s == ZL_BREAKER_CLOSED || s == ZL_BREAKER_HALF_OPEN)
            return true;
    }
    return false;
}

int zl_rpc_reset_breakers_named(struct zl_rpc *r, const char *dependency)
{
    if (dependency != NULL && strncmp(dependency, "rpc", 3) != 0)
        return 0;
    zl_rpc_reset_breakers(r);
    return 1;
}

void zl_rpc_reset_breakers(struct zl_rpc *r)
{
    int64_t now = zl_now_ms();
    for (int i = 0; i < r->n; i++) {
        zl_breaker_reset(&r->eps[i].br, now);
        r->eps[i].rate_limited_until_ms = 0;
    }
    r->last_healthy_reported = -1;
    report_health(r);
}

/* Whether digits[0..n) (no sign) exceed an int64's magnitude, given neg. */
static bool too_big(const char *digits, size_t n, bool neg)
{
    static const char max_pos[] = "9223372036854775807", max_neg[] = "9223372036854775808";
    const size_t width = sizeof(max_pos) - 1;
    while (n > 1 && digits[0] == '0') { /* not valid JSON, but not ours to judge */
        digits++;
        n--;
    }
    if (n != width)
        return n > width;
    return memcmp(digits, neg ? max_neg : max_pos, width) > 0;
}

char *zl_rpc_quote_big_ints(const char *in, size_t len, size_t *out_len)
{
    /* each quoted integer has at least 19 digits and gains 2 quotes */
    size_t cap = len + 2 * (len / 19 + 1) + 1;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    bool in_string = false;
    for (size_t i = 0; i < len;) {
        char c = in[i];
        if (in_string) {
            out[o++] = c;
            if (c == '\\' && i + 1 < len)
                out[o++] = in[++i];
            else if (c == '"')
                in_string = false;
            i++;
            continue;
        }
        if (c == '"') {
            in_string = true;
            out[o++] = in[i++];
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            out[o++] = in[i++];
            continue;
        }
        size_t start = i, end = i + (c == '-');
        bool integer = true;
        while (end < len && ((in[end] >= '0' && in[end] <= '9') || in[end] == '.' || in[end] == 'e' ||
                             in[end] == 'E' || in[end] == '+' || in[end] == '-')) {
            if (in[end] < '0' || in[end] > '9')
                integer = false;
            end++;
        }
        size_t digits = start + (c == '-');
        bool quote = integer && end > digits && too_big(in + digits, end - digits, c == '-');
        if (quote)
            out[o++] = '"';
        memcpy(out + o, in + start, end - start);
        o += end - start;
        if (quote)
            out[o++] = '"';
        i = end > start ? end : start + 1;
    }
    ZL_ASSERT(o < cap);
    out[o] = '\0';
    *out_len = o;
    return out;
}
