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
#include "log.h"
#include "metrics.h"

/* What one provider or gateway call came to. */
enum attempt {
    A_OK,       /* pinned / fetched and matched */
    A_DOWN,     /* unreachable, timeout, 5xx, 401/403, breaker open */
    A_BUSY,     /* 429, or a PSA pin still queued when we gave up */
    A_BAD,      /* another 4xx, an answer we cannot read */
    A_MISMATCH, /* pinned, but under another CID */
};

static const char *attempt_name(enum attempt a)
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

struct provider {
    zl_ipfs_kind kind;
    char url[ZL_IPFS_URL_MAX]; /* without trailing '/' */
    char label[32];            /* "<i>:<kind>": metrics, logs, health */
    char dep[48];              /* "ipfs:<i>:<kind>": breaker name */
    struct zl_breaker breaker;
    bool breaker_inited;
    _Atomic int state;         /* last breaker state seen by the callback */
    CURL *curl;                /* reused for keep-alive */
    zl_metric *m_mismatch;
    struct zl_ipfs *owner;     /* the client holding this provider (heap, never moves) */
};

struct zl_ipfs {
    struct provider prov[ZL_IPFS_PROVIDERS_MAX];
    int nprov;
    char gw[ZL_IPFS_GATEWAYS_MAX][ZL_IPFS_URL_MAX];
    int ngw;
    CURL *gw_curl;
    int pin_k;
    bool verify;
    int64_t timeout_ms, connect_timeout_ms, gateway_timeout_ms;
    int64_t psa_poll_timeout_ms, psa_poll_interval_ms;
    char *pinata_auth; /* "Authorization: Bearer <jwt>" header; secret */
    char *psa_auth;
    struct zl_metrics *metrics;
    struct zl_health *health;
    char stage[64];
};

/* ------------------------------------------------------------------ parsers */

/* A CID as text: 10..120 of [A-Za-z0-9]. Enough to copy it out safely; the
 * caller compares it with its own. */
static int copy_cid(const char *what, json_t *v, char *cid, size_t cid_size, char *errstr, size_t errstr_size)
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

static int copy_text(const char *what, json_t *v, char *out, size_t out_size, char *errstr, size_t errstr_size)
{
    const char *s = json_string_value(v);
    if (s == NULL || json_string_length(v) == 0 || json_string_length(v) + 1 > out_size ||
        strlen(s) != json_string_length(v)) {
        snprintf(errstr, errstr_size, "%s: missing, empty or too long", what);
        return -1;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == '/' || *p == '?' || *p == '#' ||
            *p == '%') {
            snprintf(errstr, errstr_size, "%s: unexpected character", what);
            return -1;
        }
    }
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

int zl_ipfs_parse_kubo_add(const char *body, size_t len, const char *const *names, size_t n,
                           char (*cids)[ZL_IPFS_CID_TEXT_MAX], char *errstr, size_t errstr_size)
{
    /* NDJSON: one {"Name","Hash","Size"} per added file. A line with a Hash
     * must name one of our files, once: anything else would mean Kubo
     * wrapped or split what we sent. */
    for (size_t i = 0; i < n; i++)
        cids[i][0] = '\0';
    if (len > ZL_IPFS_RESPONSE_MAX_BYTES) {
        snprintf(errstr, errstr_size, "kubo add answer of %zu bytes is too large", len);
        return -1;
    }
    int lines = 0;
    size_t found = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(body + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - body) : len;
        bool blank = true;
        for (size_t i = pos; i < end; i++)
            if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r')
                blank = false;
        if (!blank) {
            if (++lines > ZL_IPFS_KUBO_LINES_MAX) {
                snprintf(errstr, errstr_size, "kubo add answer has more than %d objects", ZL_IPFS_KUBO_LINES_MAX);
                goto fail;
            }
            json_error_t jerr;
            json_t *o = json_loadb(body + pos, end - pos, JSON_REJECT_DUPLICATES, &jerr);
            if (o == NULL || !json_is_object(o)) {
                snprintf(errstr, errstr_size, "kubo add answer line %d is not a JSON object: %s", lines,
                         o == NULL ? jerr.text : "other JSON type");
                json_decref(o);
                goto fail;
            }
            json_t *h = json_object_get(o, "Hash");
            if (h != NULL) {
                const char *name = json_string_value(json_object_get(o, "Name"));
                size_t k = 0;
                while (name != NULL && k < n && strcmp(names[k], name) != 0)
                    k++;
                int rc = -1;
                if (name == NULL || k == n)
                    snprintf(errstr, errstr_size, "kubo add answer names an object we did not send");
                else if (cids[k][0] != '\0')
                    snprintf(errstr, errstr_size, "kubo add answer names one object twice");
                else
                    rc = copy_cid("kubo add answer", h, cids[k], ZL_IPFS_CID_TEXT_MAX, errstr, errstr_size);
                json_decref(o);
                if (rc != 0)
                    goto fail;
                found++;
            } else {
                json_decref(o);
            }
        }
        pos = end + 1;
    }
    if (found == 0) {
        snprintf(errstr, errstr_size, "kubo add answer has no Hash");
        goto fail;
    }
    return 0;
