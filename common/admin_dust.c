/* admin_dust.c: below-minimum deposits in the admin API (admin.h, the
 * policy in docs/operations.md, "Below-minimum deposits").
 *
 * A deposit under its token's minimum is settled `below_minimum` by verify
 * (schemas/sql/013_below_minimum.sql): expected and frequent (dust, spam to
 * public addresses), so never a dead letter. An operator lists them, and may
 * credit one: the minimum is waived for that deposit alone (recorded on the
 * row: who, when; the reason in admin_audit), the row goes back to
 * `detected`, and the sweeper re-publishes its event, as a requeue of a dead
 * row does. verify then judges it without the minimum and it goes through
 * pinned, minted and credited like any deposit: once, since only a
 * `below_minimum` row is waived (a second call answers 409).
 *
 * @locality libmicrohttpd connection threads, admin.c's db_lock held.
 */
#include "admin.h"
#include "admin_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "tokens.h"

/* Default page of the listing; the largest is ZL_ADMIN_LIST_LIMIT. */
#define DUST_LIST_DEFAULT 100
/* Longest ?token= accepted: a symbol or a 0x address. */
#define DUST_TOKEN_ARG_MAX_BYTES (ZL_ADDRESS_HEX_SIZE - 1)

static const struct {
    const char *name, *sql;
    int n;
} dust_stmts[] = {
    /* $1 limit, $2 token address ('' = every token), oldest first */
    {"adm_bm_list",
     "SELECT coalesce(json_agg(x), '[]')::text FROM (SELECT deposit_id, user_id, token, amount::text AS amount,"
     " occurred_at, updated_at AS below_minimum_since, last_error FROM deposits WHERE state = 'below_minimum'"
     " AND ($2 = '' OR token = lower($2)) ORDER BY updated_at, deposit_id LIMIT $1::int) x",
     2},
    /* count and sum per token, over every row (not the page) */
    {"adm_bm_totals",
     "SELECT coalesce(json_agg(x ORDER BY x.token), '[]')::text FROM (SELECT token, count(*) AS count,"
     " sum(amount)::text AS amount FROM deposits WHERE state = 'below_minimum' AND ($1 = '' OR token = lower($1))"
     " GROUP BY token) x",
     1},
    /* the waiver: only a row still below_minimum, back to detected */
    {"adm_bm_waive",
     "UPDATE deposits SET min_waived_by = $2, min_waived_at = now(), state = 'detected', attempts = 0,"
     " next_attempt_at = NULL, last_error = $3, last_error_class = NULL, updated_at = now()"
     " WHERE deposit_id = $1 AND state = 'below_minimum'"
     " RETURNING user_id, token, amount::text",
     3},
};

int zl_admin_dust_prepare(struct zl_pg *pg)
{
    for (size_t i = 0; i < sizeof(dust_stmts) / sizeof(dust_stmts[0]); i++)
        if (zl_pg_add_stmt(pg, dust_stmts[i].name, dust_stmts[i].sql, dust_stmts[i].n) != 0)
            return -1;
    return 0;
}

/* The deposit tokens zl-admin knows (ZL_TOKENS or ZL_TOKEN_ADDRESS), for
 * symbols; an empty list when neither is set or they do not parse (the
 * listing then names tokens by address only). */
static void known_tokens(const struct call *c, struct zl_tokens *out)
{
    const struct zl_admin_opts *o = zl_admin_call_opts(c);
    char err[ZL_ERRSTR_SIZE];
    if (zl_tokens_load(out, o->tokens, o->token_address, NULL, err, sizeof(err)) != 0)
        out->n = 0;
}

/* Adds "symbol" to each object of list whose "token" zl-admin knows. */
static void add_symbols(json_t *list, const struct zl_tokens *ts)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *addr = json_string_value(json_object_get(e, "token"));
        const struct zl_token *t = addr != NULL ? zl_tokens_find(ts, addr) : NULL;
        json_object_set_new(e, "symbol", t != NULL ? json_string(t->symbol) : json_null());
    }
}

/* A single-value JSON query: the parsed value, or NULL (answer set). */
static json_t *dust_json(struct call *c, const char *name, int n, const char *const *v)
{
    PGresult *r = zl_admin_call_db(c, name, n, v, PGRES_TUPLES_OK);
    if (r == NULL)
        return NULL;
    json_error_t je;
    json_t *j = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, &je) : NULL;
    PQclear(r);
    if (j == NULL) /* never an empty listing in its place: that would say "none" */
        zl_admin_call_error(c, 500, "below-minimum listing: the database's JSON did not parse");
    return j;
}

