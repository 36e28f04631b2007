/* rates.c: rates with a cache, a primary source and fallbacks (rates.h). */
#include "rates.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "httpbuf.h"

/* Longest URL built from the template (the token adds 42 bytes). */
#define RATES_URL_BYTES_MAX 2048

static const char *const SOURCE_NAMES[ZL_RATE_SRC_COUNT] = {"db", "http", "stale_cache", "static"};

const char *zl_rate_source_name(zl_rate_source s)
{
    if ((int)s < 0 || (int)s >= ZL_RATE_SRC_COUNT)
        return "unknown";
    return SOURCE_NAMES[s];
}

int zl_rate_normalize(const char *in, char *out, size_t out_size)
{
    ZL_ASSERT(out != NULL && out_size >= ZL_RATE_SIZE);
    out[0] = '\0';
    if (in == NULL)
        return -1;
    size_t n = strnlen(in, ZL_RATE_SIZE * 4);
    const char *dot = memchr(in, '.', n);
    size_t int_len = dot != NULL ? (size_t)(dot - in) : n;
    size_t frac_len = dot != NULL ? n - int_len - 1 : 0;
    if (int_len == 0 || (dot != NULL && frac_len == 0))
        return -1; /* ".5" and "5." are not rates */
    for (size_t i = 0; i < n; i++)
        if (in + i != dot && !isdigit((unsigned char)in[i]))
            return -1;
    const char *ip = in;
    while (int_len > 1 && *ip == '0') {
        ip++;
        int_len--;
    }
    const char *fp = dot != NULL ? dot + 1 : "";
    while (frac_len > 0 && fp[frac_len - 1] == '0')
        frac_len--;
    if (frac_len > ZL_RATE_FRAC_DIGITS_MAX)
        return -1;
    if (int_len == 1 && ip[0] == '0' && frac_len == 0)
        return -1; /* zero: nobody deposits to be credited nothing */
    size_t len = int_len + (frac_len > 0 ? 1 + frac_len : 0);
    if (len + 1 > ZL_RATE_SIZE || len + 1 > out_size)
        return -1;
    memcpy(out, ip, int_len);
    if (frac_len > 0) {
        out[int_len] = '.';
        memcpy(out + int_len + 1, fp, frac_len);
    }
    out[len] = '\0';
    ZL_ASSERT(zl_valid_rate(out));
    return 0;
}

int zl_rates_init(struct zl_rates *r, const struct zl_rates_opts *o, char *errstr, size_t errstr_size)
{
    memset(r, 0, sizeof(*r));
    if (o->fetch == NULL || (o->primary != ZL_RATE_SRC_DB && o->primary != ZL_RATE_SRC_HTTP)) {
        snprintf(errstr, errstr_size, "rates: primary source must be db or http with a fetch function");
        return -1;
    }
    if (o->ttl_ms < 0 || o->stale_max_ms < o->ttl_ms) {
        snprintf(errstr, errstr_size, "rates: ttl_ms (%lld) must be >= 0 and stale_max_ms (%lld) >= ttl_ms",
                 (long long)o->ttl_ms, (long long)o->stale_max_ms);
        return -1;
    }
    if (o->static_rate != NULL && o->static_rate[0] != '\0' &&
        zl_rate_normalize(o->static_rate, r->static_rate, sizeof(r->static_rate)) != 0) {
        snprintf(errstr, errstr_size,
                 "rates: static rate \"%s\" is not a positive decimal (digits, one optional '.', at most %d "
                 "fraction digits)",
                 o->static_rate, ZL_RATE_FRAC_DIGITS_MAX);
        return -1;
    }
    r->opts = *o;
    r->opts.static_rate = NULL; /* copied into r->static_rate */
    return 0;
}

static struct zl_rates_entry *cache_find(struct zl_rates *r, const char *token)
{
    for (size_t i = 0; i < ZL_RATES_CACHE_MAX; i++)
        if (r->cache[i].used && strcmp(r->cache[i].token, token) == 0)
            return &r->cache[i];
    return NULL;
}

static void cache_put(struct zl_rates *r, const char *token, const char *rate, zl_rate_source src, int64_t now_ms)
{
    struct zl_rates_entry *e = cache_find(r, token);
    for (size_t i = 0; e == NULL && i < ZL_RATES_CACHE_MAX; i++)
        if (!r->cache[i].used)
            e = &r->cache[i];
    if (e == NULL) { /* full: replace the oldest */
        e = &r->cache[0];
        for (size_t i = 1; i < ZL_RATES_CACHE_MAX; i++)
            if (r->cache[i].fetched_ms < e->fetched_ms)
                e = &r->cache[i];
    }
    memcpy(e->token, token, strlen(token) + 1);
    memcpy(e->rate, rate, strlen(rate) + 1);
    e->source = src;
    e->fetched_ms = now_ms;
    e->used = true;
}

