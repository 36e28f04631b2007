#include "admin.h"
#include "admin_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "pg.h"
#include "reconcile.h"
#include "sweep.h"

/* Longest reason, Idempotency-Key and deposit id accepted. */
#define REASON_MAX_BYTES 2000
#define IDEM_KEY_MAX_BYTES 200
#define DEPOSIT_ID_MAX_BYTES (ZL_DEPOSIT_ID_SIZE - 1)
/* Default and largest page of the dead-letter listing. */
#define LIST_DEFAULT 100
/* sha256 as bare lowercase hex, NUL included. */
#define SHA256_HEX_SIZE (2 * SHA256_DIGEST_SIZE + 1)
/* Peers whose failed attempts are counted apart. A peer past it takes the
 * slot of the one idle longest: it starts with a full budget, which costs
 * an attacker with many addresses nothing they did not have anyway, and
 * operators (authenticated) never draw on these budgets. */
#define FAIL_PEERS_MAX 256

struct worker {
    char name[64];
    char url[512];
};

/* Shortest token accepted: 16 characters. */
#define TOKEN_MIN_CHARS 16

/* One caller: a token of ZL_ADMIN_TOKEN_FILE, with its own budget. */
struct caller {
    char *token;                              /* owned copy; wiped on free */
    char fpr[ZL_HEALTH_TOKEN_FPR_SIZE];       /* zl_health_token_fingerprint(token) */
    struct zl_token_bucket bucket;            /* guarded by rate_lock */
};

/* One peer's budget of failed attempts. */
struct fail_peer {
    char addr[ZL_HEALTH_PEER_SIZE]; /* "" = free slot */
    struct zl_token_bucket bucket;
};

struct zl_admin {
    struct zl_admin_opts o;
    struct caller callers[ZL_ADMIN_TOKENS_MAX];
    int ncallers;
    struct worker workers[ZL_ADMIN_WORKERS_MAX];
    int nworkers;
    pthread_mutex_t db_lock;              /* guards pg: one request at a time */
    struct zl_pg pg;
    pthread_mutex_t rate_lock;            /* guards the callers' buckets and fail_peers */
    struct fail_peer fail_peers[FAIL_PEERS_MAX];
    struct zl_pg gauges_pg;               /* main thread only: zl_admin_tick */
    struct zl_rpc *rpc;                   /* claims; NULL without rpc_urls (guarded by db_lock) */
    struct zl_tokens tokens;              /* what claims look for (o.tokens or o.token_address) */
};

/* ------------------------------------------------------------ pure helpers */

bool zl_admin_auth_ok(const char *authorization, const char *expected)
{
    return zl_health_bearer_ok(authorization, expected);
}

static void sha256_hex(const char *data, size_t len, char out[SHA256_HEX_SIZE])
{
    uint8_t d[SHA256_DIGEST_SIZE];
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, (const uint8_t *)data);
    sha256_digest(&c, sizeof(d), d);
    zl_hex_encode_bare(d, sizeof(d), out, SHA256_HEX_SIZE);
}

/* ------------------------------------------------------------ statements */

#define RESOLVED_MATCH                                                                                         \
    "EXISTS (SELECT 1 FROM dead_resolutions r WHERE r.deposit_id = d.deposit_id"                              \
    " AND r.dlq_topic = coalesce(d.dlq_topic, '') AND r.dlq_partition = coalesce(d.dlq_partition, -1)"        \
    " AND r.dlq_offset = coalesce(d.dlq_offset, -1))"

/* The row as a JSON object, its numeric columns as strings: amounts, token
 * ids and eggs are uint256s (numeric(78,0)), past what jansson's int64 and
 * a JavaScript client's doubles hold (a 20-token deposit is 2e19 in 18
 * decimals), so as numbers they made json_loads fail (HTTP 500) or a
 * client round them. By column type, not by name, so a numeric column
 * added later travels as a string too; column order is kept. */
#define ROW_JSON                                                                                               \
    "(SELECT json_object_agg(j.key, CASE WHEN a.atttypid = 'numeric'::regtype THEN to_json(j.value #>> '{}')"  \
    " ELSE j.value END ORDER BY a.attnum) FROM json_each(row_to_json(d)) j JOIN pg_attribute a"                 \
    " ON a.attrelid = 'deposits'::regclass AND a.attname = j.key)"

