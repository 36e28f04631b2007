/* ipfs_kubo.c: the Kubo RPC provider: one add request per batch of
 * objects without pinning, then one pin/add request for the batch's CIDs,
 * and their answers (ipfs.h, ipfs_int.h).
 *
 * Why two requests and not add?pin=true: Kubo pins each file of an add
 * separately, under its pin lock, and that is most of an add's cost. One
 * pin/add of the whole batch is 2.5x the documents a second on the local
 * Kubo (bench/results/2026-12-07-ipfs-pin.md). A crash between the two
 * leaves unpinned blocks that the retry adds again, under the same CID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "ipfs_int.h"

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
                    rc = ipfs_copy_cid("kubo add answer", h, cids[k], ZL_IPFS_CID_TEXT_MAX, errstr, errstr_size);
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

int zl_ipfs_parse_kubo_pins(const char *body, size_t len, const char *const *want, size_t n, bool *pinned,
                            char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++)
        pinned[i] = false;
    if (len > ZL_IPFS_RESPONSE_MAX_BYTES) {
        snprintf(errstr, errstr_size, "kubo pin/add answer of %zu bytes is too large", len);
        return -1;
    }
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *pins = json_is_object(o) ? json_object_get(o, "Pins") : NULL;
    if (!json_is_array(pins)) {
        snprintf(errstr, errstr_size, "kubo pin/add answer is not {\"Pins\": [...]}: %s",
                 o == NULL ? jerr.text : "other JSON");
        json_decref(o);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(pins, i, v) {
        const char *cid = json_string_value(v);
        for (size_t k = 0; cid != NULL && k < n; k++)
            if (strcmp(want[k], cid) == 0)
                pinned[k] = true;
    }
    json_decref(o);
    return 0;
}

/* One pin/add request for want[0..n) (recursive); pinned[j] is set for each
 * the answer lists. The request's own outcome is returned. */
static enum attempt kubo_pin_add(struct zl_ipfs *c, struct provider *p, CURL *h, const char *const *want, size_t n,
                                 bool *pinned, char *err, size_t err_size)
{
    /* Every CID goes into the query (Kubo RPC takes arguments there):
     * n <= ZL_IPFS_BATCH_MAX of at most ZL_IPFS_CID_TEXT_MAX each. */
    enum { PIN_URL_SIZE = ZL_IPFS_URL_MAX + 64 + ZL_IPFS_BATCH_MAX * (ZL_IPFS_CID_TEXT_MAX + 5) };
    ZL_ASSERT(n <= ZL_IPFS_BATCH_MAX);
    char *url = malloc(PIN_URL_SIZE);
    if (url == NULL) {
        snprintf(err, err_size, "out of memory");
        return A_DOWN;
    }
    size_t off = (size_t)snprintf(url, PIN_URL_SIZE, "%s/api/v0/pin/add?recursive=true&progress=false", p->url);
    for (size_t j = 0; j < n && off < PIN_URL_SIZE; j++)
        off += (size_t)snprintf(url + off, PIN_URL_SIZE - off, "&arg=%s", want[j]);
    struct curl_slist *hdrs = ipfs_auth_headers(c, p, false);
    struct http_resp r;
    ipfs_http_do(h, "POST", url, hdrs, NULL, NULL, c->timeout_ms, c->connect_timeout_ms, ZL_IPFS_RESPONSE_MAX_BYTES,
                 &r);
    curl_slist_free_all(hdrs);
    free(url);
    enum attempt a = ipfs_http_outcome(&r, err, err_size);
    if (a == A_OK && zl_ipfs_parse_kubo_pins(zl_httpbuf_str(&r.body), r.body.len, want, n, pinned, err, err_size) != 0)
        a = A_BAD;
    ipfs_resp_free(&r);
    return a;
}

/* One add request for objs[idx[0..k)]; got[j] receives the CID Kubo
 * reports for each ("" when the answer does not name it). The request's own
 * outcome is returned; err says why when it is not A_OK. */