/* Calls the primary through the breaker; normalizes its answer. ZL_OK with
 * rate "" is the source's answer that it has no rate for the token. */
static zl_class fetch_primary(struct zl_rates *r, const char *token, int64_t now_ms, char *rate, char *errstr,
                              size_t errstr_size)
{
    rate[0] = '\0';
    if (r->opts.breaker != NULL && !zl_breaker_allow(r->opts.breaker, now_ms)) {
        snprintf(errstr, errstr_size, "%s rate source: circuit breaker %s is open",
                 zl_rate_source_name(r->opts.primary), r->opts.breaker->name);
        return ZL_OUTAGE;
    }
    char raw[ZL_RATE_SIZE] = "";
    zl_class c = r->opts.fetch(r->opts.opaque, token, raw, sizeof(raw), errstr, errstr_size);
    if (c == ZL_OK && raw[0] != '\0' && zl_rate_normalize(raw, rate, ZL_RATE_SIZE) != 0) {
        snprintf(errstr, errstr_size, "%s rate source gave \"%s\" for %s: not a positive decimal rate",
                 zl_rate_source_name(r->opts.primary), raw, token);
        c = ZL_TRANSIENT; /* a broken answer: the source is unhealthy, not the deposit */
    }
    /* A source that answered (a rate, "none", or a refusal of the query
     * itself) is up; only down and broken answers count against it. */
    if (r->opts.breaker != NULL)
        zl_breaker_record(r->opts.breaker, c == ZL_OK || c == ZL_PERMANENT, zl_now_ms());
    return c;
}

/* The rate's key: an EVM address lower-cased, or a Solana mint as given
 * (base58: its case is part of it). */
static bool lower_token(const char *token, char out[ZL_EVENT_ADDR_SIZE])
{
    if (token != NULL && zl_valid_sol_key(token)) {
        snprintf(out, ZL_EVENT_ADDR_SIZE, "%s", token);
        return true;
    }
    if (token == NULL || !zl_valid_address(token))
        return false;
    for (size_t i = 0; i < ZL_ADDRESS_HEX_SIZE - 1; i++)
        out[i] = (char)tolower((unsigned char)token[i]);
    out[ZL_ADDRESS_HEX_SIZE - 1] = '\0';
    return true;
}

zl_class zl_rates_get(struct zl_rates *r, const char *token, int64_t now_ms, struct zl_rate *out, char *errstr,
                      size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    char tok[ZL_EVENT_ADDR_SIZE];
    if (!lower_token(token, tok)) {
        snprintf(errstr, errstr_size, "rates: token \"%s\" is not an address", token ? token : "(null)");
        return ZL_PERMANENT;
    }
    memcpy(r->last_token, tok, sizeof(tok));
    struct zl_rates_entry *e = cache_find(r, tok);
    if (e != NULL && now_ms - e->fetched_ms < r->opts.ttl_ms) {
        memcpy(out->value, e->rate, sizeof(out->value));
        out->source = e->source;
        out->age_ms = now_ms - e->fetched_ms;
        return ZL_OK;
    }
    char rate[ZL_RATE_SIZE];
    char why[ZL_ERRSTR_SIZE] = "";
    zl_class c = fetch_primary(r, tok, now_ms, rate, why, sizeof(why));
    if (c == ZL_OK && rate[0] == '\0') {
        /* Decided from the answer: nobody priced this token. No fallback,
         * so it is dead-lettered with the reason, not credited at a guess. */
        snprintf(errstr, errstr_size, "no rate for token %s: %s", tok, why[0] != '\0' ? why : "the source has none");
        return ZL_PERMANENT;
    }
    if (c == ZL_OK) {
        cache_put(r, tok, rate, r->opts.primary, now_ms);
        memcpy(out->value, rate, sizeof(out->value));
        out->source = r->opts.primary;
        return ZL_OK;
    }
    if (c == ZL_PERMANENT) {
        /* The source refused the query itself: the class it decided, with
         * no fallback either. */
        snprintf(errstr, errstr_size, "no rate for token %s: %s", tok, why);
        return c;
    }
    e = cache_find(r, tok); /* the fetch did not touch the cache, but be plain */
    if (e != NULL && now_ms - e->fetched_ms < r->opts.stale_max_ms) {
        memcpy(out->value, e->rate, sizeof(out->value));
        out->source = ZL_RATE_SRC_STALE_CACHE;
        out->age_ms = now_ms - e->fetched_ms;
        return ZL_OK;
    }
    if (r->static_rate[0] != '\0') {
        memcpy(out->value, r->static_rate, sizeof(out->value));
        out->source = ZL_RATE_SRC_STATIC;
        return ZL_OK;
    }
    snprintf(errstr, errstr_size, "no rate for token %s: %s; no cached value younger than %lld ms and no static rate",
             tok, why, (long long)r->opts.stale_max_ms);
    return c;
}