static const struct {
    const char *name, *sql;
    int n;
} stmts[] = {
    {"adm_row", "SELECT " ROW_JSON "::text, (" RESOLVED_MATCH ")::text FROM deposits d WHERE deposit_id = $1", 1},
    {"adm_history",
     "SELECT coalesce(json_agg(h ORDER BY h.id), '[]')::text FROM deposit_history h WHERE deposit_id = $1", 1},
    {"adm_audits", "SELECT coalesce(json_agg(a ORDER BY a.id), '[]')::text FROM admin_audit a WHERE deposit_id = $1",
     1},
    {"adm_replays",
     "SELECT coalesce(json_agg(r ORDER BY r.claimed_at), '[]')::text FROM replay_log r WHERE deposit_id = $1", 1},
    {"adm_dead",
     "SELECT coalesce(json_agg(x), '[]')::text FROM (SELECT d.deposit_id, d.user_id, d.amount::text AS amount,"
     " d.dead_from_state, d.last_error_class, d.last_error, d.attempts, d.dlq_topic, d.dlq_partition, d.dlq_offset,"
     " d.updated_at AS dead_since, (" RESOLVED_MATCH ") AS resolved FROM deposits d WHERE d.state = 'dead'"
     " AND ($2 = '' OR right(coalesce(d.dlq_topic, ''), length($2) + 5) = '.' || $2 || '.dlq')"
     " AND ($3 = '1' OR NOT " RESOLVED_MATCH ") ORDER BY d.updated_at LIMIT $1::int) x",
     3},
    {"adm_lock_row", "SELECT state, coalesce(dead_from_state, '') FROM deposits WHERE deposit_id = $1 FOR UPDATE", 1},
    {"adm_resolve",
     "INSERT INTO dead_resolutions (deposit_id, dlq_topic, dlq_partition, dlq_offset, actor, reason)"
     " SELECT deposit_id, coalesce(dlq_topic, ''), coalesce(dlq_partition, -1), coalesce(dlq_offset, -1), $2, $3"
     " FROM deposits WHERE deposit_id = $1 AND state = 'dead' ON CONFLICT DO NOTHING RETURNING 1",
     3},
    {"adm_requeue",
     "UPDATE deposits SET state = coalesce(dead_from_state, 'detected'), dead_from_state = NULL, attempts = 0,"
     " next_attempt_at = NULL, last_error = $2, last_error_class = NULL, updated_at = now()"
     " WHERE deposit_id = $1 AND state = 'dead' RETURNING state",
     2},
    {"adm_sweep_req",
     "INSERT INTO sweep_requests (requested_by, stale_ms, deposit_id) VALUES ($1, $2::bigint, nullif($3, ''))"
     " RETURNING id::text",
     3},
    {"adm_sweep_get", "SELECT row_to_json(s)::text FROM sweep_requests s WHERE id = $1::bigint", 1},
    {"adm_audit",
     "INSERT INTO admin_audit (actor, action, deposit_id, reason, from_state, to_state, idempotency_key, detail)"
     " VALUES ($1, $2, nullif($3, ''), $4, nullif($5, ''), nullif($6, ''), nullif($7, ''), $8::jsonb)",
     8},
    {"adm_idem_get", "SELECT method, path, request_hash, status::text, body FROM admin_idempotency WHERE key = $1", 1},
    {"adm_idem_put",
     "INSERT INTO admin_idempotency (key, method, path, request_hash, status, body)"
     " VALUES ($1, $2, $3, $4, $5::int, $6) ON CONFLICT DO NOTHING",
     6},
};

/* ------------------------------------------------------------ plumbing */

static void set_error(struct call *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_error(struct call *c, int status, const char *fmt, ...)
{
    char msg[ZL_ERRSTR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_decref(c->body);
    c->status = status;
    c->body = json_pack("{s:s}", "error", msg);
}

/* Runs a prepared statement on the admin connection (db_lock held). On a
 * failure sets a 503/500 answer and returns NULL. */
static PGresult *db(struct call *c, const char *name, int n, const char *const *v, int expect)
{
    char err[ZL_ERRSTR_SIZE];
    zl_class cls = zl_pg_ensure(&c->a->pg, err, sizeof(err));
    PGresult *r = NULL;
    if (cls == ZL_OK)
        r = zl_pg_prepared(&c->a->pg, name, n, v, expect, &cls, err, sizeof(err));
    if (r == NULL) {
        zl_log(ZL_LOG_WARN, NULL, "admin: %s: %s", name, err);
        set_error(c, cls == ZL_OUTAGE ? 503 : 500, "database: %s", err);
    }
    return r;
}

/* A single-value JSON query: parsed value, or NULL (answer set). */
static json_t *db_json(struct call *c, const char *name, const char *arg)
{
    const char *v[1] = {arg};
    PGresult *r = db(c, name, 1, v, PGRES_TUPLES_OK);
    if (r == NULL)
        return NULL;
    json_error_t je;
    json_t *j = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, &je) : json_null();
    if (j == NULL)
        set_error(c, 500, "%s: the database's JSON did not parse: %s (line %d, column %d)", name, je.text, je.line,
                  je.column);
    PQclear(r);
    return j;
}

static int audit(struct call *c, const char *action, const char *deposit_id, const char *reason, const char *from,
                 const char *to, json_t *detail)
{
    /* Who, from facts the caller cannot choose: the token they proved and
     * the address they called from (X-Actor is only what they say). */
    json_t *full = detail != NULL ? json_deep_copy(detail) : json_object();
    json_object_set_new(full, "token_fingerprint", json_string(c->caller->fpr));
    json_object_set_new(full, "peer", json_string(c->peer));
    char *d = json_dumps(full, JSON_COMPACT);
    json_decref(full);
    const char *v[8] = {c->actor, action, deposit_id, reason, from, to, c->idem_key != NULL ? c->idem_key : "",
                        d != NULL ? d : "{}"};
    PGresult *r = db(c, "adm_audit", 8, v, PGRES_COMMAND_OK);
    free(d);
    if (r == NULL)
        return -1;
    PQclear(r);
    zl_log_kv(ZL_LOG_INFO, NULL, "admin action", "action", action, "deposit", deposit_id, "actor", c->actor,
              "reason", reason, NULL);
    return 0;
}

/* The request body as a JSON object with a non-empty "reason", or NULL
 * (answer set). */
static json_t *body_with_reason(struct call *c, const char **reason)
{
    json_error_t je;
    json_t *j = c->req->body_len > 0 ? json_loadb(c->req->body, c->req->body_len, 0, &je) : json_object();
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        set_error(c, 400, "body must be a JSON object");
        return NULL;
    }
    *reason = json_string_value(json_object_get(j, "reason"));
    if (*reason == NULL || (*reason)[0] == '\0' || strlen(*reason) > REASON_MAX_BYTES) {
        json_decref(j);
        set_error(c, 400, "\"reason\" is required: a string of 1..%d bytes saying why", REASON_MAX_BYTES);
        return NULL;
    }
    return j;
}

