/* admin_int.h: the admin API's (admin.h) internals shared between its
 * files; not for callers of admin.h. */
#ifndef ZL_ADMIN_INT_H
#define ZL_ADMIN_INT_H

#include <jansson.h>
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