zl_class zl_rates_probe(struct zl_rates *r, int64_t now_ms, char *errstr, size_t errstr_size)
{
    if (r->last_token[0] == '\0')
        return ZL_OK;
    char rate[ZL_RATE_SIZE];
    zl_class c = fetch_primary(r, r->last_token, now_ms, rate, errstr, errstr_size);
    if (c == ZL_OK && rate[0] != '\0')
        cache_put(r, r->last_token, rate, r->opts.primary, now_ms);
    return c; /* ZL_OK also for "no rate": the source answered */
}

/* ---- the credit_rates table ---- */

static const char SQL_RATE[] =
    "SELECT rate::text FROM credit_rates WHERE token = $1 AND effective_from <= now()"
    " ORDER BY effective_from DESC LIMIT 1";

int zl_rates_db_prepare(struct zl_pg *p)
{
    return zl_pg_add_stmt(p, "zl_rates_db", SQL_RATE, 1);
}

zl_class zl_rates_db_fetch(void *opaque, const char *token, char *rate, size_t rate_size, char *errstr,
                           size_t errstr_size)
{
    struct zl_pg *p = opaque;
    const char *params[1] = {token};
    zl_class c;
    PGresult *res = zl_pg_prepared(p, "zl_rates_db", 1, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (res == NULL)
        return c;
    if (PQntuples(res) == 0) {
        PQclear(res);
        rate[0] = '\0';
        snprintf(errstr, errstr_size,
                 "credit_rates has no row effective now for token %s: insert one, then replay the DLQ", token);
        return ZL_OK; /* an answer: no rate */
    }
    const char *v = PQgetvalue(res, 0, 0);
    size_t len = strlen(v);
    if (len >= rate_size) {
        PQclear(res);
        snprintf(errstr, errstr_size, "credit_rates: rate for %s has %zu characters, more than %zu", token, len,
                 rate_size - 1);
        return ZL_TRANSIENT;
    }
    memcpy(rate, v, len + 1);
    PQclear(res);
    return ZL_OK;
}

/* ---- the HTTP price source ---- */

int zl_rates_parse_http_body(const char *body, size_t len, char *rate, size_t rate_size, char *errstr,
                             size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(errstr, errstr_size, "price source: body is not JSON: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    json_t *v = json_is_object(root) ? json_object_get(root, "rate") : NULL;
    if (v == NULL || !json_is_string(v)) {
        snprintf(errstr, errstr_size, "price source: expected {\"rate\": \"<decimal string>\"}");
    } else if (zl_rate_normalize(json_string_value(v), rate, rate_size) != 0) {
        snprintf(errstr, errstr_size, "price source: rate is not a positive decimal string");
    } else {
        rc = 0;
    }
    json_decref(root);
    return rc;
}

static int build_url(const char *tmpl, const char *token, char *out, size_t out_size)
{
    const char *at = strstr(tmpl, "{token}");
    int n;
    if (at == NULL)
        n = snprintf(out, out_size, "%s", tmpl);
    else
        n = snprintf(out, out_size, "%.*s%s%s", (int)(at - tmpl), tmpl, token, at + strlen("{token}"));
    return n < 0 || (size_t)n >= out_size ? -1 : 0;
}

zl_class zl_rates_http_fetch(void *opaque, const char *token, char *rate, size_t rate_size, char *errstr,
                             size_t errstr_size)
{
    const struct zl_rates_http *h = opaque;
    char url[RATES_URL_BYTES_MAX];
    if (build_url(h->url_template, token, url, sizeof(url)) != 0) {
        snprintf(errstr, errstr_size, "price source: URL longer than %d bytes", RATES_URL_BYTES_MAX);
        return ZL_TRANSIENT;
    }
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(errstr, errstr_size, "price source: curl_easy_init failed");
        return ZL_TRANSIENT;
    }
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, ZL_RATES_HTTP_BODY_BYTES_MAX);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, zl_httpbuf_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "zeroloss-credit/1");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    zl_class cls = ZL_TRANSIENT;
    /* The URL may carry an API key: errors name the token, not the URL. */
    if (rc != CURLE_OK) {
        snprintf(errstr, errstr_size, "price source for %s: %s", token,
                 b.too_big ? "body too large" : (cerr[0] != '\0' ? cerr : curl_easy_strerror(rc)));
        cls = rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ? ZL_OUTAGE : ZL_TRANSIENT;
    } else if (status != 200) {
        snprintf(errstr, errstr_size, "price source for %s: HTTP %ld", token, status);
    } else if (zl_rates_parse_http_body(zl_httpbuf_str(&b), b.len, rate, rate_size, errstr, errstr_size) == 0) {
        cls = ZL_OK;
    }
    zl_httpbuf_free(&b);
    return cls;
}