/* For the handlers in other files (admin_int.h). */
void zl_admin_call_error(struct call *c, int status, const char *msg) { set_error(c, status, "%s", msg); }
PGresult *zl_admin_call_db(struct call *c, const char *name, int n, const char *const *v, int expect)
{
    return db(c, name, n, v, expect);
}
int zl_admin_call_audit(struct call *c, const char *action, const char *deposit_id, const char *reason,
                        const char *from, const char *to, json_t *detail)
{
    return audit(c, action, deposit_id, reason, from, to, detail);
}
json_t *zl_admin_call_body(struct call *c, const char **reason) { return body_with_reason(c, reason); }
const struct zl_admin_opts *zl_admin_call_opts(const struct call *c) { return &c->a->o; }

/* ------------------------------------------------------------ handlers */

static void h_health(struct call *c)
{
    json_t *workers = json_array();
    bool all_ready = true;
    for (int i = 0; i < c->a->nworkers; i++) {
        const struct worker *w = &c->a->workers[i];
        char url[600], err[256] = "";
        snprintf(url, sizeof(url), "%s/health/ready", w->url);
        char *body = NULL;
        long st = zl_admin_http_call(url, NULL, NULL, c->a->o.http_timeout_ms, &body, err, sizeof(err));
        json_t *parsed = body != NULL ? json_loads(body, 0, NULL) : NULL;
        free(body);
        bool ready = st == 200;
        all_ready = all_ready && ready;
        json_array_append_new(workers, json_pack("{s:s,s:s,s:b,s:i,s:o,s:s?}", "name", w->name, "url", w->url,
                                                 "ready", ready, "http_status", (int)st, "health",
                                                 parsed != NULL ? parsed : json_null(), "error",
                                                 err[0] ? err : NULL));
    }
    /* The database, from this process's own connection. */
    const char *v[1] = {""};
    PGresult *r = db(c, "adm_row", 1, v, PGRES_TUPLES_OK);
    bool db_ok = r != NULL;
    if (r != NULL)
        PQclear(r);
    json_decref(c->body);
    c->status = all_ready && db_ok ? 200 : 503;
    c->body = json_pack("{s:s,s:b,s:o}", "status", c->status == 200 ? "healthy" : "degraded", "database", db_ok,
                        "workers", workers);
}

static void h_deposit(struct call *c, const char *id)
{
    const char *v[1] = {id};
    PGresult *r = db(c, "adm_row", 1, v, PGRES_TUPLES_OK);
    if (r == NULL)
        return;
    if (PQntuples(r) == 0) {
        PQclear(r);
        set_error(c, 404, "no deposit %s", id);
        return;
    }
    json_error_t je;
    json_t *row = json_loads(PQgetvalue(r, 0, 0), 0, &je);
    bool resolved = strcmp(PQgetvalue(r, 0, 1), "true") == 0;
    PQclear(r);
    if (row == NULL)
        set_error(c, 500, "could not read deposit %s: its row did not parse as JSON: %s", id, je.text);
    json_t *hist = row != NULL ? db_json(c, "adm_history", id) : NULL;
    json_t *aud = hist != NULL ? db_json(c, "adm_audits", id) : NULL;
    json_t *rep = aud != NULL ? db_json(c, "adm_replays", id) : NULL;
    if (row == NULL || hist == NULL || aud == NULL || rep == NULL) {
        json_decref(row);
        json_decref(hist);
        json_decref(aud);
        json_decref(rep);
        if (c->status == 0)
            set_error(c, 500, "could not read deposit %s", id);
        return;
    }
    json_object_set_new(row, "resolved_by_operator", json_boolean(resolved));
    json_decref(c->body);
    c->status = 200;
    c->body = json_pack("{s:o,s:o,s:o,s:o}", "deposit", row, "history", hist, "audit", aud, "replays", rep);
}

static void h_dead(struct call *c)
{
    const char *limit = zl_health_request_arg(c->req, "limit");
    const char *stage = zl_health_request_arg(c->req, "stage");
    const char *inc = zl_health_request_arg(c->req, "include_resolved");
    long n = LIST_DEFAULT;
    if (limit != NULL) {
        char *end = NULL;
        n = strtol(limit, &end, 10);
        if (end == limit || *end != '\0' || n < 1 || n > ZL_ADMIN_LIST_LIMIT) {
            set_error(c, 400, "limit: expected 1..%d", ZL_ADMIN_LIST_LIMIT);
            return;
        }
    }
    char ns[ZL_INT64_DEC_SIZE];
    snprintf(ns, sizeof(ns), "%ld", n);
    const char *v[3] = {ns, stage != NULL ? stage : "", inc != NULL && strcmp(inc, "1") == 0 ? "1" : "0"};
    PGresult *r = db(c, "adm_dead", 3, v, PGRES_TUPLES_OK);
    if (r == NULL)
        return;
    json_error_t je;
    json_t *list = json_loads(PQgetvalue(r, 0, 0), 0, &je);
    PQclear(r);
    if (list == NULL) {
        /* Never an empty listing in its place: that would say "no dead letters". */
        set_error(c, 500, "could not list dead letters: the database's JSON did not parse: %s", je.text);
        return;
    }
    json_decref(c->body);
    c->status = 200;
    c->body = json_pack("{s:o,s:i}", "dead", list, "count", (int)json_array_size(list));
}

