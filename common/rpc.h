/* rpc.h: an Ethereum JSON-RPC client that survives bad endpoints.
 *
 * One struct zl_rpc per chain holds an ordered list of endpoint URLs, each
 * with its own circuit breaker, ranked by recent success ratio and latency.
 * A call goes to the best healthy endpoint; on a timeout, 5xx, HTTP 429,
 * `Retry-After` or JSON-RPC -32005 (rate limited) it fails over to the next.
 * After hedge_after_ms without an answer the next endpoint is asked too and
 * the first good answer wins. ZL_OUTAGE is returned only when every endpoint
 * is down or open. A JSON-RPC error answer from a healthy endpoint (e.g. a
 * revert) comes back as ZL_TRANSIENT with the error object in *rpc_err and
 * rpc_err->answered set: the class is decided here, once; a caller that
 * gives an answer a meaning (a revert of ownerOf means "no such token")
 * reads *rpc_err and decides from the data, never by rewriting the class.
 *
 * Ownership: results are jansson values the caller json_decref()s. params
 * passed to a call are borrowed (not stolen).
 * @locality a struct zl_rpc is used by one thread at a time (a stage's main
 * thread); create one per thread otherwise.
 */
#ifndef ZL_RPC_H
#define ZL_RPC_H

#include <jansson.h>
#include <stdbool.h>

#include "health.h"
#include "metrics.h"
#include "zl.h"

/* Endpoints per chain: seed 000 lists 7 for BSC. */
#define ZL_RPC_ENDPOINTS_MAX 16
/* Calls in one JSON-RPC batch request. */
#define ZL_RPC_BATCH_MAX 100

struct zl_rpc_opts {
    const char *urls;           /* comma-separated, in preference order; copied */
    int64_t timeout_ms;         /* per HTTP request */
    int64_t hedge_after_ms;     /* ask the next endpoint too after this long; 0 = never */
    int quorum;                 /* endpoints that must agree in zl_rpc_call_quorum (>= 1) */
    bool allow_http;            /* accept plain http:// to a host that is not loopback (else refused) */
    /* breaker per endpoint (Polly v8 semantics, see breaker.h) */
    double breaker_failure_ratio;
    int64_t breaker_sampling_ms;
    int32_t breaker_min_throughput;
    int64_t breaker_break_ms;
    struct zl_metrics *metrics; /* may be NULL; borrowed */
    struct zl_health *health;   /* may be NULL; borrowed: endpoint states appear in /health/ready */
    const char *name;           /* dependency name in health/metrics, e.g. "rpc" */
};

/* A JSON-RPC error object from an endpoint that answered. */
struct zl_rpc_error {
    long code;          /* e.g. 3 (execution reverted), -32000, -32005 */
    char message[256];
    char data[1024];    /* error.data as text (revert data hex), "" if none */
    bool answered;      /* an endpoint answered with this JSON-RPC error object */
};

struct zl_rpc;

/* The next URL of a comma-separated list (spaces around a URL ignored):
 * returns its start with *len set and moves *cursor past it, or NULL when
 * none is left. The one place the list is split (the client and detect's
 * per-endpoint confirm clients). */
const char *zl_rpc_next_url(const char **cursor, size_t *len);

/* Creates the client. Returns 0, or -1 with errstr naming the bad option or
 * URL. A plain http:// URL whose host is not loopback (localhost,
 * 127.0.0.0/8, [::1]) is refused unless opts->allow_http: its answers decide
 * what is credited, and anyone on the path could rewrite them. */
int zl_rpc_new(struct zl_rpc **out, const struct zl_rpc_opts *opts, char *errstr, size_t errstr_size);
void zl_rpc_free(struct zl_rpc *r);

/* One call. On ZL_OK *result holds the "result" member (new reference).
 * Returns ZL_OUTAGE when every endpoint is down or open, else ZL_TRANSIENT
 * on any failure: endpoints answered badly, or one answered with a JSON-RPC
 * error that is not rate limiting, which is then in *rpc_err with
 * rpc_err->answered true. rpc_err may be NULL; when given it is cleared
 * first, so answered is false whenever no endpoint answered with an error. */
zl_class zl_rpc_call(struct zl_rpc *r, const char *method, json_t *params, json_t **result,
                     struct zl_rpc_error *rpc_err, char *errstr, size_t errstr_size);

