/* admin.h: the admin HTTP API (architecture §8), served by tools/zl-admin
 * through common/health.h's route hook. Every /admin/ path needs
 * `Authorization: Bearer <token>` (compared in constant time) with one of
 * the tokens (one per line of the token file). The rate limit applies after
 * authentication: a caller with a token draws on that token's own budget
 * (rate_per_s, burst); a call without one draws on its peer
 * address's budget of failed attempts (auth_fail_per_s, auth_fail_burst)
 * and gets 401, then 429 once that is spent. An unauthenticated flood thus
 * never locks operators out. A POST with an `Idempotency-Key` header gets
 * the stored answer when the key is seen again with the same body (422 with
 * another). Audit entries record the token's fingerprint and the TCP peer
 * (detail.token_fingerprint, detail.peer, and in the actor), besides the
 * caller's self-declared X-Actor.
 *
 *   GET  /admin/health                 workers' /health/ready, aggregated:
 *                                      200 all ready, 503 otherwise
 *   GET  /admin/deposits/{id}          the row, its history, audit entries
 *                                      and replays; the row's numeric
 *                                      columns (amount, token_id,
 *                                      credit_eggs: uint256s) as strings
 *   GET  /admin/dead[?limit=N&stage=S&include_resolved=1]
 *                                      dead rows from the state table
 *   POST /admin/dead/{id}/resolve      {"action":"resolve"|"requeue",
 *                                       "reason":"..."}: resolve = handled
 *                                      by hand (row stays dead, leaves the
 *                                      listing); requeue = back to the state
 *                                      it died in, and the sweeper
 *                                      re-publishes its event now. Audited.
 *   GET  /admin/below-minimum[?token=SYMBOL|ADDRESS&limit=N]
 *                                      deposits settled below their token's
 *                                      minimum, oldest first, with the
 *                                      count and sum per token (admin_dust.c)
 *   POST /admin/below-minimum/{id}/credit
 *                                      {"reason":"..."}: waives the minimum
 *                                      for that deposit and puts it back to
 *                                      detected (the sweeper re-publishes
 *                                      it); 409 unless it is below_minimum.
 *                                      Audited.
 *   POST /admin/sweep                  {"stale_ms":N,"reason":"..."}: the
 *                                      active sweeper sweeps on its next
 *                                      pass (202 + request id). Audited.
 *   GET  /admin/sweep/{request_id}     that request's progress
 *   POST /admin/claims                 {"tx_hash":"0x..","reason":"..."}:
 *                                      "I paid, where are my eggs?" Records
 *                                      each Transfer of the token in that
 *                                      transaction to a registered address
 *                                      that detect missed (its own insert-
 *                                      if-absent statement, reconcile.h),
 *                                      has the sweeper publish it now, and
 *                                      answers {"deposits":[{deposit_id,
 *                                      recorded: now|already|not_registered,
 *                                      state, last_error, ...}]}; 422 for a
 *                                      bad or unknown hash, 503 without
 *                                      ZL_RPC_URLS. Audited.
 *   POST /admin/breakers/reset         {"worker":"<name or url>",
 *                                       "dependency":"...","reason":"..."}:
 *                                      forwarded to the worker's
 *                                      POST /admin/breakers/reset with
 *                                      worker_token (else the first token)
 *                                      as its bearer token. Audited.
 *   GET  /metrics                      the admin's registry (health.h)
 * Errors are JSON {"error":"..."} with 400, 401, 404, 409, 422, 429, 502.
 *
 * Database: one connection behind a mutex: requests are few (operators),
 * and serialising them makes an Idempotency-Key check-then-store atomic.
 *
 * @locality zl_admin_route runs on libmicrohttpd connection threads (several
 * at once; @locks the admin's mutexes). zl_admin_tick runs on the main
 * thread only.
 */
#ifndef ZL_ADMIN_H
#define ZL_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "metrics.h"

/* Tokens ZL_ADMIN_TOKEN_FILE may hold (one per line: one per operator or
 * script, each a caller of its own). */
#define ZL_ADMIN_TOKENS_MAX 16
/* Workers ZL_ADMIN_WORKER_URLS may list. */
#define ZL_ADMIN_WORKERS_MAX 64
/* Rows a dead-letter listing returns at most. */
#define ZL_ADMIN_LIST_LIMIT 1000

struct zl_admin_opts {
    const char *pg_dsn;
    const char *token;        /* borrowed secret: one token per line (at least
                                 one, each >= 16 characters); never logged */
    const char *worker_urls;  /* "name=http://host:port,..." or bare URLs */
    const char *worker_token; /* borrowed secret: the workers' admin token;
                                 NULL or "" = token */
    double rate_per_s;        /* the token's calls per second */
    double burst;             /* bucket size */
    double auth_fail_per_s;   /* each peer's failed attempts per second */
    double auth_fail_burst;   /* each peer's bucket of failed attempts */
    int64_t http_timeout_ms;  /* per worker scrape / forward */
    int64_t pg_connect_timeout_ms;
    const char *rpc_urls;       /* claims' endpoints; NULL or "": claims answer 503 */
    const char *tokens;         /* ZL_TOKENS: the tokens claims look for (with rpc_urls) */
    const char *token_address;  /* or the single-token form */
    bool rpc_allow_http;        /* claims may use plain http:// off loopback */
    int64_t chain_id;           /* of the claimed deposits */
    struct zl_metrics *metrics; /* borrowed; may be NULL */
};

struct zl_admin;

/* Returns 0, or -1 with errstr (no token, a short one, bad worker list, no
 * memory). */
int zl_admin_new(struct zl_admin **out, const struct zl_admin_opts *o, char *errstr, size_t errstr_size);

/* The route hook (zl_health_route_fn); opaque is the struct zl_admin. */
int zl_admin_route(void *opaque, const struct zl_health_request *req, struct zl_health_response *resp);

/* Refreshes the state-table gauges (zl_pending_deposits, ...). Returns 0, or
 * -1 with errstr when the database did not answer. */
int zl_admin_tick(struct zl_admin *a, char *errstr, size_t errstr_size);

/* After zl_health_stop(): no route call may be running. NULL is a no-op. */
void zl_admin_free(struct zl_admin *a);

/* ---- pure helpers, exposed for unit tests ---- */

/* True when the Authorization header value is "Bearer <expected>". Takes
 * the same time whatever the given value (both sides are hashed first). */
bool zl_admin_auth_ok(const char *authorization, const char *expected);

/* Describes the admin's metrics on m (NULL: nothing). */
void zl_admin_describe_metrics(struct zl_metrics *m);

/* A token bucket: `burst` tokens, refilled at rate_per_s. */
struct zl_token_bucket {
    double rate_per_s;
    double burst;
    double tokens;
    int64_t last_ms;
};
void zl_token_bucket_init(struct zl_token_bucket *b, double rate_per_s, double burst, int64_t now_ms);
/* Takes one token when available: returns 0, or the milliseconds until one
 * is (for Retry-After). Not locked: the caller serialises. */
int64_t zl_token_bucket_take(struct zl_token_bucket *b, int64_t now_ms);

#endif /* ZL_ADMIN_H */