/* POST /admin/dead/{id}/resolve, inside the caller's transaction. */
static void h_resolve(struct call *c, const char *id)
{
    const char *reason = NULL;
    json_t *in = body_with_reason(c, &reason);
    if (in == NULL)
        return;
    const char *action = json_string_value(json_object_get(in, "action"));
    if (action == NULL)
        action = "resolve";
    if (strcmp(action, "resolve") != 0 && strcmp(action, "requeue") != 0) {
        set_error(c, 400, "\"action\" must be \"resolve\" or \"requeue\"");
        goto out;
    }
    const char *v[1] = {id};
    PGresult *r = db(c, "adm_lock_row", 1, v, PGRES_TUPLES_OK);
    if (r == NULL)
        goto out;
    if (PQntuples(r) == 0) {
        PQclear(r);
        set_error(c, 404, "no deposit %s", id);
        goto out;
    }
    char state[32], from[32];
    snprintf(state, sizeof(state), "%s", PQgetvalue(r, 0, 0));
    snprintf(from, sizeof(from), "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    if (strcmp(state, "dead") != 0) {
        set_error(c, 409, "deposit %s is %s, not dead: nothing to resolve", id, state);
        goto out;
    }
    char to[32] = "dead";
    if (strcmp(action, "resolve") == 0) {
        const char *rv[3] = {id, c->actor, reason};
        r = db(c, "adm_resolve", 3, rv, PGRES_TUPLES_OK);
        if (r == NULL)
            goto out;
        bool fresh = PQntuples(r) == 1;
        PQclear(r);
        if (!fresh) {
            set_error(c, 409, "deposit %s: this dead letter is already resolved", id);
            goto out;
        }
    } else {
        char note[REASON_MAX_BYTES + 64];
        snprintf(note, sizeof(note), "requeued by operator: %s", reason);
        const char *qv[2] = {id, note};
        r = db(c, "adm_requeue", 2, qv, PGRES_TUPLES_OK);
        if (r == NULL)
            goto out;
        snprintf(to, sizeof(to), "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "dead");
        PQclear(r);
        /* The sweeper re-publishes this row's event on its next pass. */
        const char *sv[3] = {c->actor, "0", id};
        r = db(c, "adm_sweep_req", 3, sv, PGRES_TUPLES_OK);
        if (r == NULL)
            goto out;
        PQclear(r);
    }
    if (audit(c, action, id, reason, "dead", to, NULL) != 0)
        goto out;
    json_decref(c->body);
    c->status = 200;
    c->body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "deposit_id", id, "action", action, "from_state", "dead",
                        "to_state", to, "dead_from_state", from);
out:
    json_decref(in);
}

static void h_sweep(struct call *c)
{
    const char *reason = NULL;
    json_t *in = body_with_reason(c, &reason);
    if (in == NULL)
        return;
    json_int_t stale = 0;
    json_t *s = json_object_get(in, "stale_ms");
    if (s != NULL) {
        if (!json_is_integer(s) || json_integer_value(s) < 0 || json_integer_value(s) > 86400000) {
            set_error(c, 400, "\"stale_ms\" must be an integer 0..86400000");
            json_decref(in);
            return;
        }
        stale = json_integer_value(s);
    }
    const char *only = json_string_value(json_object_get(in, "deposit_id"));
    char ss[ZL_INT64_DEC_SIZE];
    snprintf(ss, sizeof(ss), "%" JSON_INTEGER_FORMAT, stale);
    const char *v[3] = {c->actor, ss, only != NULL ? only : ""};
    PGresult *r = db(c, "adm_sweep_req", 3, v, PGRES_TUPLES_OK);
    if (r != NULL) {
        char id[ZL_INT64_DEC_SIZE];
        snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        json_t *detail = json_pack("{s:s,s:I}", "request_id", id, "stale_ms", (json_int_t)stale);
        if (audit(c, "sweep", only != NULL ? only : "", reason, "", "", detail) == 0) {
            json_decref(c->body);
            c->status = 202;
            c->body = json_pack("{s:s,s:I,s:s}", "request_id", id, "stale_ms", (json_int_t)stale, "status",
                                "queued: the active zl-sweep takes it within a second");
        }
        json_decref(detail);
    }
    json_decref(in);
}

static void h_sweep_status(struct call *c, const char *id)
{
    char *end = NULL;
    strtoll(id, &end, 10);
    if (id[0] == '\0' || *end != '\0') {
        set_error(c, 400, "sweep request id must be a number");
        return;
    }
    json_t *j = db_json(c, "adm_sweep_get", id);
    if (j == NULL)
        return;
    if (json_is_null(j)) {
        json_decref(j);
        set_error(c, 404, "no sweep request %s", id);
        return;
    }
    json_decref(c->body);
    c->status = 200;
    c->body = j;
}

static const struct worker *find_worker(const struct zl_admin *a, const char *name)
{
    for (int i = 0; i < a->nworkers; i++)
        if (strcmp(a->workers[i].name, name) == 0 || strcmp(a->workers[i].url, name) == 0)
            return &a->workers[i];
    return NULL;
}