static enum attempt kubo_add(struct zl_ipfs *c, struct provider *p, CURL *h, const struct zl_ipfs_obj *objs,
                             const size_t *idx, size_t k, char (*got)[ZL_IPFS_CID_TEXT_MAX], char *err,
                             size_t err_size)
{
    char url[ZL_IPFS_URL_MAX + 160];
    /* Every option that shapes the CID is explicit: Kubo's defaults can
     * change between versions, our local CID cannot. */
    snprintf(url, sizeof(url),
             "%s/api/v0/add?cid-version=1&raw-leaves=true&pin=false&hash=sha2-256&chunker=size-262144"
             "&progress=false&wrap-with-directory=false",
             p->url);
    curl_mime *mime = curl_mime_init(h);
    const char *names[ZL_IPFS_BATCH_MAX] = {0}; /* k <= ZL_IPFS_BATCH_MAX, set below */
    for (size_t j = 0; j < k; j++) {
        const struct zl_ipfs_obj *o = &objs[idx[j]];
        curl_mimepart *part = curl_mime_addpart(mime);
        curl_mime_name(part, "file");
        curl_mime_filename(part, o->name);
        curl_mime_type(part, "application/octet-stream");
        curl_mime_data(part, o->len > 0 ? o->data : "", o->len);
        names[j] = o->name;
    }
    struct http_resp r;
    enum attempt a = ipfs_post_mime(c, p, h, url, mime, &r, err, err_size);
    if (a == A_OK && zl_ipfs_parse_kubo_add(zl_httpbuf_str(&r.body), r.body.len, names, k, got, err, err_size) != 0)
        a = A_BAD;
    ipfs_resp_free(&r);
    return a;
}

/* A Kubo provider: every object of idx[0..k) in one add request on h, then
 * the ones added under their own CID in one pin/add request, through its
 * breaker; a[j] and errs[j] receive each object's outcome. */
void ipfs_pin_kubo(struct zl_ipfs *c, struct provider *p, CURL *h, const struct zl_ipfs_obj *objs, const size_t *idx,
                   size_t k, char (*got)[ZL_IPFS_CID_TEXT_MAX], enum attempt *a, char (*errs)[ZL_ERRSTR_SIZE])
{
    if (!zl_breaker_allow(&p->breaker, zl_now_ms())) {
        for (size_t j = 0; j < k; j++) {
            a[j] = A_DOWN;
            snprintf(errs[j], ZL_ERRSTR_SIZE, "circuit open");
        }
        return;
    }
    char err[ZL_ERRSTR_SIZE] = "";
    enum attempt req = kubo_add(c, p, h, objs, idx, k, got, err, sizeof(err));
    const char *want[ZL_IPFS_BATCH_MAX];
    size_t nwant = 0;
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
        } else {
            want[nwant++] = o->cid; /* only our own CIDs get pinned, never one a provider made up */
        }
    }
    if (nwant > 0) {
        bool pinned[ZL_IPFS_BATCH_MAX];
        req = kubo_pin_add(c, p, h, want, nwant, pinned, err, sizeof(err));
        for (size_t j = 0, w = 0; j < k; j++) {
            if (a[j] != A_OK)
                continue;
            if (req != A_OK) {
                a[j] = req;
                snprintf(errs[j], ZL_ERRSTR_SIZE, "pin/add: %s", err);
            } else if (!pinned[w]) {
                a[j] = A_BAD;
                snprintf(errs[j], ZL_ERRSTR_SIZE, "kubo pin/add answer does not list %s", objs[idx[j]].cid);
            }
            w++;
        }
    }
    /* The breaker hears the last request's answer: a provider that adds and
     * cannot pin is as down as one that does neither. */
    zl_breaker_record(&p->breaker, req == A_OK || req == A_BAD, zl_now_ms());
}