/* ?limit=N: 0 with *n set, or -1 with the answer set. */
static int list_limit(struct call *c, long *n)
{
    const char *limit = zl_health_request_arg(c->req, "limit");
    *n = DUST_LIST_DEFAULT;
    if (limit == NULL)
        return 0;
    char *end = NULL;
    *n = strtol(limit, &end, 10);
    if (end == limit || *end != '\0' || *n < 1 || *n > ZL_ADMIN_LIST_LIMIT) {
        char msg[64];
        snprintf(msg, sizeof(msg), "limit: expected 1..%d", ZL_ADMIN_LIST_LIMIT);
        zl_admin_call_error(c, 400, msg);
        return -1;
    }
    return 0;
}

void zl_admin_below_minimum(struct call *c)
{
    long n;
    if (list_limit(c, &n) != 0)
        return;
    struct zl_tokens ts;
    known_tokens(c, &ts);
    /* ?token= is a symbol zl-admin knows, else an address. */
    const char *arg = zl_health_request_arg(c->req, "token");
    if (arg != NULL && strlen(arg) > DUST_TOKEN_ARG_MAX_BYTES) {
        zl_admin_call_error(c, 400, "token: expected a symbol of ZL_TOKENS or a 0x address");
        return;
    }
    const char *token = arg != NULL ? arg : "";
    for (size_t i = 0; i < ts.n && arg != NULL; i++)
        if (strcmp(ts.t[i].symbol, arg) == 0)
            token = ts.t[i].address;
    char ns[ZL_INT64_DEC_SIZE];
    snprintf(ns, sizeof(ns), "%ld", n);
    const char *lv[2] = {ns, token};
    json_t *list = dust_json(c, "adm_bm_list", 2, lv);
    json_t *totals = list != NULL ? dust_json(c, "adm_bm_totals", 1, lv + 1) : NULL;
    if (list == NULL || totals == NULL) {
        json_decref(list);
        return;
    }
    add_symbols(list, &ts);
    add_symbols(totals, &ts);
    json_int_t count = 0;
    size_t i;
    json_t *e;
    json_array_foreach(totals, i, e)
        count += json_integer_value(json_object_get(e, "count"));
    json_decref(c->body);
    c->status = 200;
    c->body = json_pack("{s:o,s:I,s:o}", "below_minimum", list, "count", count, "by_token", totals);
}

void zl_admin_credit_below_minimum(struct call *c, const char *id)
{
    const char *reason = NULL;
    json_t *in = zl_admin_call_body(c, &reason);
    if (in == NULL)
        return;
    const char *v[1] = {id};
    char msg[ZL_ERRSTR_SIZE];
    PGresult *r = zl_admin_call_db(c, "adm_lock_row", 1, v, PGRES_TUPLES_OK); /* admin.c's: FOR UPDATE */
    if (r == NULL)
        goto out;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(msg, sizeof(msg), "no deposit %s", id);
        zl_admin_call_error(c, 404, msg);
        goto out;
    }
    char state[ZL_STATE_NAME_SIZE];
    snprintf(state, sizeof(state), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (strcmp(state, "below_minimum") != 0) {
        /* Credited (or on its way) already, or never below the minimum:
         * a waiver now could only credit it twice or mean nothing. */
        snprintf(msg, sizeof(msg), "deposit %s is %s, not below_minimum: nothing to credit", id, state);
        zl_admin_call_error(c, 409, msg);
        goto out;
    }
    char note[ZL_ERRSTR_SIZE];
    snprintf(note, sizeof(note), "minimum waived by operator: %.*s", (int)(sizeof(note) - 64), reason);
    const char *wv[3] = {id, c->actor, note};
    r = zl_admin_call_db(c, "adm_bm_waive", 3, wv, PGRES_TUPLES_OK);
    if (r == NULL)
        goto out;
    json_t *detail = PQntuples(r) == 1 ? json_pack("{s:s,s:s,s:s}", "user_id", PQgetvalue(r, 0, 0), "token",
                                                   PQgetvalue(r, 0, 1), "amount", PQgetvalue(r, 0, 2))
                                       : NULL;
    PQclear(r);
    if (detail == NULL) {
        zl_admin_call_error(c, 500, "the waiver moved no row");
        goto out;
    }
    /* The sweeper re-publishes its detected event on its next pass. */
    const char *sv[3] = {c->actor, "0", id};
    r = zl_admin_call_db(c, "adm_sweep_req", 3, sv, PGRES_TUPLES_OK); /* admin.c's */
    if (r != NULL && zl_admin_call_audit(c, "credit_below_minimum", id, reason, "below_minimum", "detected",
                                         detail) == 0) {
        json_decref(c->body);
        c->status = 200;
        c->body = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s}", "deposit_id", id, "action", "credit_below_minimum",
                            "from_state", "below_minimum", "to_state", "detected", "deposit", detail, "next",
                            "verify passes it on without the minimum; zlctl deposit ID follows it to credited");
    }
    PQclear(r);
    json_decref(detail);
out:
    json_decref(in);
}
