/* admin_int.h: the admin API's (admin.h) internals shared between its
 * files; not for callers of admin.h. */
#ifndef ZL_ADMIN_INT_H
#define ZL_ADMIN_INT_H

#include <jansson.h>
#include <libpq-fe.h>

#include <stddef.h>
#include <stdint.h>

#include "health.h"
#include "pg.h"

/* Largest worker answer kept (a /health/ready body is well under 4 KiB). */
#define ZL_ADMIN_WORKER_BODY_MAX_BYTES 65536

/* GET url (post_body NULL), or POST post_body to it as JSON with
 * `Authorization: Bearer <bearer>` (bearer is required for a POST: a
 * worker's /admin/ needs its admin token, health.h; the header is wiped
 * from memory after the call). Returns the HTTP status, or 0 when nothing
 * answered (err says why), and *body: the answer, which the caller frees
 * (NULL when there was none). */
long zl_admin_http_call(const char *url, const char *post_body, const char *bearer, int64_t timeout_ms, char **body,
                        char *err, size_t err_size);

/* ---- one request, for the handlers outside admin.c (admin_dust.c) */

/* "<who> (token <fingerprint> from <peer>)" as the audit log's actor. */
#define ACTOR_SIZE 200

struct zl_admin;
struct zl_admin_opts;
struct caller;

/* One admin call as a handler sees it: it reads req, writes the answer
 * (status, body). POSTs run inside admin.c's transaction, with its
 * Idempotency-Key handling: a handler that leaves a non-2xx status has
 * everything it wrote rolled back. */
struct call {
    struct zl_admin *a;
    const struct zl_health_request *req;
    char actor[ACTOR_SIZE];
    char peer[ZL_HEALTH_PEER_SIZE]; /* the TCP peer, not a header */
    struct caller *caller;          /* whose token it carries; NULL before admit() */
    const char *idem_key; /* may be NULL */
    int status;
    json_t *body; /* owned */
};

/* admin.c's plumbing, lent to the handlers in other files (db_lock held):
 *   zl_admin_call_error   answers {"error": msg} with status;
 *   zl_admin_call_db      a prepared statement on the admin connection, or
 *                         NULL with the answer set (503/500);
 *   zl_admin_call_audit   an admin_audit entry (who from the token and the
 *                         peer), 0, or -1 with the answer set;
 *   zl_admin_call_body    the body as a JSON object with a non-empty
 *                         "reason" (the caller frees it), or NULL with the
 *                         answer set (400);
 *   zl_admin_call_opts    the admin's options (ZL_TOKENS, ...). */
void zl_admin_call_error(struct call *c, int status, const char *msg);
PGresult *zl_admin_call_db(struct call *c, const char *name, int n, const char *const *v, int expect);
int zl_admin_call_audit(struct call *c, const char *action, const char *deposit_id, const char *reason,
                        const char *from, const char *to, json_t *detail);
json_t *zl_admin_call_body(struct call *c, const char **reason);
const struct zl_admin_opts *zl_admin_call_opts(const struct call *c);

/* ---- admin_dust.c: below-minimum deposits (docs/operations.md) */

/* Registers its statements on the admin connection. Returns -1 when pg has
 * no room for them. */
int zl_admin_dust_prepare(struct zl_pg *pg);

/* GET /admin/below-minimum[?token=SYMBOL|ADDRESS&limit=N] */
void zl_admin_below_minimum(struct call *c);

/* POST /admin/below-minimum/{id}/credit {"reason":"..."} (in admin.c's
 * transaction) */
void zl_admin_credit_below_minimum(struct call *c, const char *id);

/* One admin call as admin_webhooks.c sees it: what admin.c proved about
 * the caller, and the answer to fill. All borrowed except body. */
struct zl_admin_wh_call {
    struct zl_pg *pg;                     /* the admin connection; db lock held (in run_post's transaction for a POST) */
    const struct zl_health_request *req;
    const char *actor;                    /* for the audit */
    const char *fingerprint;              /* the caller's token fingerprint */
    const char *peer;                     /* the TCP peer */
    const char *idem_key;                 /* may be NULL */
    int status;                           /* out */
    json_t *body;                         /* out: owned by the caller once set */
};

/* Serves /admin/webhooks... (admin_webhooks.c). Returns the route's metric
 * label with w->status and w->body set, or NULL when no route matches. */
const char *zl_admin_webhooks_dispatch(struct zl_admin_wh_call *w);

#endif /* ZL_ADMIN_INT_H */
