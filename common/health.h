/* health.h: the HTTP endpoints every worker serves (architecture.md §9).
 *
 *   GET /health/live   200 while the worker's loop calls zl_health_heartbeat()
 *                      at least once per liveness_timeout_ms; 503 when the
 *                      last heartbeat is older (a wedged loop fails liveness
 *                      and gets restarted; a slow dependency does not).
 *                      {"status":"live"|"stalled","stage":"verify",
 *                       "heartbeat_age_ms":N,"liveness_timeout_ms":N}
 *   GET /health/ready  200 when every dependency is ok and the worker is
 *                      neither paused (outage) nor draining (shutdown);
 *                      503 otherwise. Body:
 *                      {"ready":bool,"stage":"verify","paused":bool,
 *                       "draining":bool,"reason":string|null,
 *                       "dependencies":{"postgres":{"ok":true,"state":"up",
 *                         "detail":"...","updated_at":"<RFC 3339>"},...}}
 *                      reason: the pause reason, else "draining", else the
 *                      first failing dependency, else null.
 *   GET /metrics       200 text/plain; version=0.0.4: the zl_metrics
 *                      registry passed at start (404 when none was).
 *
 *   GET and HEAD are served on these three paths; any other method gets 405
 *   with an Allow header. Any other path goes to the optional route hook
 *   (for the admin endpoints: every method, with headers and body), or gets
 *   a 404 JSON body when there is no hook or the hook declines.
 *
 *   /admin/... paths act on the worker (a breaker reset), so they are never
 *   open: before the body is read or the hook called, the request must carry
 *   `Authorization: Bearer <opts.admin_token>` (401 otherwise, compared in
 *   constant time); with no admin token configured they answer 403. Only a
 *   hook that authenticates by itself (zl-admin's, which rate limits per
 *   caller first) sets admin_route_authenticates to skip this.
 *
 * Server: libmicrohttpd, one thread per connection behind an internal
 * listening thread, at most connections_max connections, each closed after
 * ZL_HEALTH_CONNECTION_TIMEOUT_S idle seconds, so a slow admin request or a
 * stuck client never blocks liveness probes and cannot pile up threads.
 * libmicrohttpd's own error messages are logged through common/log.h as
 * warnings with "component":"http".
 *
 * Threads
 *   zl_health_set_dep, _set_paused, _set_draining, _heartbeat and _ready are
 *   "@locality any thread" (breaker callbacks run on librdkafka's threads).
 *   @locks  Dependency and pause state sit behind one mutex, also held
 *   while /health/ready builds its body; the heartbeat is a lone atomic
 *   store, cheap enough for every loop iteration.
 *   The route hook runs on a libmicrohttpd connection thread, possibly on
 *   several at once.
 */
#ifndef ZL_HEALTH_H
#define ZL_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zl_metrics;

/* Most dependencies one worker reports (database, brokers, RPC endpoints,
 * IPFS providers, signer): each has a breaker; 32 is several times that. */
#define ZL_HEALTH_DEPS_MAX 32

/* Longest dependency name / stage name in bytes, NUL included. */
#define ZL_HEALTH_NAME_SIZE 64
/* Longest state ("closed", "half_open", "up"...), NUL included; cut. */
#define ZL_HEALTH_STATE_SIZE 32
/* Longest dependency detail or pause reason, NUL included; cut. */
#define ZL_HEALTH_DETAIL_SIZE 256

/* Defaults for the zero values of struct zl_health_opts. */
#define ZL_HEALTH_BIND_ADDR_DEFAULT "127.0.0.1"
#define ZL_HEALTH_LIVENESS_TIMEOUT_MS_DEFAULT 60000
#define ZL_HEALTH_CONNECTIONS_MAX_DEFAULT 32
#define ZL_HEALTH_BODY_MAX_BYTES_DEFAULT 65536

/* A token's fingerprint: the first 16 hex digits of its sha256, NUL
 * included. Enough to tell tokens apart in an audit log, too few to help
 * guess one. */
#define ZL_HEALTH_TOKEN_FPR_SIZE 17

/* Admin tokens kept from opts.admin_token (one per line). */
#define ZL_HEALTH_ADMIN_TOKENS_MAX 16

/* Longest peer address text (an IPv6 literal), NUL included. */
#define ZL_HEALTH_PEER_SIZE 46

/* Idle seconds before a connection is closed (slow or stuck clients). */
#define ZL_HEALTH_CONNECTION_TIMEOUT_S 10

struct zl_health;

/* A request passed to the route hook. Everything is borrowed for the
 * duration of the call only. */
struct zl_health_request {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* URL path, without the query string */
    const char *body;    /* request body, NUL-terminated; "" when none */
    size_t body_len;     /* bytes in body, at most body_max_bytes */
    void *conn_;         /* internal: use the accessors below */
};

/* A request header's value (name is case-insensitive), or NULL. */
const char *zl_health_request_header(const struct zl_health_request *req,
                                     const char *name);

/* A query-string argument's decoded value, or NULL. */
const char *zl_health_request_arg(const struct zl_health_request *req,
                                  const char *key);

/* The caller's IP address as text ("unknown" when libmicrohttpd cannot
 * say), cut to out_size. It is the TCP peer: a proxy in front shows as
 * itself, which is what an audit should record (headers can be forged). */
void zl_health_request_peer(const struct zl_health_request *req, char *out,
                            size_t out_size);