/* A JSON-RPC batch: n calls in one HTTP request to one endpoint. results[i]
 * receives each call's result (or NULL with errs[i] filled, when that call
 * failed). The batch as a whole fails over like zl_rpc_call. */
zl_class zl_rpc_batch(struct zl_rpc *r, size_t n, const char *const *methods, json_t *const *params,
                      json_t **results, struct zl_rpc_error *errs, char *errstr, size_t errstr_size);

/* Like zl_rpc_call, but asks endpoints until opts.quorum of them return
 * results that are equal as JSON (json_equal); returns that result. Fewer
 * agreeing healthy endpoints than the quorum: ZL_TRANSIENT (or ZL_OUTAGE
 * when all are down); *rpc_err then holds the last round's error, answered
 * when that endpoint answered with a JSON-RPC error object. */
zl_class zl_rpc_call_quorum(struct zl_rpc *r, const char *method, json_t *params, json_t **result,
                            struct zl_rpc_error *rpc_err, char *errstr, size_t errstr_size);

/* zl_rpc_batch with zl_rpc_call_quorum's rule per call: the batch goes to
 * one endpoint after another (no hedging) until every call has opts.quorum
 * equal answers or no endpoint is left. A call short of a quorum comes back
 * with results[i] NULL and errs[i] saying so (code 0), like a call that
 * failed; a JSON-RPC error answer fills errs[i] with its code (answered
 * set). Returns ZL_OUTAGE when no endpoint answered and all are down,
 * ZL_TRANSIENT when none gave a usable answer, else ZL_OK (check each
 * results[i]). With quorum 1 it is zl_rpc_batch. */
zl_class zl_rpc_batch_quorum(struct zl_rpc *r, size_t n, const char *const *methods, json_t *const *params,
                             json_t **results, struct zl_rpc_error *errs, char *errstr, size_t errstr_size);

/* Asks the same call of every endpoint, one after another (no hedging),
 * each at most once, and hands back every answer: answers[0..*n_answers)
 * (new references; answers must have room for ZL_RPC_ENDPOINTS_MAX). For a
 * fact honest endpoints report differently (the head: each is a little
 * ahead or behind), where equal answers are rare and the caller applies its
 * own rule (chain_batch.h: zl_chain_quorum_mark). Returns ZL_OK when at
 * least one endpoint answered, else ZL_OUTAGE when all are down, else
 * ZL_TRANSIENT. A JSON-RPC error answer is not an answer. */
zl_class zl_rpc_call_each(struct zl_rpc *r, const char *method, json_t *params, json_t **answers, int *n_answers,
                          char *errstr, size_t errstr_size);

/* The opts.quorum the client was made with. */
int zl_rpc_quorum(const struct zl_rpc *r);

/* True when at least one endpoint's breaker admits calls now. */
bool zl_rpc_any_healthy(struct zl_rpc *r);

/* Admin: resets every endpoint's breaker to closed. */
void zl_rpc_reset_breakers(struct zl_rpc *r);

/* A stage's breaker-reset callback (runtime.h) for a stage whose only
 * breakers are r's: resets them all when dependency is NULL, "rpc" or
 * "rpc:<endpoint>" and returns 1; returns 0 (nothing reset) for any other. */
int zl_rpc_reset_breakers_named(struct zl_rpc *r, const char *dependency);

/* An answer's text with every integer that does not fit an int64 turned
 * into a JSON string of its digits, outside strings only ("rentEpoch":
 * 18446744073709551615 becomes "rentEpoch":"18446744073709551615").
 * Why: jansson refuses such integers and with them the whole answer, and
 * Solana nodes send u64::MAX in every account (rentEpoch): a healthy node
 * would look broken. The client parses an answer again through this only
 * when jansson refused a number (json_error_numeric_overflow). Returns a malloc'd NUL-terminated
 * text the caller frees (*out_len its length), or NULL when out of memory.
 * Fuzzed (tests/fuzz/fuzz_rpc_response.c). */
char *zl_rpc_quote_big_ints(const char *in, size_t len, size_t *out_len);

/* Convenience for "0x1a" quantities: parses into *out; -1 when not a
 * 0x-prefixed hex quantity that fits in 64 bits. */
int zl_rpc_parse_quantity(const json_t *v, uint64_t *out);

#endif /* ZL_RPC_H */
