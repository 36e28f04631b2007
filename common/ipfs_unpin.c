/* ipfs_unpin.c: removing a CID's pins from every provider (ipfs.h,
 * zl_ipfs_unpin): Kubo's pin/rm, Pinata's unpin, and the Pinning Service
 * API's delete of each pin request listed for the CID. "Not pinned" is
 * success everywhere: the caller may run an unpin again after a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "envelope.h"
#include "ipfs_int.h"

/* Listing rounds for one CID on a Pinning Service API: each deletes up to
 * ZL_IPFS_PSA_LIST_MAX requests, so this bounds a CID pinned thousands of
 * times (a service gone wrong) rather than any real case. */
#define PSA_UNPIN_ROUNDS_MAX 10
/* Room for a provider URL, a path and a CID or requestid. */
#define UNPIN_URL_SIZE (ZL_IPFS_URL_MAX + ZL_IPFS_PSA_REQUESTID_SIZE + 96)

/* One request through the provider's own headers. r holds the answer for
 * the caller to read and free with ipfs_resp_free. */
static enum attempt call(struct zl_ipfs *c, struct provider *p, const char *method, const char *url,
                         struct http_resp *r, char *err, size_t err_size)
{
    struct curl_slist *hdrs = ipfs_auth_headers(c, p, false);
    ipfs_http_do(p->curl, method, url, hdrs, NULL, NULL, c->timeout_ms, c->connect_timeout_ms,
                 ZL_IPFS_RESPONSE_MAX_BYTES, r);
    curl_slist_free_all(hdrs);
    return ipfs_http_outcome(r, err, err_size);
}

/* The string at key (a nested "a.b" is two calls) of a JSON error body;
 * "" when the body is not JSON or has none. out must have room. */
static void error_field(const struct http_resp *r, const char *outer, const char *key, char *out, size_t out_size)
{
    out[0] = '\0';
    json_error_t jerr;
    json_t *o = json_loadb(zl_httpbuf_str(&r->body), r->body.len, 0, &jerr);
    json_t *v = o;
    if (v != NULL && outer != NULL)
        v = json_object_get(v, outer);
    const char *s = json_is_object(v) ? json_string_value(json_object_get(v, key)) : NULL;
    if (s != NULL)
        snprintf(out, out_size, "%s", s);
    json_decref(o);
}

/* Kubo: pin/rm answers 200 {"Pins":[cid]}, or an error whose Message is
 * "not pinned or pinned indirectly" when there is no pin of ours (500 in
 * every Kubo so far): done too. */
static enum attempt kubo_unpin(struct zl_ipfs *c, struct provider *p, const char *cid, bool *had, char *err,
                               size_t err_size)
{
    char url[UNPIN_URL_SIZE];
    snprintf(url, sizeof(url), "%s/api/v0/pin/rm?arg=%s&recursive=true", p->url, cid);
    struct http_resp r;
    enum attempt a = call(c, p, "POST", url, &r, err, err_size); /* Kubo RPC takes POST only */
    *had = a == A_OK;
    if (a != A_OK && r.status >= 400) {
        char msg[128];
        error_field(&r, NULL, "Message", msg, sizeof(msg));
        if (strncmp(msg, "not pinned", 10) == 0)
            a = A_OK;
    }
    ipfs_resp_free(&r);
    return a;
}

/* Pinata: DELETE /pinning/unpin/<cid> answers 200 "OK"; a CID this account
 * does not pin is 400 with error.reason CURRENT_USER_HAS_NOT_PINNED_CID
 * (or a 404): done too. */
static enum attempt pinata_unpin(struct zl_ipfs *c, struct provider *p, const char *cid, bool *had, char *err,
                                 size_t err_size)
{
    char url[UNPIN_URL_SIZE];
    snprintf(url, sizeof(url), "%s/pinning/unpin/%s", p->url, cid);
    struct http_resp r;
    enum attempt a = call(c, p, "DELETE", url, &r, err, err_size);
    *had = a == A_OK;
    if (r.status == 404) {
        a = A_OK;
    } else if (r.status == 400) {
        char reason[64];
        error_field(&r, "error", "reason", reason, sizeof(reason));
        if (strcmp(reason, "CURRENT_USER_HAS_NOT_PINNED_CID") == 0)
            a = A_OK;
    }
    ipfs_resp_free(&r);
    return a;
}

