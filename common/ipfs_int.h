/* ipfs_int.h: what common/ipfs.c, ipfs_kubo.c, ipfs_pinning.c and ipfs_par.c share
 * (private to them: nothing outside common/ipfs*.c includes it). The
 * public contract is ipfs.h.
 * @locality as ipfs.h: one call at a time; during zl_ipfs_pin_many its
 * worker threads (ipfs_par.c), each using only its own lane slot's handle.
 */
#ifndef ZL_IPFS_INT_H
#define ZL_IPFS_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "httpbuf.h"
#include "ipfs.h"
#include "metrics.h"

/* What one provider or gateway call came to. Each outcome of a provider
 * call carries its class, decided here where the answer is seen
 * (ipfs_attempt_class): the aggregate in zl_ipfs_pin_many only counts. */
enum attempt {
    A_OK,       /* pinned / fetched and matched: ZL_OK */
    A_DOWN,     /* unreachable, timeout, 5xx, 401/403, breaker open: ZL_OUTAGE */
    A_BUSY,     /* 429, or a PSA pin still queued when we gave up: ZL_TRANSIENT */
    A_BAD,      /* another 4xx, an answer we cannot read: ZL_TRANSIENT */
    A_MISMATCH, /* pinned, but under another CID: ZL_PERMANENT */
};

/* One provider's or gateway's bulkhead: zl_ipfs_pin_many runs at most
 * `bound` requests to it at once, worker slot s with curl[s] (created on
 * first use by that slot's thread, reused for keep-alive, freed with the
 * client). */
struct lane {
    int bound;                                /* 1..ZL_IPFS_CONCURRENCY_LIMIT */
    CURL *curl[ZL_IPFS_CONCURRENCY_LIMIT];
};

struct provider {
    zl_ipfs_kind kind;
    char url[ZL_IPFS_URL_MAX]; /* without trailing '/' */
    char label[32];            /* "<i>:<kind>": metrics, logs, health */
    char dep[48];              /* "ipfs:<i>:<kind>": breaker name */
    struct zl_breaker breaker;
    bool breaker_inited;
    _Atomic int state;         /* last breaker state seen by the callback */
    CURL *curl;                /* reused for keep-alive: probe and unpin (the caller's thread) */
    struct lane lane;          /* pins (zl_ipfs_pin_many's threads) */
    zl_metric *m_mismatch;
    struct zl_ipfs *owner;     /* the client holding this provider (heap, never moves) */
};

struct zl_ipfs {
    struct provider prov[ZL_IPFS_PROVIDERS_MAX];
    int nprov;
    char gw[ZL_IPFS_GATEWAYS_MAX][ZL_IPFS_URL_MAX];
    int ngw;
    CURL *gw_curl;                         /* zl_ipfs_verify (the caller's thread) */
    struct lane gw_lane[ZL_IPFS_GATEWAYS_MAX]; /* read-backs of zl_ipfs_pin_many */
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

/* One HTTP answer. */
struct http_resp {
    struct zl_httpbuf body; /* the answer's body, bounded by ipfs_http_do's body_max */
    long status;     /* 0 when no HTTP answer */
    CURLcode cc;
    char curl_err[CURL_ERROR_SIZE];
};

/* The class a provider call's outcome carries (see enum attempt). */
zl_class ipfs_attempt_class(enum attempt a);
/* Its metric label: ok, down, busy, bad_answer, cid_mismatch. */
const char *ipfs_attempt_name(enum attempt a);

/* Adds 1 to the counter family{stage,<who_label>=who,outcome} (a no-op
 * without metrics); who is escaped. */
void ipfs_count(struct zl_ipfs *c, const char *family, const char *who_label, const char *who, const char *outcome);

/* One request. method "GET", "POST" or "DELETE"; for POST either mime or
 * json (or neither: an empty body). Never fails as a C call: the outcome is in r,
 * whose body the caller frees with ipfs_resp_free. */
void ipfs_http_do(CURL *h, const char *method, const char *url, struct curl_slist *hdrs, curl_mime *mime,
                  const char *json, int64_t timeout_ms, int64_t connect_timeout_ms, size_t body_max,
                  struct http_resp *r);
void ipfs_resp_free(struct http_resp *r);

/* Classifies the HTTP side of an answer; A_OK means a 2xx to be parsed. */
enum attempt ipfs_http_outcome(const struct http_resp *r, char *err, size_t err_size);

/* The provider's Authorization header (none for Kubo), JSON content type
 * when json, and no 100-continue. The caller frees the list. */
struct curl_slist *ipfs_auth_headers(const struct zl_ipfs *c, const struct provider *p, bool json);

/* POSTs mime (consumed: freed here) to p's url with p's headers on h. Returns
 * the HTTP side's outcome; r holds the answer for the caller to parse and
 * free with ipfs_resp_free. */
enum attempt ipfs_post_mime(struct zl_ipfs *c, struct provider *p, CURL *h, const char *url, curl_mime *mime,
                            struct http_resp *r, char *err, size_t err_size);

/* Copies a CID as a provider wrote it out of v (checked for length and
 * characters only). Returns 0, or -1 with errstr. */
int ipfs_copy_cid(const char *what, json_t *v, char *cid, size_t cid_size, char *errstr, size_t errstr_size);

/* A Kubo provider: every object of idx[0..k) in one add request on h,
 * through its breaker; a[j] and errs[j] receive each object's outcome
 * (ipfs_kubo.c). */
void ipfs_pin_kubo(struct zl_ipfs *c, struct provider *p, CURL *h, const struct zl_ipfs_obj *objs, const size_t *idx,
                   size_t k, char (*got)[ZL_IPFS_CID_TEXT_MAX], enum attempt *a, char (*errs)[ZL_ERRSTR_SIZE]);

/* A Pinata or PSA provider, one object on h, through its breaker; got
 * receives the CID it reported (ipfs_pinning.c). */
enum attempt ipfs_pin_one(struct zl_ipfs *c, struct provider *p, CURL *h, const struct zl_ipfs_obj *o, char *got,
                          size_t got_size, char *err, size_t err_size);

/* Gateway gw's check of one object on h: A_OK when it serves exactly
 * data[0..len), hashing to cid; A_MISMATCH when it serves other bytes;
 * else as ipfs_http_outcome. Counts zl_ipfs_gateway_checks_total (ipfs.c). */
enum attempt ipfs_gateway_check(struct zl_ipfs *c, int gw, CURL *h, const void *data, size_t len, const char *cid,
                                char *err, size_t err_size);

/* What one provider's call for objs[i] came to, folded into the object's
 * running tally (ipfs.c): counts the metric, logs and remembers a mismatch,
 * appends the error. Caller holds whatever guards the tally. */
struct pin_tally {
    int pinned;     /* providers holding it */
    int down;       /* providers whose call came to ZL_OUTAGE */
    bool mismatch;  /* a provider's call came to ZL_PERMANENT */
    size_t off;     /* used length of the object's error */
};
void ipfs_pin_record(struct zl_ipfs *c, struct provider *p, struct zl_ipfs_obj *o, struct pin_tally *t,
                     enum attempt a, const char *got, const char *err);
/* The object's result once no provider call is left (ipfs.c). */
void ipfs_pin_result(const struct zl_ipfs *c, struct zl_ipfs_obj *o, const struct pin_tally *t);
/* Frees every handle of l. */
void ipfs_lane_free(struct lane *l);

#endif /* ZL_IPFS_INT_H */
