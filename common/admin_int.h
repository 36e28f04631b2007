/* admin_int.h: the admin API's (admin.h) internals shared between its
 * files; not for callers of admin.h. */
#ifndef ZL_ADMIN_INT_H
#define ZL_ADMIN_INT_H

#include <stddef.h>
#include <stdint.h>

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

#endif /* ZL_ADMIN_INT_H */