/* Pinning Service API: pins are requests, found by listing the CID in every
 * status (the listing's default is "pinned" only, which would miss one
 * still queued), each deleted (202; 404 when it went meanwhile). */
static enum attempt psa_unpin(struct zl_ipfs *c, struct provider *p, const char *cid, bool *had, char *err,
                              size_t err_size)
{
    char(*ids)[ZL_IPFS_PSA_REQUESTID_SIZE] = calloc(ZL_IPFS_PSA_LIST_MAX, sizeof(*ids)); /* 16 KiB */
    char url[UNPIN_URL_SIZE];
    enum attempt a = A_BAD;
    *had = false;
    if (ids == NULL) {
        snprintf(err, err_size, "out of memory");
        return A_BAD;
    }
    for (int round = 0; round < PSA_UNPIN_ROUNDS_MAX; round++) {
        snprintf(url, sizeof(url), "%s/pins?cid=%s&status=queued,pinning,pinned,failed&limit=%d", p->url, cid,
                 ZL_IPFS_PSA_LIST_MAX);
        struct http_resp r;
        a = call(c, p, "GET", url, &r, err, err_size);
        size_t n = 0;
        long long count = 0;
        if (a == A_OK && zl_ipfs_parse_psa_list(zl_httpbuf_str(&r.body), r.body.len, cid, ids, ZL_IPFS_PSA_LIST_MAX,
                                                &n, &count, err, err_size) != 0)
            a = A_BAD;
        ipfs_resp_free(&r);
        if (a != A_OK || n == 0)
            goto out;
        for (size_t i = 0; i < n; i++) {
            snprintf(url, sizeof(url), "%s/pins/%s", p->url, ids[i]);
            a = call(c, p, "DELETE", url, &r, err, err_size);
            long status = r.status;
            ipfs_resp_free(&r);
            if (status == 404)
                a = A_OK; /* deleted meanwhile */
            if (a != A_OK)
                goto out;
            *had = true;
        }
        if (count <= (long long)n)
            goto out;
        a = A_BAD; /* more to list: another round */
        snprintf(err, err_size, "still listed after %d rounds of %d deletions", PSA_UNPIN_ROUNDS_MAX,
                 ZL_IPFS_PSA_LIST_MAX);
    }
out:
    free(ids);
    return a;
}

zl_class zl_ipfs_unpin(struct zl_ipfs *c, const char *cid, int *removed, char *errstr, size_t errstr_size)
{
    if (removed != NULL)
        *removed = 0;
    errstr[0] = '\0';
    if (!zl_valid_cid(cid)) {
        snprintf(errstr, errstr_size, "unpin: \"%.80s\" is not a CIDv1", cid);
        return ZL_PERMANENT;
    }
    int failed = 0, down = 0;
    size_t off = 0;
    for (int i = 0; i < c->nprov; i++) {
        struct provider *p = &c->prov[i];
        char err[ZL_ERRSTR_SIZE] = "";
        bool had = false;
        enum attempt a;
        if (!zl_breaker_allow(&p->breaker, zl_now_ms())) {
            snprintf(err, sizeof(err), "circuit open");
            a = A_DOWN;
        } else {
            a = p->kind == ZL_IPFS_KUBO     ? kubo_unpin(c, p, cid, &had, err, sizeof(err))
                : p->kind == ZL_IPFS_PINATA ? pinata_unpin(c, p, cid, &had, err, sizeof(err))
                                            : psa_unpin(c, p, cid, &had, err, sizeof(err));
            zl_breaker_record(&p->breaker, a == A_OK || a == A_BAD, zl_now_ms());
        }
        ipfs_count(c, "zl_ipfs_unpins_total", "provider", p->label,
                   a == A_OK ? (had ? "removed" : "not_pinned") : ipfs_attempt_name(a));
        if (a == A_OK) {
            if (had && removed != NULL)
                (*removed)++;
            continue;
        }
        failed++;
        if (ipfs_attempt_class(a) == ZL_OUTAGE)
            down++;
        int w = snprintf(errstr + off, errstr_size - off, "%s%s %s: %s", off > 0 ? "; " : "", p->label,
                         ipfs_attempt_name(a), err);
        if (w > 0 && (size_t)w < errstr_size - off)
            off += (size_t)w;
    }
    if (failed == 0)
        return ZL_OK;
    return down > 0 ? ZL_OUTAGE : ZL_TRANSIENT;
}