static void h_breaker_reset(struct call *c)
{
    const char *reason = NULL;
    json_t *in = body_with_reason(c, &reason);
    if (in == NULL)
        return;
    const char *wname = json_string_value(json_object_get(in, "worker"));
    const char *dep = json_string_value(json_object_get(in, "dependency"));
    const struct worker *w = wname != NULL ? find_worker(c->a, wname) : NULL;
    if (w == NULL) {
        set_error(c, 400, "\"worker\" must name one of ZL_ADMIN_WORKER_URLS (by name or URL)");
        json_decref(in);
        return;
    }
    char url[600], err[256] = "";
    snprintf(url, sizeof(url), "%s/admin/breakers/reset", w->url);
    json_t *fwd = json_pack("{s:s?,s:s}", "dependency", dep, "reason", reason);
    char *fbody = json_dumps(fwd, JSON_COMPACT);
    json_decref(fwd);
    char *body = NULL;
    /* A worker's /admin/ needs its admin token (health.h). */
    const char *wt = c->a->o.worker_token != NULL && c->a->o.worker_token[0] ? c->a->o.worker_token
                                                                             : c->a->callers[0].token;
    long st = zl_admin_http_call(url, fbody != NULL ? fbody : "{}", wt, c->a->o.http_timeout_ms, &body, err,
                                 sizeof(err));
    free(fbody);
    json_t *answer = body != NULL ? json_loads(body, 0, NULL) : NULL;
    free(body);
    json_t *detail = json_pack("{s:s,s:s?,s:i}", "worker", w->name, "dependency", dep, "worker_status", (int)st);
    if (audit(c, "breaker_reset", "", reason, "", "", detail) == 0) {
        if (st >= 200 && st < 300) {
            json_decref(c->body);
            c->status = 200;
            c->body = json_pack("{s:s,s:s?,s:o}", "worker", w->name, "dependency", dep, "worker_answer",
                                answer != NULL ? json_incref(answer) : json_null());
        } else if (st == 401 || st == 403) {
            set_error(c, 502, "worker %s refused the admin token (%ld): give it the same ZL_ADMIN_TOKEN_FILE as"
                              " zl-admin's ZL_ADMIN_WORKER_TOKEN_FILE (or zl-admin's own token)", w->name, st);
        } else if (st == 404 || st == 405) {
            set_error(c, 501, "worker %s has no breaker reset endpoint (POST /admin/breakers/reset); its breakers"
                              " close by themselves after their break duration", w->name);
        } else {
            set_error(c, 502, "worker %s answered %ld%s%s", w->name, st, err[0] ? ": " : "", err);
        }
    }
    json_decref(detail);
    json_decref(answer);
    json_decref(in);
}

/* POST /admin/claims {"tx_hash":"0x..","reason":"..."}: records the
 * deposits in a transaction that detect missed, through detect's own
 * statement (reconcile.h), asks the sweeper to publish each new one now, and
 * says where each deposit of the transaction is. Audited. */
static void h_claim(struct call *c)
{
    const char *reason = NULL;
    json_t *in = body_with_reason(c, &reason), *list = NULL, *d;
    if (in == NULL)
        return;
    const char *tx = json_string_value(json_object_get(in, "tx_hash"));
    char err[ZL_ERRSTR_SIZE];
    zl_class cls = ZL_OK;
    if (c->a->rpc == NULL)
        set_error(c, 503, "claims need ZL_RPC_URLS and ZL_TOKENS (or ZL_TOKEN_ADDRESS) on zl-admin");
    else if ((cls = zl_claim_run(&c->a->pg, c->a->rpc, (uint64_t)c->a->o.chain_id, &c->a->tokens, tx, &list, err,
                                 sizeof(err))) != ZL_OK)
        set_error(c, cls == ZL_PERMANENT ? 422 : 502, "claim %s: %s", tx != NULL ? tx : "", err);
    size_t i, fresh = 0;
    /* One audit entry per deposit recorded (in its history), else one for
     * the transaction. */
    json_array_foreach(list, i, d) {
        const char *id = json_string_value(json_object_get(d, "deposit_id"));
        if (strcmp(json_string_value(json_object_get(d, "recorded")), "now") != 0)
            continue;
        const char *sv[3] = {c->actor, "0", id};
        PGresult *r = db(c, "adm_sweep_req", 3, sv, PGRES_TUPLES_OK);
        PQclear(r);
        if (r == NULL || audit(c, "claim", id, reason, "", "detected", d) != 0)
            goto out;
        fresh++;
    }
    json_t *detail = json_pack("{s:s?}", "tx_hash", tx);
    if (list != NULL && (fresh > 0 || audit(c, "claim", "", reason, "", "", detail) == 0)) {
        json_decref(c->body);
        c->status = 200;
        c->body = json_pack("{s:s,s:O,s:I}", "tx_hash", tx, "deposits", list, "recorded_now", (json_int_t)fresh);
    }
    json_decref(detail);
out:
    json_decref(list);
    json_decref(in);
}

/* ------------------------------------------------------------ routing */

static bool path_param(const char *path, const char *prefix, const char *suffix, char *out, size_t out_size)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), len = strlen(path);
    if (len <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + len - sl, suffix) != 0)
        return false;
    size_t n = len - pl - sl;
    if (n == 0 || n >= out_size || n > DEPOSIT_ID_MAX_BYTES)
        return false;
    memcpy(out, path + pl, n);
    out[n] = '\0';
    return strchr(out, '/') == NULL;
}

