/* live.h: live updates for users (issue 21). An HTTP server that streams one
 * user's deposit state changes as Server-Sent Events, and a small page that
 * shows them:
 *
 *   GET /                  the page (HTML and JS inline, no other asset): it
 *                          takes the token from the URL fragment (#token=...)
 *                          or query (?token=...) and opens an EventSource;
 *   GET /events            the stream, for the user the token names. The
 *                          token comes as `Authorization: Bearer <token>` or
 *                          `?token=<token>` (EventSource cannot set headers);
 *                          a resume point as the `Last-Event-ID` header (sent
 *                          by EventSource on reconnect) or `?last_event_id=`
 *                          (a first connect). A missing, wrong or expired
 *                          token is 401; a full server 503.
 *
 * Each event is `id: <deposit_history.id>` and one line of JSON data:
 *   {"event_id":41,"deposit_id":"31337:0x..:0","user_id":"u-1","from":"verified",
 *    "state":"pinned","at":"2026-12-06T20:01:02.345Z","chain_id":31337,
 *    "tx_hash":"0x..","token":"0x..","amount":"1000000000000000000"}
 * A connect without a resume point replays the user's whole history first.
 *
 * The source of truth is deposit_history, read by one poller thread per
 * server and fanned out to the connected clients of each user; rows are
 * sent only once their transaction and every older one has finished, in
 * (transaction, id) order, so no row committed late is skipped
 * (schemas/sql/016_live.sql, docs/architecture.md "Live updates"). A client
 * whose queue fills (it reads slower than its events arrive) is dropped: its
 * stream ends and EventSource reconnects with Last-Event-ID. It never slows
 * the poller or another client.
 *
 * Token (stateless; the operator's backend mints it, docs/operations.md):
 *   <user_id>.<expiry unix seconds>.<hex HMAC-SHA256(secret, "<user_id>.<expiry>")>
 * The user id may hold dots (the last two dots split the token).
 *
 * @locality zl_live_start() and zl_live_stop() on the caller's thread (a
 * stage's main); the server runs on threads of its own: libmicrohttpd's (one
 * per connection) and the poller's.
 */
#ifndef ZL_LIVE_H
#define ZL_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Longest user id a token may carry (deposit_addresses.user_id in practice
 * is an opaque id of a few dozen bytes). */
#define ZL_LIVE_USER_BYTES_MAX 128
/* A token: user id, dot, up to 20 digits, dot, 64 hex digits, NUL. */
#define ZL_LIVE_TOKEN_SIZE (ZL_LIVE_USER_BYTES_MAX + 1 + 20 + 1 + 64 + 1)

/* The live server's settings (zl_live_settings[] fills it): a stage's main
 * loads them as one more config section. */
struct zl_live_config {
    int64_t port;             /* ZL_LIVE_PORT: 0 = no live server */
    char *addr;               /* ZL_LIVE_ADDR: IPv4 address to listen on */
    struct zl_secret token_secret; /* ZL_LIVE_TOKEN_SECRET_FILE: the HMAC key
                                      tokens are checked with; required when
                                      the port is set */
    int64_t clients_max;      /* ZL_LIVE_CLIENTS_MAX: streams open at once;
                                 one more is 503 */
    int64_t queue_events_max; /* ZL_LIVE_QUEUE_EVENTS_MAX: events waiting for
                                 one client; one more drops the client */
    int64_t poll_interval_ms; /* ZL_LIVE_POLL_INTERVAL_MS: between two reads
                                 of new history */
    int64_t rows_max;         /* ZL_LIVE_ROWS_MAX: history rows per query
                                 (poll or catch-up page) */
    int64_t keepalive_ms;     /* ZL_LIVE_KEEPALIVE_MS: a comment line on an
                                 idle stream this often, so proxies keep it */
};

extern const struct zl_setting zl_live_settings[];
extern const size_t zl_live_settings_count;

struct zl_live;

/* zl_live_start()'s answer to a wrong setting (distinct from -1). */
#define ZL_LIVE_REFUSED (-2)

/* Starts the live server on cfg->addr:cfg->port, reading PostgreSQL at
 * pg_dsn (a role with zl_notify's grants). cfg and pg_dsn are copied where
 * needed; the caller keeps ownership of both. With cfg->port 0, starts
 * nothing: returns 0 and sets *out to NULL.
 * Returns 0 with *out set (stop it with zl_live_stop()); ZL_LIVE_REFUSED
 * with errstr for a setting that is wrong (no token secret with a port, an
 * address that is not IPv4: restarting will not help, a stage's init
 * returns ZL_RUNTIME_INIT_REFUSED); -1 with errstr for anything else (the
 * port taken, out of memory). Nothing is left running on failure. The
 * database need not be up: the poller retries it, and clients wait. */
int zl_live_start(const struct zl_live_config *cfg, const char *pg_dsn, int64_t pg_connect_timeout_ms,
                  struct zl_live **out, char *errstr, size_t errstr_size);

/* The port the server listens on (the configured one). 0 for NULL. */
uint16_t zl_live_port(const struct zl_live *l);

/* Ends every stream, stops the server and the poller, frees l. NULL is a
 * no-op. */
void zl_live_stop(struct zl_live *l);

/* Writes the token for user_id valid until expiry_unix into out (at least
 * ZL_LIVE_TOKEN_SIZE bytes). Returns 0, or -1 when user_id is empty, longer
 * than ZL_LIVE_USER_BYTES_MAX, or out too small (out then holds ""). */
int zl_live_token_mint(const char *secret, const char *user_id, int64_t expiry_unix, char *out,
                       size_t out_size);

/* Checks token against secret at now_unix. Returns 0 and copies the user id
 * into user (user_size at least ZL_LIVE_USER_BYTES_MAX + 1); -1 when the
 * token is malformed, its HMAC wrong (compared in constant time) or it
 * expired (expiry <= now). why (may be NULL) names which, for the 401 body. */
int zl_live_token_check(const char *secret, const char *token, int64_t now_unix, char *user, size_t user_size,
                        const char **why);

#endif /* ZL_LIVE_H */