fail:
    for (size_t i = 0; i < n; i++)
        cids[i][0] = '\0';
    return -1;
}

static json_t *load_object(const char *what, const char *body, size_t len, char *errstr, size_t errstr_size)
{
    if (len > ZL_IPFS_RESPONSE_MAX_BYTES) {
        snprintf(errstr, errstr_size, "%s of %zu bytes is too large", what, len);
        return NULL;
    }
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        snprintf(errstr, errstr_size, "%s is not a JSON object: %s", what, o == NULL ? jerr.text : "other JSON type");
        json_decref(o);
        return NULL;
    }
    return o;
}

int zl_ipfs_parse_pinata_pin(const char *body, size_t len, char *cid, size_t cid_size, char *errstr,
                             size_t errstr_size)
{
    if (cid_size > 0)
        cid[0] = '\0';
    json_t *o = load_object("pinata answer", body, len, errstr, errstr_size);
    if (o == NULL)
        return -1;
    int rc = copy_cid("pinata answer IpfsHash", json_object_get(o, "IpfsHash"), cid, cid_size, errstr, errstr_size);
    json_decref(o);
    return rc;
}

int zl_ipfs_parse_psa_status(const char *body, size_t len, char *requestid, size_t requestid_size, char *status,
                             size_t status_size, char *cid, size_t cid_size, char *errstr, size_t errstr_size)
{
    if (requestid_size > 0)
        requestid[0] = '\0';
    if (status_size > 0)
        status[0] = '\0';
    if (cid_size > 0)
        cid[0] = '\0';
    json_t *o = load_object("pinning service answer", body, len, errstr, errstr_size);
    if (o == NULL)
        return -1;
    int rc = -1;
    const char *st = json_string_value(json_object_get(o, "status"));
    static const char *const known[] = {"queued", "pinning", "pinned", "failed"};
    bool ok_status = false;
    for (size_t i = 0; st != NULL && i < sizeof(known) / sizeof(known[0]); i++)
        ok_status = ok_status || strcmp(st, known[i]) == 0;
    if (!ok_status) {
        snprintf(errstr, errstr_size, "pinning service answer: status is not queued/pinning/pinned/failed");
        goto out;
    }
    if (copy_text("pinning service answer requestid", json_object_get(o, "requestid"), requestid, requestid_size,
                  errstr, errstr_size) != 0)
        goto out;
    json_t *pin = json_object_get(o, "pin");
    if (!json_is_object(pin)) {
        snprintf(errstr, errstr_size, "pinning service answer: no pin object");
        goto out;
    }
    if (copy_cid("pinning service answer pin.cid", json_object_get(pin, "cid"), cid, cid_size, errstr,
                 errstr_size) != 0)
        goto out;
    if (strlen(st) + 1 > status_size) {
        snprintf(errstr, errstr_size, "pinning service answer: status buffer too small");
        goto out;
    }
    memcpy(status, st, strlen(st) + 1);
    rc = 0;
out:
    if (rc != 0) {
        if (requestid_size > 0)
            requestid[0] = '\0';
        if (cid_size > 0)
            cid[0] = '\0';
    }
    json_decref(o);
    return rc;
}