/* /admin/webhooks...: admin_webhooks.c, with what this call proved. */
static const char *webhooks(struct call *c)
{
    struct zl_admin_wh_call w = {&c->a->pg, c->req, c->actor, c->caller->fpr, c->peer, c->idem_key, 0, NULL};
    const char *route = zl_admin_webhooks_dispatch(&w);
    if (route != NULL) {
        json_decref(c->body);
        c->status = w.status;
        c->body = w.body;
    }
    return route;
}

/* Dispatches; returns the route's metric label, or NULL for no such path. */
static const char *dispatch(struct call *c)
{
    const char *m = c->req->method, *p = c->req->path;
    bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
    char id[DEPOSIT_ID_MAX_BYTES + 1];
    if (strncmp(p, "/admin/webhooks", strlen("/admin/webhooks")) == 0)
        return webhooks(c);
    if (strcmp(p, "/admin/health") == 0 && get)
        return h_health(c), "health";
    if (strcmp(p, "/admin/dead") == 0 && get)
        return h_dead(c), "dead";
    if (strcmp(p, "/admin/sweep") == 0 && post)
        return h_sweep(c), "sweep";
    if (strcmp(p, "/admin/claims") == 0 && post)
        return h_claim(c), "claim";
    if (strcmp(p, "/admin/breakers/reset") == 0 && post)
        return h_breaker_reset(c), "breaker_reset";
    if (strcmp(p, "/admin/below-minimum") == 0 && get) /* admin_dust.c */
        return zl_admin_below_minimum(c), "below_minimum";
    if (path_param(p, "/admin/below-minimum/", "/credit", id, sizeof(id)) && post)
        return zl_admin_credit_below_minimum(c, id), "credit_below_minimum";
    if (path_param(p, "/admin/dead/", "/resolve", id, sizeof(id)) && post)
        return h_resolve(c, id), "resolve";
    if (path_param(p, "/admin/deposits/", "", id, sizeof(id)) && get)
        return h_deposit(c, id), "deposit";
    if (path_param(p, "/admin/sweep/", "", id, sizeof(id)) && get)
        return h_sweep_status(c, id), "sweep_status";
    return NULL;
}

static void respond(struct zl_health_response *resp, int status, json_t *body)
{
    char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    resp->status = status;
    if (s != NULL) {
        size_t n = strlen(s);
        resp->body = malloc(n + 2);
        if (resp->body != NULL) {
            memcpy(resp->body, s, n);
            resp->body[n] = '\n';
            resp->body[n + 1] = '\0';
            resp->body_len = n + 1;
        }
        free(s);
    }
}

static void count(struct zl_admin *a, const char *route, int status)
{
    if (a->o.metrics == NULL)
        return;
    char labels[96];
    snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%d\"", route, status);
    zl_metrics_counter_add(a->o.metrics, "zl_admin_requests_total", labels, 1);
}

/* A POST with an Idempotency-Key: the stored answer, a 422 for a reused key
 * with another request, or -1 to run the call (db_lock held). */
static int idem_lookup(struct call *c, const char *hash)
{
    const char *v[1] = {c->idem_key};
    PGresult *r = db(c, "adm_idem_get", 1, v, PGRES_TUPLES_OK);
    if (r == NULL)
        return 0;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return -1;
    }
    if (strcmp(PQgetvalue(r, 0, 1), c->req->path) != 0 || strcmp(PQgetvalue(r, 0, 2), hash) != 0) {
        PQclear(r);
        set_error(c, 422, "Idempotency-Key %s was used for another request", c->idem_key);
        return 0;
    }
    json_decref(c->body);
    c->status = (int)strtol(PQgetvalue(r, 0, 3), NULL, 10);
    c->body = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
    PQclear(r);
    return 0;
}

static void run_post(struct call *c)
{
    char hash[SHA256_HEX_SIZE];
    sha256_hex(c->req->body, c->req->body_len, hash);
    char err[ZL_ERRSTR_SIZE];
    if (c->idem_key != NULL && idem_lookup(c, hash) == 0)
        return;
    if (zl_pg_ensure(&c->a->pg, err, sizeof(err)) != ZL_OK || zl_pg_exec(&c->a->pg, "BEGIN", err, sizeof(err)) != ZL_OK) {
        set_error(c, 503, "database: %s", err);
        return;
    }
    const char *route = dispatch(c);
    if (route == NULL) {
        zl_pg_rollback(&c->a->pg);
        set_error(c, 404, "no such admin endpoint: POST %s", c->req->path);
        return;
    }
    if (c->status < 200 || c->status >= 300) {
        zl_pg_rollback(&c->a->pg);
        return;
    }
    if (c->idem_key != NULL) {
        char st[8];
        snprintf(st, sizeof(st), "%d", c->status);
        char *b = json_dumps(c->body, JSON_COMPACT);
        const char *v[6] = {c->idem_key, "POST", c->req->path, hash, st, b != NULL ? b : "{}"};
        PGresult *r = db(c, "adm_idem_put", 6, v, PGRES_COMMAND_OK);
        free(b);
        if (r == NULL) {
            zl_pg_rollback(&c->a->pg);
            return;
        }
        PQclear(r);
    }
    if (zl_pg_exec(&c->a->pg, "COMMIT", err, sizeof(err)) != ZL_OK)
        set_error(c, 503, "database: commit: %s", err);
}

/* The failed-attempt budget of peer (rate_lock held): its slot, or the
 * slot of the peer idle longest, started afresh. */
