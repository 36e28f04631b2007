/* rpc_int.h: the JSON-RPC client's internals, shared by rpc.c (endpoints,
 * the request engine, single calls) and rpc_batch.c (batches and quorum
 * reads). Private to those two files: nothing outside common/rpc*.c includes
 * it; callers use rpc.h.
 * @locality as rpc.h: one thread at a time per struct zl_rpc.
 */
#ifndef ZL_RPC_INT_H
#define ZL_RPC_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "breaker.h"
#include "httpbuf.h"
#include "rpc.h"

/* Bytes of a URL, including the NUL. */
#define RPC_URL_BYTES_MAX 1024

enum ep_verdict {
    EP_GOOD = 0,     /* an answer the caller can use */
    EP_RPC_ERROR,    /* healthy endpoint, JSON-RPC error for this call */
    EP_RATE_LIMITED, /* 429, Retry-After, -32005 */
    EP_BAD,          /* 5xx, other HTTP status, garbage body */
    EP_DOWN,         /* transport failure: refused, reset, timeout */
};

struct rpc_endpoint {
    char url[RPC_URL_BYTES_MAX];
    char label[256]; /* scheme://host[:port], safe to show */
    struct zl_breaker br;
    bool br_ready;
    CURL *easy;
    struct curl_slist *headers;
    /* per request, reset in start_request */
    struct zl_httpbuf body; /* the answer; its memory is kept between requests */
    int64_t retry_after_ms; /* -1 none */
    int64_t started_ms;
    bool running;
    /* ranking */
    double success_ewma; /* 1 = every recent call succeeded */
    double latency_ewma_ms;
    int64_t rate_limited_until_ms;
    int index; /* position in the configured order */
};

struct zl_rpc {
    struct rpc_endpoint eps[ZL_RPC_ENDPOINTS_MAX];
    int n;
    CURLM *multi;
    struct zl_rpc_opts opts;
    char name[64];
    uint64_t next_id;
    struct zl_metrics *metrics;
    struct zl_health *health;
    int last_healthy_reported; /* -1 never */
};

/* A batch in flight: its calls carry ids first_id .. first_id + n - 1. */
struct batch_ctx {
    size_t n;
    uint64_t first_id;
};

/* What the engine returns besides the class. */
struct engine_result {
    json_t *body; /* decoded response of the winner */
    int endpoint; /* index of the winner, -1 none */
    enum ep_verdict verdict;
};

/* The engine: runs one request body over the endpoints not in skip (indexed
 * by configured position; NULL = none skipped), with failover and, when
 * hedge is true, hedging. bc is NULL for a single call, else the batch the
 * body holds (the answer must match it). Returns ZL_OK with res->body (new
 * reference, the caller json_decref()s it) on a good answer; ZL_TRANSIENT
 * with res->body and *err (answered; err may be NULL) on a JSON-RPC error
 * from a healthy endpoint; ZL_OUTAGE when no endpoint could be reached (all
 * refused by their breaker or down); ZL_TRANSIENT otherwise, with res->body
 * NULL. res->endpoint is the answering endpoint's index, -1 when none. */
zl_class rpc_run_request(struct zl_rpc *r, const char *body, const struct batch_ctx *bc, const bool *skip, bool hedge,
                         struct engine_result *res, struct zl_rpc_error *err, char *errstr, size_t errstr_size);

/* One single call through the engine: *result is the answer's "result"
 * (new reference) on ZL_OK, else NULL; *endpoint (may be NULL) the index of
 * the endpoint that answered, -1 none. errstr is prefixed with the method. */
zl_class rpc_call_once(struct zl_rpc *r, const char *method, json_t *params, const bool *skip, bool hedge,
                       json_t **result, int *endpoint, struct zl_rpc_error *rpc_err, char *errstr, size_t errstr_size);

/* {"jsonrpc":"2.0","id":id,"method":method,"params":params}: a new object,
 * NULL when out of memory. params is borrowed (NULL: []). */
json_t *rpc_make_request(uint64_t id, const char *method, json_t *params);

/* Copies a JSON-RPC error object into *out (cleared first; answered left
 * false). out may be NULL. */
void rpc_fill_error(const json_t *err, struct zl_rpc_error *out);

#endif /* ZL_RPC_INT_H */