/* --------------------------------------------------------------------- http */

struct http_resp {
    char *body;      /* malloc'd, NUL-terminated; NULL before the first byte */
    size_t len;
    size_t max;      /* bytes accepted; more aborts the transfer */
    bool too_big;
    long status;     /* 0 when no HTTP answer */
    CURLcode cc;
    char curl_err[CURL_ERROR_SIZE];
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct http_resp *r = opaque;
    size_t n = size * nmemb;
    if (r->len + n > r->max) {
        r->too_big = true;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    char *nb = realloc(r->body, r->len + n + 1);
    if (nb == NULL)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static void resp_free(struct http_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* One request. method "GET" or "POST"; for POST either mime or json (or
 * neither: an empty body). Never fails as a C call: the outcome is in r. */
static void http_do(CURL *h, const char *method, const char *url, struct curl_slist *hdrs, curl_mime *mime,
                    const char *json, int64_t timeout_ms, int64_t connect_timeout_ms, size_t body_max,
                    struct http_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->max = body_max;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect could carry the bearer token elsewhere */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
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
    }
    r->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->cc != CURLE_OK)
        r->status = r->too_big ? r->status : 0;
}

/* Classifies the HTTP side of an answer; A_OK means a 2xx to be parsed. */
static enum attempt http_outcome(const struct http_resp *r, char *err, size_t err_size)
{
    if (r->too_big) {
        snprintf(err, err_size, "answer larger than %zu bytes", r->max);
        return A_BAD;
    }
    if (r->cc != CURLE_OK) {
        snprintf(err, err_size, "%s", r->curl_err[0] != '\0' ? r->curl_err : curl_easy_strerror(r->cc));
        return A_DOWN;
    }
    if (r->status >= 200 && r->status < 300)
        return A_OK;
    char snippet[160];
    snprintf(snippet, sizeof(snippet), "%.150s", r->body != NULL ? r->body : "");
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
        char labels[160];
        snprintf(labels, sizeof(labels), "stage=\"%s\",dependency=\"%s\"", c->stage, name);
        zl_metrics_gauge_set(c->metrics, "zl_breaker_state", labels, (double)zl_breaker_state_metric(new_state));
    }
    publish_health(c);
}

static void count(struct zl_ipfs *c, const char *family, const char *who_label, const char *who, const char *outcome)
{
    if (c->metrics == NULL)
        return;
    char esc[96], labels[256];
    if (zl_metrics_label_escape(who, esc, sizeof(esc)) != 0)
        snprintf(esc, sizeof(esc), "invalid");
    snprintf(labels, sizeof(labels), "stage=\"%s\",%s=\"%s\",outcome=\"%s\"", c->stage, who_label, esc, outcome);
    zl_metrics_counter_add(c->metrics, family, labels, 1);
}

static struct curl_slist *auth_headers(const struct zl_ipfs *c, const struct provider *p, bool json)
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

/* One add request for objs[idx[0..k)]; got[j] receives the CID Kubo
 * reports for each ("" when the answer does not name it). The request's own
 * outcome is returned; err says why when it is not A_OK. */
