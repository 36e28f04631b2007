/* ipfs_pinning.c: the remote pinning providers: Pinata (the bytes, one
 * object per request) and the IPFS Pinning Service API (a CID, polled until
 * pinned), and their answers (ipfs.h, ipfs_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "breaker.h"
#include "ipfs_int.h"

/* A Pinning Service API requestid as the service wrote it (ipfs.h). */
#define PSA_REQUESTID_SIZE ZL_IPFS_PSA_REQUESTID_SIZE
/* A Pinning Service API status (queued, pinning, pinned, failed), NUL
 * included. */
#define PSA_STATUS_SIZE 16

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
    int rc =
        ipfs_copy_cid("pinata answer IpfsHash", json_object_get(o, "IpfsHash"), cid, cid_size, errstr, errstr_size);
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
    if (ipfs_copy_cid("pinning service answer pin.cid", json_object_get(pin, "cid"), cid, cid_size, errstr,
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

int zl_ipfs_parse_psa_list(const char *body, size_t len, const char *cid, char (*ids)[ZL_IPFS_PSA_REQUESTID_SIZE],
                           size_t max, size_t *n, long long *count, char *errstr, size_t errstr_size)
{
    *n = 0;
    *count = 0;
    json_t *o = load_object("pinning service listing", body, len, errstr, errstr_size);
    if (o == NULL)
        return -1;
    int rc = -1;
    json_t *cnt = json_object_get(o, "count"), *results = json_object_get(o, "results");
    if (!json_is_integer(cnt) || json_integer_value(cnt) < 0 || !json_is_array(results)) {
        snprintf(errstr, errstr_size, "pinning service listing: no count or no results array");
        goto out;
    }
    *count = (long long)json_integer_value(cnt);
    size_t i;
    json_t *st;
    json_array_foreach(results, i, st) {
        char got[ZL_IPFS_CID_TEXT_MAX];
        json_t *pin = json_object_get(st, "pin");
        /* Another CID's request (a service that ignores the filter) is not
         * ours to delete. */
        if (!json_is_object(pin) || ipfs_copy_cid("pinning service listing pin.cid", json_object_get(pin, "cid"), got,
                                                  sizeof(got), errstr, errstr_size) != 0 || strcmp(got, cid) != 0)
            continue;
        if (*n == max)
            break; /* the rest on the caller's next round */
        if (copy_text("pinning service listing requestid", json_object_get(st, "requestid"), ids[*n],
                      ZL_IPFS_PSA_REQUESTID_SIZE, errstr, errstr_size) != 0)
            goto out;
        (*n)++;
    }
    rc = 0;
out:
    if (rc != 0)
        *n = 0;
    json_decref(o);
    return rc;
}

static enum attempt pinata_pin(struct zl_ipfs *c, struct provider *p, CURL *h, const void *data, size_t len, const char *name,
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
    curl_mime *mime = curl_mime_init(h);
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
    struct http_resp r;
    enum attempt a = ipfs_post_mime(c, p, h, url, mime, &r, err, err_size);
    free(meta_s);
    if (a == A_OK && zl_ipfs_parse_pinata_pin(zl_httpbuf_str(&r.body), r.body.len, got, got_size, err, err_size) != 0)
        a = A_BAD;
    ipfs_resp_free(&r);
    return a;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static enum attempt psa_pin(struct zl_ipfs *c, struct provider *p, CURL *h, const char *cid, const char *name, char *got,
                            size_t got_size, char *err, size_t err_size)
{
    /* room for "<base>/pins/<requestid>" when the status is polled */
    char url[ZL_IPFS_URL_MAX + sizeof("/pins/") + PSA_REQUESTID_SIZE];
    snprintf(url, sizeof(url), "%s/pins", p->url);
    json_t *req = json_pack("{s:s,s:s}", "cid", cid, "name", name);
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        snprintf(err, err_size, "out of memory");
        return A_BAD;
    }
    struct curl_slist *hdrs = ipfs_auth_headers(c, p, true);
    struct http_resp r;
    ipfs_http_do(h, "POST", url, hdrs, NULL, body, c->timeout_ms, c->connect_timeout_ms,
                 ZL_IPFS_RESPONSE_MAX_BYTES, &r);
    free(body);
    char requestid[PSA_REQUESTID_SIZE], status[PSA_STATUS_SIZE];
    int64_t deadline = zl_now_ms() + c->psa_poll_timeout_ms;
    enum attempt a;
    for (;;) {
        a = ipfs_http_outcome(&r, err, err_size);
        if (a == A_OK && zl_ipfs_parse_psa_status(zl_httpbuf_str(&r.body), r.body.len, requestid, sizeof(requestid),
                                                  status, sizeof(status), got, got_size, err, err_size) != 0)
            a = A_BAD;
        ipfs_resp_free(&r);
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
        ipfs_http_do(h, "GET", url, hdrs, NULL, NULL, c->timeout_ms, c->connect_timeout_ms,
                     ZL_IPFS_RESPONSE_MAX_BYTES, &r);
    }
    curl_slist_free_all(hdrs);
    return a;
}

/* A Pinata or PSA provider, one object on h, through its breaker. */
enum attempt ipfs_pin_one(struct zl_ipfs *c, struct provider *p, CURL *h, const struct zl_ipfs_obj *o, char *got,
                          size_t got_size, char *err, size_t err_size)
{
    got[0] = '\0';
    if (!zl_breaker_allow(&p->breaker, zl_now_ms())) {
        snprintf(err, err_size, "circuit open");
        return A_DOWN;
    }
    enum attempt a = p->kind == ZL_IPFS_PINATA
                         ? pinata_pin(c, p, h, o->data, o->len, o->name, got, got_size, err, err_size)
                         : psa_pin(c, p, h, o->cid, o->name, got, got_size, err, err_size);
    if (a == A_OK && strcmp(got, o->cid) != 0) {
        snprintf(err, err_size, "returned CID %s, expected %s", got, o->cid);
        a = A_MISMATCH;
    }
    /* Busy and down say the provider is unhealthy; a mismatch or a bad
     * answer came from a provider that is up. */
    zl_breaker_record(&p->breaker, a == A_OK || a == A_BAD || a == A_MISMATCH, zl_now_ms());
    return a;
}
