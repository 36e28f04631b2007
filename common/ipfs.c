/* ipfs.c: the IPFS client (ipfs.h): what one provider call means for an
 * object, the gateway check, the probe, setup. The providers' own requests
 * are in ipfs_kubo.c and ipfs_pinning.c, their scheduling (bulkheads) in
 * ipfs_par.c. */
#include "ipfs.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cid.h"
#include "health.h"
#include "ipfs_int.h"
#include "log.h"
#include "metrics.h"

/* Characters of a non-2xx answer's body quoted in the error: enough for a
 * provider's message, short enough for one log line. */
#define HTTP_ERROR_SNIPPET_CHARS 150
/* One metric's label set: stage (63 characters at most) and a provider's
 * label or breaker name (47) with their quoting fit with room to spare. */
#define PROVIDER_LABELS_SIZE 160

const char *ipfs_attempt_name(enum attempt a)
{
    switch (a) {
    case A_OK: return "ok";
    case A_DOWN: return "down";
    case A_BUSY: return "busy";
    case A_BAD: return "bad_answer";
    case A_MISMATCH: return "cid_mismatch";
    }
    return "unknown";
}

zl_class ipfs_attempt_class(enum attempt a)
{
    switch (a) {
    case A_OK: return ZL_OK;
    case A_DOWN: return ZL_OUTAGE;
    case A_BUSY: return ZL_TRANSIENT;
    case A_BAD: return ZL_TRANSIENT;
    case A_MISMATCH: return ZL_PERMANENT;
    }
    return ZL_TRANSIENT;
}

/* ------------------------------------------------------------------- shared */

/* A CID as text: 10..120 of [A-Za-z0-9]. Enough to copy it out safely; the
 * caller compares it with its own. */
int ipfs_copy_cid(const char *what, json_t *v, char *cid, size_t cid_size, char *errstr, size_t errstr_size)
{
    const char *s = json_string_value(v);
    if (s == NULL) {
        snprintf(errstr, errstr_size, "%s: no CID string", what);
        return -1;
    }
    size_t n = strlen(s);
    if (n < 10 || n > 120 || n + 1 > cid_size || n != json_string_length(v)) {
        snprintf(errstr, errstr_size, "%s: CID of %zu characters is not plausible", what, json_string_length(v));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            snprintf(errstr, errstr_size, "%s: CID has a character outside [A-Za-z0-9]", what);
            return -1;
        }
    }
    memcpy(cid, s, n + 1);
    return 0;
}

/* --------------------------------------------------------------------- http */

void ipfs_resp_free(struct http_resp *r) { zl_httpbuf_free(&r->body); }

/* One request. method "GET", "POST" or "DELETE"; for POST either mime or
 * json (or neither: an empty body). Never fails as a C call: the outcome is
 * in r. */
void ipfs_http_do(CURL *h, const char *method, const char *url, struct curl_slist *hdrs, curl_mime *mime,
                    const char *json, int64_t timeout_ms, int64_t connect_timeout_ms, size_t body_max,
                    struct http_resp *r)
{
    memset(r, 0, sizeof(*r));
    zl_httpbuf_init(&r->body, body_max);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect could carry the bearer token elsewhere */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, zl_httpbuf_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "zeroloss-ipfs-upload/1");
    if (hdrs != NULL)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "POST") == 0) {
        if (mime != NULL) {
            curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
        } else {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, json != NULL ? json : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(json != NULL ? strlen(json) : 0));
        }
    } else if (strcmp(method, "DELETE") == 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE"); /* reset by curl_easy_reset above */
    }
    r->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->cc != CURLE_OK)
        r->status = r->body.too_big ? r->status : 0;
}