static enum attempt kubo_add(struct zl_ipfs *c, struct provider *p, const struct zl_ipfs_obj *objs,
                             const size_t *idx, size_t k, char (*got)[ZL_IPFS_CID_TEXT_MAX], char *err,
                             size_t err_size)
{
    char url[ZL_IPFS_URL_MAX + 160];
    /* Every option that shapes the CID is explicit: Kubo's defaults can
     * change between versions, our local CID cannot. */
    snprintf(url, sizeof(url),
             "%s/api/v0/add?cid-version=1&raw-leaves=true&pin=true&hash=sha2-256&chunker=size-262144"
             "&progress=false&wrap-with-directory=false",
             p->url);
    curl_mime *mime = curl_mime_init(p->curl);
    const char *names[ZL_IPFS_BATCH_MAX];
    for (size_t j = 0; j < k; j++) {
        const struct zl_ipfs_obj *o = &objs[idx[j]];
        curl_mimepart *part = curl_mime_addpart(mime);
        curl_mime_name(part, "file");
        curl_mime_filename(part, o->name);
        curl_mime_type(part, "application/octet-stream");
        curl_mime_data(part, o->len > 0 ? o->data : "", o->len);
        names[j] = o->name;
    }
    struct curl_slist *hdrs = auth_headers(c, p, false);
    struct http_resp r;
    http_do(p->curl, "POST", url, hdrs, mime, NULL, c->timeout_ms, c->connect_timeout_ms, ZL_IPFS_RESPONSE_MAX_BYTES,
            &r);
    curl_slist_free_all(hdrs);
    curl_mime_free(mime);
    enum attempt a = http_outcome(&r, err, err_size);
    if (a == A_OK &&
        zl_ipfs_parse_kubo_add(r.body != NULL ? r.body : "", r.len, names, k, got, err, err_size) != 0)
        a = A_BAD;
    resp_free(&r);
    return a;
}

static enum attempt pinata_pin(struct zl_ipfs *c, struct provider *p, const void *data, size_t len, const char *name,
                               char *got, size_t got_size, char *err, size_t err_size)
{
    char url[ZL_IPFS_URL_MAX + 64];
    snprintf(url, sizeof(url), "%s/pinning/pinFileToIPFS", p->url);
    json_t *meta = json_pack("{s:s}", "name", name);
    char *meta_s = meta != NULL ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (meta_s == NULL) {
        snprintf(err, err_size, "out of memory");
        return A_BAD;
    }
    curl_mime *mime = curl_mime_init(p->curl);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    curl_mime_filename(part, name);
    curl_mime_type(part, "application/octet-stream");
    curl_mime_data(part, len > 0 ? data : "", len);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "pinataMetadata");
    curl_mime_data(part, meta_s, CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "pinataOptions");
    /* cidVersion 1: with it Pinata stores raw leaves, the CID computed here. */
    curl_mime_data(part, "{\"cidVersion\":1}", CURL_ZERO_TERMINATED);
    struct curl_slist *hdrs = auth_headers(c, p, false);
    struct http_resp r;
    http_do(p->curl, "POST", url, hdrs, mime, NULL, c->timeout_ms, c->connect_timeout_ms, ZL_IPFS_RESPONSE_MAX_BYTES,
            &r);
    curl_slist_free_all(hdrs);
    curl_mime_free(mime);
    free(meta_s);
    enum attempt a = http_outcome(&r, err, err_size);
    if (a == A_OK && zl_ipfs_parse_pinata_pin(r.body != NULL ? r.body : "", r.len, got, got_size, err, err_size) != 0)
        a = A_BAD;
    resp_free(&r);
    return a;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static enum attempt psa_pin(struct zl_ipfs *c, struct provider *p, const char *cid, const char *name, char *got,
                            size_t got_size, char *err, size_t err_size)
{
    char url[ZL_IPFS_URL_MAX + 160];
    snprintf(url, sizeof(url), "%s/pins", p->url);
    json_t *req = json_pack("{s:s,s:s}", "cid", cid, "name", name);
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        snprintf(err, err_size, "out of memory");
        return A_BAD;
    }
    struct curl_slist *hdrs = auth_headers(c, p, true);
    struct http_resp r;
    http_do(p->curl, "POST", url, hdrs, NULL, body, c->timeout_ms, c->connect_timeout_ms, ZL_IPFS_RESPONSE_MAX_BYTES,
            &r);
    free(body);
    char requestid[160], status[16];
    int64_t deadline = zl_now_ms() + c->psa_poll_timeout_ms;
    enum attempt a;
    for (;;) {
        a = http_outcome(&r, err, err_size);
        if (a == A_OK && zl_ipfs_parse_psa_status(r.body != NULL ? r.body : "", r.len, requestid, sizeof(requestid),
                                                  status, sizeof(status), got, got_size, err, err_size) != 0)
            a = A_BAD;
        resp_free(&r);
        if (a != A_OK)
            break;
        if (strcmp(got, cid) != 0 || strcmp(status, "pinned") == 0)
            break; /* the caller compares the CID */
        if (strcmp(status, "failed") == 0) {
            snprintf(err, err_size, "pin request %s failed (is the content reachable on the IPFS network?)",
                     requestid);
            a = A_BAD;
            break;
        }
        if (zl_now_ms() + c->psa_poll_interval_ms > deadline) {
            snprintf(err, err_size, "pin request %s still %s after %lld ms", requestid, status,
                     (long long)c->psa_poll_timeout_ms);
            a = A_BUSY;
            break;
        }
        sleep_ms(c->psa_poll_interval_ms);
        snprintf(url, sizeof(url), "%s/pins/%s", p->url, requestid);
        http_do(p->curl, "GET", url, hdrs, NULL, NULL, c->timeout_ms, c->connect_timeout_ms,
                ZL_IPFS_RESPONSE_MAX_BYTES, &r);
    }
    curl_slist_free_all(hdrs);
    return a;
}

