/* ipfs_kubo.c: the Kubo RPC provider: one add request per batch of
 * objects, and its NDJSON answer (ipfs.h, ipfs_int.h). */
#include <stdio.h>
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
             "%s/api/v0/add?cid-version=1&raw-leaves=true&pin=true&hash=sha2-256&chunker=size-262144"
             "&progress=false&wrap-with-directory=false",
             p->url);
    curl_mime *mime = curl_mime_init(h);
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
    struct http_resp r;
    enum attempt a = ipfs_post_mime(c, p, h, url, mime, &r, err, err_size);
    if (a == A_OK && zl_ipfs_parse_kubo_add(zl_httpbuf_str(&r.body), r.body.len, names, k, got, err, err_size) != 0)
        a = A_BAD;
    ipfs_resp_free(&r);
    return a;
}

/* A Kubo provider: every object of idx[0..k) in one request on h, through
 * its breaker; a[j] and errs[j] receive each object's outcome. */
void ipfs_pin_kubo(struct zl_ipfs *c, struct provider *p, CURL *h, const struct zl_ipfs_obj *objs, const size_t *idx,
                     size_t k, char (*got)[ZL_IPFS_CID_TEXT_MAX], enum attempt *a, char (*errs)[ZL_ERRSTR_SIZE])
{
    char err[ZL_ERRSTR_SIZE] = "";
    enum attempt req;
    if (!zl_breaker_allow(&p->breaker, zl_now_ms())) {
        snprintf(err, sizeof(err), "circuit open");
        req = A_DOWN;
    } else {
        req = kubo_add(c, p, h, objs, idx, k, got, err, sizeof(err));
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