/* True when authorization is "Bearer <expected>" and expected is not empty.
 * Takes the same time whatever the given value (both sides are hashed).
 * @locality any thread */
bool zl_health_bearer_ok(const char *authorization, const char *expected);

/* Writes token's fingerprint (see ZL_HEALTH_TOKEN_FPR_SIZE) into out.
 * @locality any thread */
void zl_health_token_fingerprint(const char *token,
                                 char out[ZL_HEALTH_TOKEN_FPR_SIZE]);

/* What the route hook answers. */
struct zl_health_response {
    int status;               /* HTTP status, 100..599; else 500 is sent */
    const char *content_type; /* NULL = "application/json"; must outlive
                                 the call (a string literal) */
    char *body;               /* malloc()ed; ownership passes to health,
                                 which frees it even on failure; NULL =
                                 empty body */
    size_t body_len;          /* bytes in body */
};

/* The route hook: called for every path other than the three above, with
 * the whole body read. Returns 0 after filling resp (all fields start
 * zeroed), or -1 when the path is not its own (the client gets 404).
 * @locality a libmicrohttpd connection thread; several may run at once. */
typedef int (*zl_health_route_fn)(void *opaque,
                                  const struct zl_health_request *req,
                                  struct zl_health_response *resp);

struct zl_health_opts {
    const char *stage;           /* required, e.g. "verify"; copied */
    const char *bind_addr;       /* IPv4/IPv6 literal; NULL or "" =
                                    ZL_HEALTH_BIND_ADDR_DEFAULT (local only:
                                    expose it on purpose, 0.0.0.0) */
    uint16_t port;               /* 0 = ephemeral; see zl_health_port() */
    int64_t liveness_timeout_ms; /* 0 = ZL_HEALTH_LIVENESS_TIMEOUT_MS_DEFAULT */
    struct zl_metrics *metrics;  /* borrowed; must outlive the server;
                                    NULL = /metrics answers 404 */
    zl_health_route_fn route;    /* NULL = other paths answer 404 */
    void *route_opaque;          /* passed to route */
    unsigned connections_max;    /* 0 = ZL_HEALTH_CONNECTIONS_MAX_DEFAULT */
    size_t body_max_bytes;       /* hook request bodies; larger ones get
                                    413; 0 = ZL_HEALTH_BODY_MAX_BYTES_DEFAULT */
    const char *admin_token;     /* the bearer token /admin/... needs, or
                                    several, one per line (any of them
                                    will do; at most
                                    ZL_HEALTH_ADMIN_TOKENS_MAX); read at
                                    start only (digests are kept, not the
                                    tokens); NULL or blank = /admin/...
                                    answers 403 */
    bool admin_route_authenticates; /* the hook checks /admin/... callers
                                       itself (zl-admin); admin_token unused */
};

/* Starts the server; the heartbeat clock starts now, so the loop has one
 * liveness_timeout_ms to make its first call. On success returns 0 and sets
 * *out, which the caller frees with zl_health_stop(). On failure returns -1,
 * sets *out to NULL and writes why into errstr (a bad option, an address
 * that is not an IP literal, a port already in use).
 * @locality the worker's main thread */
int zl_health_start(struct zl_health **out, const struct zl_health_opts *opts,
                    char *errstr, size_t errstr_size);

/* The port actually listened on (the kernel's choice when opts.port was 0). */
uint16_t zl_health_port(const struct zl_health *h);

/* Writes the bound port (and a newline) to path, through a temporary file
 * renamed into place, so a reader never sees a half-written number. A NULL
 * or empty path does nothing. Returns 0, or -1 (errno set) when the file
 * cannot be written. Tests and scrapers find a port-0 server this way. */
int zl_health_write_port_file(const struct zl_health *h, const char *path);

/* Stops the server (waits for requests in flight, including route hooks,
 * to finish) and frees h. No other thread may use h afterwards. NULL is a
 * no-op. @locality the thread that called zl_health_start() */
void zl_health_stop(struct zl_health *h);

/* Records one dependency's health: name (1..ZL_HEALTH_NAME_SIZE-1 chars of
 * [A-Za-z0-9_.:/-]) identifies it, ok feeds readiness, state is shown as is
 * (NULL = "up" / "down" from ok), detail (NULL = "") says why; state and
 * detail are copied and cut to their sizes. updated_at is set to now.
 * Returns 0, or -1 (nothing changed) for a bad name or when
 * ZL_HEALTH_DEPS_MAX other dependencies are already recorded.
 * @locality any thread  @locks h's mutex */
int zl_health_set_dep(struct zl_health *h, const char *name, bool ok,
                      const char *state, const char *detail);

/* Pauses (outage: consumption paused, readiness false, reason shown) or
 * resumes. reason may be NULL; it is copied and cut.
 * @locality any thread  @locks h's mutex */
void zl_health_set_paused(struct zl_health *h, bool paused, const char *reason);

/* Marks the worker as shutting down: readiness is false from now on, so
 * load balancers and operators stop counting on it. Cannot be undone.
 * @locality any thread  @locks h's mutex */
void zl_health_set_draining(struct zl_health *h);

/* Proves the worker's loop is turning; call it every iteration.
 * @locality any thread; lock-free */
void zl_health_heartbeat(struct zl_health *h);

/* What GET /health/ready would answer right now.
 * @locality any thread  @locks h's mutex */
bool zl_health_ready(struct zl_health *h);

#endif /* ZL_HEALTH_H */