/* A Pinata or PSA provider, one object, through its breaker. */
static enum attempt pin_one(struct zl_ipfs *c, struct provider *p, const struct zl_ipfs_obj *o, char *got,
                            size_t got_size, char *err, size_t err_size)
{
    got[0] = '\0';
    if (!zl_breaker_allow(&p->breaker, zl_now_ms())) {
        snprintf(err, err_size, "circuit open");
        return A_DOWN;
    }
    enum attempt a = p->kind == ZL_IPFS_PINATA ? pinata_pin(c, p, o->data, o->len, o->name, got, got_size, err, err_size)
                                               : psa_pin(c, p, o->cid, o->name, got, got_size, err, err_size);
    if (a == A_OK && strcmp(got, o->cid) != 0) {
        snprintf(err, err_size, "returned CID %s, expected %s", got, o->cid);
        a = A_MISMATCH;
    }
    /* Busy and down say the provider is unhealthy; a mismatch or a bad
     * answer came from a provider that is up. */
    zl_breaker_record(&p->breaker, a == A_OK || a == A_BAD || a == A_MISMATCH, zl_now_ms());
    return a;
}

/* A Kubo provider: every object of idx[0..k) in one request, through its
 * breaker; a[j] and errs[j] receive each object's outcome. */
static void pin_kubo(struct zl_ipfs *c, struct provider *p, const struct zl_ipfs_obj *objs, const size_t *idx,
                     size_t k, char (*got)[ZL_IPFS_CID_TEXT_MAX], enum attempt *a, char (*errs)[ZL_ERRSTR_SIZE])
{
    char err[ZL_ERRSTR_SIZE] = "";
    enum attempt req;
    if (!zl_breaker_allow(&p->breaker, zl_now_ms())) {
        snprintf(err, sizeof(err), "circuit open");
        req = A_DOWN;
    } else {
        req = kubo_add(c, p, objs, idx, k, got, err, sizeof(err));
        zl_breaker_record(&p->breaker, req == A_OK || req == A_BAD, zl_now_ms());
    }
    for (size_t j = 0; j < k; j++) {
        const struct zl_ipfs_obj *o = &objs[idx[j]];
        a[j] = req;
        snprintf(errs[j], ZL_ERRSTR_SIZE, "%s", err);
        if (req != A_OK)
            continue;
        if (got[j][0] == '\0') {
            snprintf(errs[j], ZL_ERRSTR_SIZE, "kubo add answer does not name %s", o->name);
            a[j] = A_BAD;
        } else if (strcmp(got[j], o->cid) != 0) {
            snprintf(errs[j], ZL_ERRSTR_SIZE, "returned CID %s, expected %s", got[j], o->cid);
            a[j] = A_MISMATCH;
        }
    }
}