static struct zl_token_bucket *fail_bucket(struct zl_admin *a, const char *peer, int64_t now_ms)
{
    struct fail_peer *idlest = &a->fail_peers[0];
    for (int i = 0; i < FAIL_PEERS_MAX; i++) {
        struct fail_peer *f = &a->fail_peers[i];
        if (f->addr[0] != '\0' && strcmp(f->addr, peer) == 0)
            return &f->bucket;
        if (f->addr[0] == '\0' || (idlest->addr[0] != '\0' && f->bucket.last_ms < idlest->bucket.last_ms))
            idlest = f;
    }
    snprintf(idlest->addr, sizeof(idlest->addr), "%s", peer);
    zl_token_bucket_init(&idlest->bucket, a->o.auth_fail_per_s, a->o.auth_fail_burst, now_ms);
    return &idlest->bucket;
}

/* The caller whose token the Authorization header carries, or NULL. Every
 * token is compared, whichever matches, so the time says nothing about
 * which one did (or how many there are that did not). */
static struct caller *find_caller(struct zl_admin *a, const char *authorization)
{
    struct caller *found = NULL;
    for (int i = 0; i < a->ncallers; i++)
        if (zl_admin_auth_ok(authorization, a->callers[i].token) && found == NULL)
            found = &a->callers[i];
    return found;
}

/* Authentication first, then the budget: a caller with a token draws on
 * that token's budget, one without on its peer's budget of failures. So a
 * flood of wrong or missing tokens gets 401 then 429, and never spends what
 * operators need; nor does one operator's script spend another's. Returns
 * true to go on, false with the answer set. */
static bool admit(struct call *c)
{
    struct zl_admin *a = c->a;
    c->caller = find_caller(a, zl_health_request_header(c->req, "Authorization"));
    bool authed = c->caller != NULL;
    int64_t now_ms = zl_now_ms();
    pthread_mutex_lock(&a->rate_lock);
    int64_t wait_ms = zl_token_bucket_take(authed ? &c->caller->bucket : fail_bucket(a, c->peer, now_ms), now_ms);
    pthread_mutex_unlock(&a->rate_lock);
    if (!authed && a->o.metrics != NULL)
        zl_metrics_counter_add(a->o.metrics, "zl_admin_auth_failures_total", NULL, 1);
    if (wait_ms > 0) {
        set_error(c, 429, "%s: retry in %" PRId64 " ms",
                  authed ? "rate limited" : "too many failed attempts from this address", wait_ms);
        return false;
    }
    if (!authed) {
        set_error(c, 401, "missing or wrong bearer token (Authorization: Bearer <token>)");
        return false;
    }
    return true;
}

