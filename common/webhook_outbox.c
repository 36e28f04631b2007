/* webhook_outbox.c: one delivery per active subscriber per credit, in the
 * runtime's transaction (see webhook_outbox.h). */
#include "webhook_outbox.h"

#include <stdio.h>
#include <stdlib.h>

/* RFC 3339 in UTC with milliseconds, as every zeroloss event writes times. */
#define UTC_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The body is what the receiver verifies: built once here from the row
 * (the truth, facts.h), so every attempt signs the same bytes. jsonb's
 * text form is compact and its keys sorted: stable across versions. The
 * row's updated_at is when it became credited (credited is terminal). */
static const char OUTBOX_SQL[] =
    "INSERT INTO webhook_deliveries (delivery_id, subscriber_id, deposit_id, user_id, body)"
    " SELECT webhook_delivery_id(s.subscriber_id, d.deposit_id), s.subscriber_id, d.deposit_id, d.user_id,"
    " jsonb_build_object('event', 'credit.applied',"
    " 'delivery_id', webhook_delivery_id(s.subscriber_id, d.deposit_id), 'deposit_id', d.deposit_id,"
    " 'user_id', d.user_id, 'token', d.token, 'amount', d.amount::text, 'eggs', d.credit_eggs::text,"
    " 'credit_id', d.credit_id, 'tx_hash', d.tx_hash, 'occurred_at', " UTC_MS("d.occurred_at") ","
    " 'credited_at', " UTC_MS("d.updated_at") ")::text"
    " FROM unnest($1::text[]) WITH ORDINALITY AS u(id, ord) JOIN deposits d ON d.deposit_id = u.id"
    " CROSS JOIN webhook_subscribers s WHERE s.active AND d.state = 'credited'"
    " ORDER BY u.ord, s.subscriber_id ON CONFLICT (subscriber_id, deposit_id) DO NOTHING";

int zl_webhook_outbox_prepare(struct zl_pg *pg)
{
    return zl_pg_add_stmt(pg, "webhook_outbox_insert", OUTBOX_SQL, 1);
}

zl_class zl_webhook_outbox_insert(struct zl_pg *pg, const char *const *ids, size_t n, long long *inserted,
                                  char *errstr, size_t errstr_size)
{
    char *arr = zl_pg_array_literal(ids, n);
    if (arr == NULL) {
        snprintf(errstr, errstr_size, "webhook outbox: out of memory for %zu ids", n);
        return ZL_TRANSIENT;
    }
    const char *v[1] = {arr};
    zl_class c = ZL_OK;
    PGresult *r = zl_pg_prepared(pg, "webhook_outbox_insert", 1, v, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    free(arr);
    if (r == NULL)
        return c;
    if (inserted != NULL)
        *inserted = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return ZL_OK;
}