/* Per-call scratch of zl_ipfs_pin_many, on the heap (~60 KiB). */
struct pin_scratch {
    size_t idx[ZL_IPFS_BATCH_MAX];
    int pinned[ZL_IPFS_BATCH_MAX];
    int down[ZL_IPFS_BATCH_MAX];
    size_t off[ZL_IPFS_BATCH_MAX];
    bool mismatch[ZL_IPFS_BATCH_MAX];
    enum attempt a[ZL_IPFS_BATCH_MAX];
    char got[ZL_IPFS_BATCH_MAX][ZL_IPFS_CID_TEXT_MAX];
    char errs[ZL_IPFS_BATCH_MAX][ZL_ERRSTR_SIZE];
};

void zl_ipfs_pin_many(struct zl_ipfs *c, struct zl_ipfs_obj *objs, size_t n)
{
    ZL_ASSERT(n <= ZL_IPFS_BATCH_MAX);
    struct pin_scratch *s = calloc(1, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        objs[i].error[0] = '\0';
        objs[i].result = ZL_TRANSIENT;
        if (s == NULL)
            snprintf(objs[i].error, sizeof(objs[i].error), "out of memory");
    }
    if (s == NULL)
        return;
    for (int pi = 0; pi < c->nprov; pi++) {
        struct provider *p = &c->prov[pi];
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!s->mismatch[i] && s->pinned[i] < c->pin_k)
                s->idx[k++] = i;
        if (k == 0)
            break;
        if (p->kind == ZL_IPFS_KUBO) {
            pin_kubo(c, p, objs, s->idx, k, s->got, s->a, s->errs);
        } else {
            for (size_t j = 0; j < k; j++)
                s->a[j] = pin_one(c, p, &objs[s->idx[j]], s->got[j], sizeof(s->got[j]), s->errs[j],
                                  sizeof(s->errs[j]));
        }
        for (size_t j = 0; j < k; j++) {
            size_t i = s->idx[j];
            struct zl_ipfs_obj *o = &objs[i];
            enum attempt a = s->a[j];
            count(c, "zl_ipfs_pins_total", "provider", p->label, attempt_name(a));
            if (a == A_OK) {
                s->pinned[i]++;
                continue;
            }
            if (a == A_MISMATCH) {
                zl_metric_counter_add(p->m_mismatch, 1);
                zl_log_kv(ZL_LOG_ERROR, NULL, "IPFS provider returned another CID than the content's", "provider",
                          p->label, "expected", o->cid, "got", s->got[j], NULL);
                snprintf(o->error, sizeof(o->error), "IPFS provider %s (%s) %s: its settings (CID version, raw "
                         "leaves, chunker, hash) differ from ours, or it stored other bytes; fix it or remove it "
                         "from ZL_IPFS_PROVIDERS, then replay", p->label, p->url, s->errs[j]);
                s->mismatch[i] = true;
                continue;
            }
            if (a == A_DOWN)
                s->down[i]++;
            int w = snprintf(o->error + s->off[i], sizeof(o->error) - s->off[i], "%s%s %s: %s",
                             s->off[i] > 0 ? "; " : "", p->label, attempt_name(a), s->errs[j]);
            if (w > 0 && (size_t)w < sizeof(o->error) - s->off[i])
                s->off[i] += (size_t)w;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct zl_ipfs_obj *o = &objs[i];
        if (s->mismatch[i]) {
            o->result = ZL_PERMANENT;
        } else if (s->pinned[i] >= c->pin_k) {
            o->result = ZL_OK;
            o->error[0] = '\0';
        } else {
            /* Not the message's fault when too few providers are even up. */
            char why[ZL_ERRSTR_SIZE];
            snprintf(why, sizeof(why), "pinned %s to %d of %d required providers (%s)", o->cid, s->pinned[i],
                     c->pin_k, o->error);
            snprintf(o->error, sizeof(o->error), "%s", why);
            o->result = c->nprov - s->down[i] < c->pin_k ? ZL_OUTAGE : ZL_TRANSIENT;
        }
    }
    free(s);
}