int zl_admin_route(void *opaque, const struct zl_health_request *req, struct zl_health_response *resp)
{
    struct zl_admin *a = opaque;
    if (strncmp(req->path, "/admin/", 7) != 0)
        return -1;
    struct call c = {.a = a, .req = req, .status = 0, .body = json_null()};
    zl_health_request_peer(req, c.peer, sizeof(c.peer));
    const char *route = "none";
    if (!admit(&c))
        goto out;
    const char *who = zl_health_request_header(req, "X-Actor");
    char who_s[64];
    snprintf(who_s, sizeof(who_s), "%s", who != NULL && who[0] ? who : "operator");
    for (char *p = who_s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"')
            *p = '_';
    snprintf(c.actor, sizeof(c.actor), "%s (token %s from %s)", who_s, c.caller->fpr, c.peer);
    const char *key = zl_health_request_header(req, "Idempotency-Key");
    if (key != NULL && (key[0] == '\0' || strlen(key) > IDEM_KEY_MAX_BYTES)) {
        set_error(&c, 400, "Idempotency-Key must be 1..%d bytes", IDEM_KEY_MAX_BYTES);
        goto out;
    }
    c.idem_key = key;
    pthread_mutex_lock(&a->db_lock);
    if (strcmp(req->method, "POST") == 0) {
        run_post(&c);
        route = "post";
    } else {
        const char *r = dispatch(&c);
        if (r == NULL)
            set_error(&c, 404, "no such admin endpoint: %s %s", req->method, req->path);
        else
            route = r;
    }
    pthread_mutex_unlock(&a->db_lock);
out:
    if (c.status == 0)
        set_error(&c, 500, "no answer");
    count(a, route, c.status);
    respond(resp, c.status, c.body);
    json_decref(c.body);
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

static void zl_admin_free_tokens(struct zl_admin *a)
{
    for (int i = 0; i < a->ncallers; i++) {
        memset(a->callers[i].token, 0, strlen(a->callers[i].token));
        free(a->callers[i].token);
        a->callers[i].token = NULL;
    }
    a->ncallers = 0;
}

/* ZL_ADMIN_TOKEN_FILE holds one token per line (blank lines skipped): one
 * per operator or script, each its own caller in the audit and the rate
 * limit. Errors name the line, never its content. */
static int parse_tokens(struct zl_admin *a, const char *text, char *errstr, size_t errstr_size)
{
    const char *p = text != NULL ? text : "";
    for (int line = 1; *p != '\0'; line++) {
        size_t len = strcspn(p, "\n");
        size_t skip = strspn(p, " \t"), n = len;
        while (n > skip && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        n -= skip; /* n >= skip: the trim stops there */
        if (n > 0) {
            if (n < TOKEN_MIN_CHARS) {
                snprintf(errstr, errstr_size, "ZL_ADMIN_TOKEN_FILE: the token on line %d is shorter than %d characters",
                         line, TOKEN_MIN_CHARS);
                return -1;
            }
            if (a->ncallers >= ZL_ADMIN_TOKENS_MAX) {
                snprintf(errstr, errstr_size, "ZL_ADMIN_TOKEN_FILE: more than %d tokens", ZL_ADMIN_TOKENS_MAX);
                return -1;
            }
            struct caller *c = &a->callers[a->ncallers];
            c->token = strndup(p + skip, n);
            if (c->token == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
            }
            zl_health_token_fingerprint(c->token, c->fpr);
            a->ncallers++;
        }
        p += len + (p[len] == '\n');
    }
    if (a->ncallers == 0) {
        snprintf(errstr, errstr_size, "ZL_ADMIN_TOKEN_FILE: the admin token must be at least %d characters",
                 TOKEN_MIN_CHARS);
        return -1;
    }
    return 0;
}

static int parse_workers(struct zl_admin *a, const char *list, char *errstr, size_t errstr_size)
{
    const char *p = list != NULL ? list : "";
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            if (a->nworkers >= ZL_ADMIN_WORKERS_MAX) {
                snprintf(errstr, errstr_size, "ZL_ADMIN_WORKER_URLS: more than %d workers", ZL_ADMIN_WORKERS_MAX);
                return -1;
            }
            char item[600];
            if (len >= sizeof(item)) {
                snprintf(errstr, errstr_size, "ZL_ADMIN_WORKER_URLS: entry too long");
                return -1;
            }
            memcpy(item, p, len);
            item[len] = '\0';
            struct worker *w = &a->workers[a->nworkers++];
            char *eq = strchr(item, '=');
            const char *url = eq != NULL ? eq + 1 : item;
            if (eq != NULL)
                *eq = '\0';
            snprintf(w->name, sizeof(w->name), "%s", item);
            snprintf(w->url, sizeof(w->url), "%s", url);
            size_t ul = strlen(w->url);
            while (ul > 0 && w->url[ul - 1] == '/')
                w->url[--ul] = '\0';
            if (strncmp(w->url, "http://", 7) != 0 && strncmp(w->url, "https://", 8) != 0) {
                snprintf(errstr, errstr_size, "ZL_ADMIN_WORKER_URLS: \"%s\" is not an http(s) URL", w->url);
                return -1;
            }
        }
        p = end != NULL ? end + 1 : p + len;
    }
    return 0;
}

int zl_admin_new(struct zl_admin **out, const struct zl_admin_opts *o, char *errstr, size_t errstr_size)
{
    *out = NULL;
    struct zl_admin *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    a->o = *o;
    if (parse_tokens(a, o->token, errstr, errstr_size) != 0 ||
        parse_workers(a, o->worker_urls, errstr, errstr_size) != 0) {
        zl_admin_free_tokens(a);
        free(a);
        return -1;
    }
    pthread_mutex_init(&a->db_lock, NULL);
    pthread_mutex_init(&a->rate_lock, NULL);
    for (int i = 0; i < a->ncallers; i++)
        zl_token_bucket_init(&a->callers[i].bucket, o->rate_per_s, o->burst, zl_now_ms());
    if (zl_pg_init(&a->pg, o->pg_dsn, o->pg_connect_timeout_ms) != 0 ||
        zl_pg_init(&a->gauges_pg, o->pg_dsn, o->pg_connect_timeout_ms) != 0 ||
        zl_state_gauges_prepare(&a->gauges_pg) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        zl_admin_free(a);
        return -1;
    }
    /* i == count: the claim's statement, detect's own (reconcile.h); with
     * i == 0, admin_dust.c's. */
    for (size_t i = 0; i <= sizeof(stmts) / sizeof(stmts[0]); i++) {
        if ((i < sizeof(stmts) / sizeof(stmts[0]) ? zl_pg_add_stmt(&a->pg, stmts[i].name, stmts[i].sql, stmts[i].n)
                                                  : zl_claim_prepare(&a->pg)) != 0 ||
            (i == 0 && zl_admin_dust_prepare(&a->pg) != 0)) {
            snprintf(errstr, errstr_size, "too many prepared statements");
            zl_admin_free(a);
            return -1;
        }
    }
    if (zl_claim_rpc_new(&a->rpc, o->rpc_urls, o->tokens, o->token_address, &a->tokens, o->http_timeout_ms,
                         o->rpc_allow_http, errstr, errstr_size) != 0) {
        zl_admin_free(a);
        return -1;
    }
    zl_admin_describe_metrics(o->metrics);
    *out = a;
    return 0;
}

int zl_admin_tick(struct zl_admin *a, char *errstr, size_t errstr_size)
{
    if (zl_pg_ensure(&a->gauges_pg, errstr, errstr_size) != ZL_OK)
        return -1;
    return zl_state_gauges_refresh(&a->gauges_pg, a->o.metrics, errstr, errstr_size) == ZL_OK ? 0 : -1;
}

void zl_admin_free(struct zl_admin *a)
{
    if (a == NULL)
        return;
    zl_pg_close(&a->pg);
    zl_pg_close(&a->gauges_pg);
    if (a->rpc != NULL)
        zl_rpc_free(a->rpc);
    pthread_mutex_destroy(&a->db_lock);
    pthread_mutex_destroy(&a->rate_lock);
    zl_admin_free_tokens(a);
    free(a);
}
