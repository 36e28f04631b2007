/* webhook_outbox.h: the notify stage's writes inside the runtime's
 * transaction (schemas/sql/015_webhooks.sql): one delivery per active
 * subscriber per credited deposit, its body fixed from the row.
 *
 * The delivery id is name-based on (subscriber, deposit)
 * (webhook_delivery_id() in 015), and (subscriber_id, deposit_id) is
 * unique: a redelivered credit inserts nothing new. Deliveries are
 * numbered (seq) in the order of ids, which the senders keep per
 * subscriber.
 *
 * @locality the thread that owns the zl_pg (the runtime's main thread).
 */
#ifndef ZL_WEBHOOK_OUTBOX_H
#define ZL_WEBHOOK_OUTBOX_H

#include <stddef.h>

#include "pg.h"
#include "zl.h"

/* Registers the outbox statement on pg. Returns 0, or -1 when pg has no
 * room for it. */
int zl_webhook_outbox_prepare(struct zl_pg *pg);

/* Inserts the deliveries of the credited deposits ids[0..n) for every
 * active subscriber, inside the caller's transaction; a row that is not
 * `credited` gets none. *inserted (may be NULL) is how many were new.
 * Returns ZL_OK, or the statement's class with errstr (the caller rolls
 * back). */
zl_class zl_webhook_outbox_insert(struct zl_pg *pg, const char *const *ids, size_t n, long long *inserted,
                                  char *errstr, size_t errstr_size);

#endif /* ZL_WEBHOOK_OUTBOX_H */