zl_class zl_ipfs_pin(struct zl_ipfs *c, const void *data, size_t len, const char *name, const char *cid,
                     char *errstr, size_t errstr_size)
{
    struct zl_ipfs_obj o = {.data = data, .len = len, .name = name, .cid = cid};
    zl_ipfs_pin_many(c, &o, 1);
    snprintf(errstr, errstr_size, "%s", o.error);
    return o.result;
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
        char url[ZL_IPFS_URL_MAX + 96], err[ZL_ERRSTR_SIZE];
        snprintf(url, sizeof(url), "%s/ipfs/%s", c->gw[i], cid);
        struct http_resp r;
        http_do(c->gw_curl, "GET", url, NULL, NULL, NULL, c->gateway_timeout_ms, c->connect_timeout_ms, len + 1, &r);
        enum attempt a = http_outcome(&r, err, sizeof(err));
        if (a == A_OK) {
            char fetched[ZL_CID_SIZE];
            char cerr[ZL_ERRSTR_SIZE];
            if (zl_cid_raw_v1(r.body, r.len, fetched, sizeof(fetched), cerr, sizeof(cerr)) != 0 ||
                strcmp(fetched, cid) != 0 || r.len != len || (len > 0 && memcmp(r.body, data, len) != 0)) {
                snprintf(err, sizeof(err), "served %zu bytes that do not hash to %s", r.len, cid);
                a = A_MISMATCH;
            }
        }
        resp_free(&r);
        count(c, "zl_ipfs_gateway_checks_total", "gateway", c->gw[i], attempt_name(a));
        if (a == A_OK)
            return ZL_OK;
        if (a == A_DOWN)
            down++;
        zl_log_kv(ZL_LOG_WARN, NULL, "IPFS gateway check failed, trying the next gateway", "gateway", c->gw[i],
                  "cid", cid, "error", err, NULL);
        int n = snprintf(errstr + off, errstr_size - off, "%s%s: %s", off > 0 ? "; " : "", c->gw[i], err);
        if (n > 0 && (size_t)n < errstr_size - off)
            off += (size_t)n;
    }
    char why[ZL_ERRSTR_SIZE];
    snprintf(why, sizeof(why), "%s not retrievable through any gateway (%s)", cid, errstr);
    snprintf(errstr, errstr_size, "%s", why);
    return down == c->ngw ? ZL_OUTAGE : ZL_TRANSIENT;
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
        struct curl_slist *hdrs = auth_headers(c, p, false);
        struct http_resp r;
        http_do(p->curl, method, url, hdrs, NULL, NULL, c->timeout_ms, c->connect_timeout_ms,
                ZL_IPFS_RESPONSE_MAX_BYTES, &r);
        curl_slist_free_all(hdrs);
        enum attempt a = http_outcome(&r, err, sizeof(err));
        resp_free(&r);
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
        zl_metrics_describe(c->metrics, "zl_breaker_state", ZL_METRIC_GAUGE,
                            "circuit breaker state: 0 closed, 1 half-open, 2 open, 3 isolated");
    }
    for (int i = 0; i < c->nprov; i++) {
        struct provider *p = &c->prov[i];
        char labels[160];
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
        if (c->prov[i].breaker_inited)
            zl_breaker_destroy(&c->prov[i].breaker);
    }
    if (c->gw_curl != NULL)
        curl_easy_cleanup(c->gw_curl);
    wipe_free(c->pinata_auth);
    wipe_free(c->psa_auth);
    free(c);
    curl_global_cleanup();
}