/* Classifies the HTTP side of an answer; A_OK means a 2xx to be parsed. */
enum attempt ipfs_http_outcome(const struct http_resp *r, char *err, size_t err_size)
{
    if (r->body.too_big) {
        snprintf(err, err_size, "answer larger than %zu bytes", r->body.max_bytes);
        return A_BAD;
    }
    if (r->cc != CURLE_OK) {
        snprintf(err, err_size, "%s", r->curl_err[0] != '\0' ? r->curl_err : curl_easy_strerror(r->cc));
        return A_DOWN;
    }
    if (r->status >= 200 && r->status < 300)
        return A_OK;
    char snippet[HTTP_ERROR_SNIPPET_CHARS + 1];
    snprintf(snippet, sizeof(snippet), "%.*s", HTTP_ERROR_SNIPPET_CHARS, zl_httpbuf_str(&r->body));
    for (char *p = snippet; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    snprintf(err, err_size, "HTTP %ld: %s", r->status, snippet);
    if (r->status >= 500 || r->status == 401 || r->status == 403)
        return A_DOWN;
    if (r->status == 429)
        return A_BUSY;
    return A_BAD;
}

/* ---------------------------------------------------------------- providers */

static const char *kind_name(zl_ipfs_kind k)
{
    switch (k) {
    case ZL_IPFS_KUBO: return "kubo";
    case ZL_IPFS_PINATA: return "pinata";
    case ZL_IPFS_PSA: return "psa";
    }
    return "unknown";
}

/* Publishes the aggregate "ipfs" dependency from the cached breaker states.
 * Called under one breaker's lock: touches only atomics, health and metrics. */
static void publish_health(struct zl_ipfs *c)
{
    if (c->health == NULL)
        return;
    int up = 0;
    char detail[256];
    size_t off = 0;
    detail[0] = '\0';
    for (int i = 0; i < c->nprov; i++) {
        int s = atomic_load(&c->prov[i].state);
        if (s == ZL_BREAKER_CLOSED || s == ZL_BREAKER_HALF_OPEN)
            up++;
        int n = snprintf(detail + off, sizeof(detail) - off, "%s%s %s", i > 0 ? ", " : "", c->prov[i].label,
                         zl_breaker_state_name((zl_breaker_state)s));
        if (n < 0 || (size_t)n >= sizeof(detail) - off)
            break;
        off += (size_t)n;
    }
    zl_health_set_dep(c->health, "ipfs", up >= c->pin_k, up >= c->pin_k ? "up" : "down", detail);
}

static void on_breaker_change(void *opaque, const char *name, zl_breaker_state old_state, zl_breaker_state new_state)
{
    struct provider *p = opaque;
    struct zl_ipfs *c = p->owner;
    atomic_store(&p->state, (int)new_state);
    zl_log_kv(new_state == ZL_BREAKER_OPEN ? ZL_LOG_WARN : ZL_LOG_INFO, NULL, "circuit breaker state change",
              "dependency", name, "from", zl_breaker_state_name(old_state), "to", zl_breaker_state_name(new_state),
              NULL);
    if (c->metrics != NULL) {
        char labels[PROVIDER_LABELS_SIZE];
        snprintf(labels, sizeof(labels), "stage=\"%s\",dependency=\"%s\"", c->stage, name);
        zl_metrics_gauge_set(c->metrics, "zl_breaker_state", labels, (double)zl_breaker_state_metric(new_state));
    }
    publish_health(c);
}

void ipfs_count(struct zl_ipfs *c, const char *family, const char *who_label, const char *who, const char *outcome)
{
    if (c->metrics == NULL)
        return;
    char esc[96], labels[256];
    if (zl_metrics_label_escape(who, esc, sizeof(esc)) != 0)
        snprintf(esc, sizeof(esc), "invalid");
    snprintf(labels, sizeof(labels), "stage=\"%s\",%s=\"%s\",outcome=\"%s\"", c->stage, who_label, esc, outcome);
    zl_metrics_counter_add(c->metrics, family, labels, 1);
}

struct curl_slist *ipfs_auth_headers(const struct zl_ipfs *c, const struct provider *p, bool json)
{
    struct curl_slist *h = NULL;
    const char *auth = p->kind == ZL_IPFS_PINATA ? c->pinata_auth : p->kind == ZL_IPFS_PSA ? c->psa_auth : NULL;
    if (auth != NULL)
        h = curl_slist_append(h, auth);
    if (json)
        h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    return h;
}

enum attempt ipfs_post_mime(struct zl_ipfs *c, struct provider *p, CURL *h, const char *url, curl_mime *mime,
                            struct http_resp *r, char *err, size_t err_size)
{
    struct curl_slist *hdrs = ipfs_auth_headers(c, p, false);
    ipfs_http_do(h, "POST", url, hdrs, mime, NULL, c->timeout_ms, c->connect_timeout_ms,
                 ZL_IPFS_RESPONSE_MAX_BYTES, r);
    curl_slist_free_all(hdrs);
    curl_mime_free(mime);
    return ipfs_http_outcome(r, err, err_size);
}

void ipfs_pin_record(struct zl_ipfs *c, struct provider *p, struct zl_ipfs_obj *o, struct pin_tally *t,
                     enum attempt a, const char *got, const char *err)
{
    zl_class ac = ipfs_attempt_class(a);
    ipfs_count(c, "zl_ipfs_pins_total", "provider", p->label, ipfs_attempt_name(a));
    if (ac == ZL_OK) {
        t->pinned++;
        return;
    }
    if (ac == ZL_PERMANENT) { /* another CID: no other provider can undo that */
        if (p->m_mismatch != NULL) /* metrics are optional (ipfs.h) */
            zl_metric_counter_add(p->m_mismatch, 1);
        zl_log_kv(ZL_LOG_ERROR, NULL, "IPFS provider returned another CID than the content's", "provider", p->label,
                  "expected", o->cid, "got", got, NULL);
        snprintf(o->error, sizeof(o->error), "IPFS provider %s (%s) %s: its settings (CID version, raw "
                 "leaves, chunker, hash) differ from ours, or it stored other bytes; fix it or remove it "
                 "from ZL_IPFS_PROVIDERS, then replay", p->label, p->url, err);
        t->mismatch = true;
        return;
    }
    if (ac == ZL_OUTAGE)
        t->down++;
    if (t->mismatch)
        return; /* the mismatch's message is the one that matters */
    int w = snprintf(o->error + t->off, sizeof(o->error) - t->off, "%s%s %s: %s", t->off > 0 ? "; " : "", p->label,
                     ipfs_attempt_name(a), err);
    if (w > 0 && (size_t)w < sizeof(o->error) - t->off)
        t->off += (size_t)w;
}

void ipfs_pin_result(const struct zl_ipfs *c, struct zl_ipfs_obj *o, const struct pin_tally *t)
{
    if (t->mismatch) {
        o->result = ZL_PERMANENT;
    } else if (t->pinned >= c->pin_k) {
        o->result = ZL_OK;
        o->error[0] = '\0';
    } else {
        /* Each provider's class was decided at its call: too few not
         * down to reach pin_k is an outage, else a retry may pin it. */
        char why[ZL_ERRSTR_SIZE];
        snprintf(why, sizeof(why), "pinned %s to %d of %d required providers (%s)", o->cid, t->pinned, c->pin_k,
                 o->error);
        snprintf(o->error, sizeof(o->error), "%s", why);
        o->result = c->nprov - t->down < c->pin_k ? ZL_OUTAGE : ZL_TRANSIENT;
    }
}

zl_class zl_ipfs_pin(struct zl_ipfs *c, const void *data, size_t len, const char *name, const char *cid,
                     char *errstr, size_t errstr_size)
{
    struct zl_ipfs_obj o = {.data = data, .len = len, .name = name, .cid = cid};
    zl_ipfs_pin_many(c, &o, 1);
    snprintf(errstr, errstr_size, "%s", o.error);
    return o.result;
}

enum attempt ipfs_gateway_check(struct zl_ipfs *c, int gw, CURL *h, const void *data, size_t len, const char *cid,
                                char *err, size_t err_size)
{
    char url[ZL_IPFS_URL_MAX + 96];
    snprintf(url, sizeof(url), "%s/ipfs/%s", c->gw[gw], cid);
    struct http_resp r;
    ipfs_http_do(h, "GET", url, NULL, NULL, NULL, c->gateway_timeout_ms, c->connect_timeout_ms, len + 1, &r);
    enum attempt a = ipfs_http_outcome(&r, err, err_size);
    if (a == A_OK) {
        char fetched[ZL_CID_SIZE];
        char cerr[ZL_ERRSTR_SIZE];
        if (zl_cid_raw_v1(r.body.data, r.body.len, fetched, sizeof(fetched), cerr, sizeof(cerr)) != 0 ||
            strcmp(fetched, cid) != 0 || r.body.len != len || (len > 0 && memcmp(r.body.data, data, len) != 0)) {
            snprintf(err, err_size, "served %zu bytes that do not hash to %s", r.body.len, cid);
            a = A_MISMATCH;
        }
    }
    ipfs_resp_free(&r);
    ipfs_count(c, "zl_ipfs_gateway_checks_total", "gateway", c->gw[gw], ipfs_attempt_name(a));
    if (a != A_OK)
        zl_log_kv(ZL_LOG_WARN, NULL, "IPFS gateway check failed, trying the next gateway", "gateway", c->gw[gw], "cid",
                  cid, "error", err, NULL);
    return a;
}

zl_class zl_ipfs_verify(struct zl_ipfs *c, const void *data, size_t len, const char *cid, char *errstr,
                        size_t errstr_size)
{
    if (!c->verify)
        return ZL_OK;
    int down = 0;
    size_t off = 0;
    errstr[0] = '\0';
    for (int i = 0; i < c->ngw; i++) {
        char err[ZL_ERRSTR_SIZE];
        enum attempt a = ipfs_gateway_check(c, i, c->gw_curl, data, len, cid, err, sizeof(err));
        if (a == A_OK)
            return ZL_OK;
        if (a == A_DOWN)
            down++;
        int n = snprintf(errstr + off, errstr_size - off, "%s%s: %s", off > 0 ? "; " : "", c->gw[i], err);
        if (n > 0 && (size_t)n < errstr_size - off)
            off += (size_t)n;
    }
    char why[ZL_ERRSTR_SIZE];
    snprintf(why, sizeof(why), "%s not retrievable through any gateway (%s)", cid, errstr);
    snprintf(errstr, errstr_size, "%s", why);
    return down == c->ngw ? ZL_OUTAGE : ZL_TRANSIENT;
}

int zl_ipfs_reset_breakers(struct zl_ipfs *c, const char *dependency)
{
    int n = 0;
    bool all = dependency == NULL || strcmp(dependency, "ipfs") == 0;
    for (int i = 0; i < c->nprov; i++) {
        struct provider *p = &c->prov[i];
        if (!p->breaker_inited || !(all || strcmp(dependency, p->dep) == 0))
            continue;
        zl_breaker_reset(&p->breaker, zl_now_ms()); /* its callback updates health and the gauge */
        n++;
    }
    return n;
}

zl_class zl_ipfs_probe(struct zl_ipfs *c, char *errstr, size_t errstr_size)
{
    int up = 0;
    errstr[0] = '\0';
    for (int i = 0; i < c->nprov && up < c->pin_k; i++) {
        struct provider *p = &c->prov[i];
        if (!zl_breaker_allow(&p->breaker, zl_now_ms()))
            continue;
        char url[ZL_IPFS_URL_MAX + 64], err[ZL_ERRSTR_SIZE];
        const char *method = "GET";
        if (p->kind == ZL_IPFS_KUBO) {
            snprintf(url, sizeof(url), "%s/api/v0/version", p->url); /* Kubo RPC takes POST only */
            method = "POST";
        } else if (p->kind == ZL_IPFS_PINATA) {
            snprintf(url, sizeof(url), "%s/data/testAuthentication", p->url);
        } else {
            snprintf(url, sizeof(url), "%s/pins?limit=1", p->url);
        }
        struct curl_slist *hdrs = ipfs_auth_headers(c, p, false);
        struct http_resp r;
        ipfs_http_do(p->curl, method, url, hdrs, NULL, NULL, c->timeout_ms, c->connect_timeout_ms,
                     ZL_IPFS_RESPONSE_MAX_BYTES, &r);
        curl_slist_free_all(hdrs);
        enum attempt a = ipfs_http_outcome(&r, err, sizeof(err));
        ipfs_resp_free(&r);
        zl_breaker_record(&p->breaker, a == A_OK || a == A_BAD, zl_now_ms());
        if (a == A_OK)
            up++;
        else
            snprintf(errstr, errstr_size, "IPFS provider %s: %s", p->label, err);
    }
    if (up >= c->pin_k)
        return ZL_OK;
    if (errstr[0] == '\0')
        snprintf(errstr, errstr_size, "IPFS: every provider's circuit is open");
    return ZL_OUTAGE;
}

/* -------------------------------------------------------------- setup/free */

static int parse_url(const char *what, const char *s, size_t n, char *out, char *errstr, size_t errstr_size)
{
    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '/'))
        n--;
    if (n == 0 || n >= ZL_IPFS_URL_MAX ||
        !((n > 7 && strncmp(s, "http://", 7) == 0) || (n > 8 && strncmp(s, "https://", 8) == 0))) {
        snprintf(errstr, errstr_size, "%s: \"%.*s\" is not an http:// or https:// URL", what, (int)(n > 200 ? 200 : n),
                 s);
        return -1;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static char *bearer(const char *what, const char *secret, char *errstr, size_t errstr_size)
{
    if (secret == NULL || secret[0] == '\0') {
        snprintf(errstr, errstr_size, "%s: a provider of this kind is listed but its token file is not set", what);
        return NULL;
    }
    size_t n = strlen(secret) + 32;
    char *h = malloc(n);
    if (h == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(h, n, "Authorization: Bearer %s", secret);
    return h;
}

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *v = s;
    for (size_t i = 0; v[i] != '\0'; i++)
        v[i] = '\0';
    free(s);
}

int zl_ipfs_new(struct zl_ipfs **out, const struct zl_ipfs_opts *o, char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(errstr, errstr_size, "libcurl global init failed");
        return -1;
    }
    struct zl_ipfs *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    c->pin_k = o->pin_k;
    c->verify = o->verify_retrieval;
    c->timeout_ms = o->timeout_ms;
    c->connect_timeout_ms = o->connect_timeout_ms;
    c->gateway_timeout_ms = o->gateway_timeout_ms;
    c->psa_poll_timeout_ms = o->psa_poll_timeout_ms;
    c->psa_poll_interval_ms = o->psa_poll_interval_ms > 0 ? o->psa_poll_interval_ms : 500;
    c->metrics = o->metrics;
    c->health = o->health;
    int pbound = o->provider_concurrency_max > 0 ? o->provider_concurrency_max : 1;
    int gbound = o->gateway_concurrency_max > 0 ? o->gateway_concurrency_max : 1;
    if (pbound > ZL_IPFS_CONCURRENCY_LIMIT || gbound > ZL_IPFS_CONCURRENCY_LIMIT) {
        snprintf(errstr, errstr_size, "ZL_IPFS_PROVIDER_CONCURRENCY_MAX / ZL_IPFS_GATEWAY_CONCURRENCY_MAX: %d / %d, "
                 "at most %d", pbound, gbound, ZL_IPFS_CONCURRENCY_LIMIT);
        free(c);
        curl_global_cleanup();
        return -1;
    }
    for (int i = 0; i < ZL_IPFS_PROVIDERS_MAX; i++)
        c->prov[i].lane.bound = pbound;
    for (int i = 0; i < ZL_IPFS_GATEWAYS_MAX; i++)
        c->gw_lane[i].bound = gbound;
    snprintf(c->stage, sizeof(c->stage), "%s", o->stage != NULL ? o->stage : "");

    /* providers: kind=url,kind=url */
    const char *s = o->providers != NULL ? o->providers : "";
    while (*s != '\0') {
        const char *end = strchr(s, ',');
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (eq == NULL) {
            snprintf(errstr, errstr_size, "ZL_IPFS_PROVIDERS: \"%.*s\" is not kind=url (kind: kubo, pinata, psa)",
                     (int)(n > 200 ? 200 : n), s);
            goto fail;
        }
        if (c->nprov == ZL_IPFS_PROVIDERS_MAX) {
            snprintf(errstr, errstr_size, "ZL_IPFS_PROVIDERS: more than %d providers", ZL_IPFS_PROVIDERS_MAX);
            goto fail;
        }
        struct provider *p = &c->prov[c->nprov];
        size_t kn = (size_t)(eq - s);
        while (kn > 0 && s[kn - 1] == ' ')
            kn--;
        const char *k = s;
        while (kn > 0 && *k == ' ') {
            k++;
            kn--;
        }
        if (kn == 4 && strncmp(k, "kubo", 4) == 0) {
            p->kind = ZL_IPFS_KUBO;
        } else if (kn == 6 && strncmp(k, "pinata", 6) == 0) {
            p->kind = ZL_IPFS_PINATA;
        } else if (kn == 3 && strncmp(k, "psa", 3) == 0) {
            p->kind = ZL_IPFS_PSA;
        } else {
            snprintf(errstr, errstr_size, "ZL_IPFS_PROVIDERS: unknown provider kind \"%.*s\" (kubo, pinata, psa)",
                     (int)(kn > 40 ? 40 : kn), k);
            goto fail;
        }
        if (parse_url("ZL_IPFS_PROVIDERS", eq + 1, n - (size_t)(eq + 1 - s), p->url, errstr, errstr_size) != 0)
            goto fail;
        snprintf(p->label, sizeof(p->label), "%d:%s", c->nprov, kind_name(p->kind));
        snprintf(p->dep, sizeof(p->dep), "ipfs:%d:%s", c->nprov, kind_name(p->kind));
        struct zl_breaker_opts bo = o->breaker;
        bo.on_state_change = on_breaker_change;
        bo.opaque = p;
        p->owner = c;
        if (zl_breaker_init(&p->breaker, p->dep, &bo, errstr, errstr_size) != 0)
            goto fail;
        p->breaker_inited = true;
        atomic_store(&p->state, ZL_BREAKER_CLOSED);
        p->curl = curl_easy_init();
        if (p->curl == NULL) {
            snprintf(errstr, errstr_size, "curl_easy_init failed");
            goto fail;
        }
        c->nprov++;
        s = end != NULL ? end + 1 : s + n;
    }
    if (c->nprov == 0) {
        snprintf(errstr, errstr_size, "ZL_IPFS_PROVIDERS: no provider configured");
        goto fail;
    }
    if (c->pin_k < 1 || c->pin_k > c->nprov) {
        snprintf(errstr, errstr_size, "ZL_IPFS_PIN_K: %d, but %d provider(s) are configured", c->pin_k, c->nprov);
        goto fail;
    }
    for (int i = 0; i < c->nprov; i++) {
        if (c->prov[i].kind == ZL_IPFS_PINATA && c->pinata_auth == NULL &&
            (c->pinata_auth = bearer("ZL_IPFS_PINATA_JWT_FILE", o->pinata_jwt, errstr, errstr_size)) == NULL)
            goto fail;
        if (c->prov[i].kind == ZL_IPFS_PSA && c->psa_auth == NULL &&
            (c->psa_auth = bearer("ZL_IPFS_PSA_TOKEN_FILE", o->psa_token, errstr, errstr_size)) == NULL)
            goto fail;
    }

    s = o->gateways != NULL ? o->gateways : "";
    while (*s != '\0') {
        const char *end = strchr(s, ',');
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        if (c->ngw == ZL_IPFS_GATEWAYS_MAX) {
            snprintf(errstr, errstr_size, "ZL_IPFS_GATEWAY_URLS: more than %d gateways", ZL_IPFS_GATEWAYS_MAX);
            goto fail;
        }
        if (parse_url("ZL_IPFS_GATEWAY_URLS", s, n, c->gw[c->ngw], errstr, errstr_size) != 0)
            goto fail;
        c->ngw++;
        s = end != NULL ? end + 1 : s + n;
    }
    if (c->verify && c->ngw == 0) {
        snprintf(errstr, errstr_size,
                 "ZL_IPFS_GATEWAY_URLS is empty but ZL_IPFS_VERIFY_RETRIEVAL is on: list a gateway or turn it off");
        goto fail;
    }
    c->gw_curl = curl_easy_init();
    if (c->gw_curl == NULL) {
        snprintf(errstr, errstr_size, "curl_easy_init failed");
        goto fail;
    }
    if (c->metrics != NULL) {
        zl_metrics_describe(c->metrics, "zl_ipfs_cid_mismatch_total", ZL_METRIC_COUNTER,
                            "IPFS providers that answered with another CID than the content's (alert on any)");
        zl_metrics_describe(c->metrics, "zl_ipfs_pins_total", ZL_METRIC_COUNTER, "IPFS pin calls by provider and outcome");
        zl_metrics_describe(c->metrics, "zl_ipfs_gateway_checks_total", ZL_METRIC_COUNTER,
                            "IPFS gateway retrievability checks by gateway and outcome");
        zl_metrics_describe(c->metrics, "zl_ipfs_unpins_total", ZL_METRIC_COUNTER,
                            "IPFS unpin calls by provider and outcome (removed, not_pinned, down, busy, bad_answer)");
        zl_metrics_describe(c->metrics, "zl_breaker_state", ZL_METRIC_GAUGE,
                            "circuit breaker state: 0 closed, 1 half-open, 2 open, 3 isolated");
    }
    for (int i = 0; i < c->nprov; i++) {
        struct provider *p = &c->prov[i];
        char labels[PROVIDER_LABELS_SIZE];
        snprintf(labels, sizeof(labels), "stage=\"%s\",provider=\"%s\"", c->stage, p->label);
        p->m_mismatch = c->metrics != NULL ? zl_metrics_counter_handle(c->metrics, "zl_ipfs_cid_mismatch_total", labels)
                                           : NULL;
        if (c->metrics != NULL) {
            snprintf(labels, sizeof(labels), "stage=\"%s\",dependency=\"%s\"", c->stage, p->dep);
            zl_metrics_gauge_set(c->metrics, "zl_breaker_state", labels, 0);
        }
    }
    publish_health(c);
    *out = c;
    return 0;
fail:
    zl_ipfs_free(c);
    return -1;
}

void zl_ipfs_free(struct zl_ipfs *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < ZL_IPFS_PROVIDERS_MAX; i++) {
        if (c->prov[i].curl != NULL)
            curl_easy_cleanup(c->prov[i].curl);
        ipfs_lane_free(&c->prov[i].lane);
        if (c->prov[i].breaker_inited)
            zl_breaker_destroy(&c->prov[i].breaker);
    }
    if (c->gw_curl != NULL)
        curl_easy_cleanup(c->gw_curl);
    for (int i = 0; i < ZL_IPFS_GATEWAYS_MAX; i++)
        ipfs_lane_free(&c->gw_lane[i]);
    wipe_free(c->pinata_auth);
    wipe_free(c->psa_auth);
    free(c);
    curl_global_cleanup();
}

