/* admin_webhooks.c: the admin API's webhook subscribers and deliveries
 * (issue 21; schemas/sql/015_webhooks.sql, zlctl webhook ...). admin.c
 * routes every /admin/webhooks path here (admin_int.h); POSTs run inside
 * its transaction and Idempotency-Key handling, and each is audited.
 *
 *   GET  /admin/webhooks                      subscribers, without secrets
 *   POST /admin/webhooks                      {"url","secret","reason"}: 201
 *   POST /admin/webhooks/{id}/rotate          {"secret","old_valid_s","reason"}:
 *                                             the current secret stays valid
 *                                             (a second v1=) until retired or
 *                                             old_valid_s (default 7 days)
 *   POST /admin/webhooks/{id}/retire-secret   {"reason"}: the old one no more
 *   POST /admin/webhooks/{id}/disable         {"reason"}: no new deliveries,
 *                                             none sent
 *   GET  /admin/webhooks/{id}/deliveries[?state=pending|delivered|failed&limit=N]
 *   POST /admin/webhooks/deliveries/{delivery_id}/redeliver  {"reason"}:
 *                                             re-armed: pending, give-up clock
 *                                             restarted, its subscriber due now
 *
 * Secrets are written, never read back, logged or audited.
 *
 * @locality libmicrohttpd connection threads, with admin.c's db lock held.
 */
#include "admin_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A subscriber's secret: long enough to resist guessing, short enough for
 * the sender's buffer (webhook_sender.c). */
#define SECRET_MIN_BYTES 16
#define SECRET_MAX_BYTES 200
#define URL_MAX_BYTES 2000
#define REASON_MAX_BYTES 2000
/* A uuid's text, and a path's id segment read into a buffer this size. */
#define ID_SIZE 64
/* Rows a deliveries listing returns at most, and by default. */
#define DELIVERIES_LIMIT_MAX 1000
#define DELIVERIES_LIMIT_DEFAULT 100
/* How long a rotated-out secret stays valid unless retired first. */
#define OLD_SECRET_VALID_S_DEFAULT (7 * 86400)
#define OLD_SECRET_VALID_S_MAX (90 * 86400)

static const char LIST_SQL[] =
    "SELECT coalesce(json_agg(x ORDER BY x.created_at), '[]')::text FROM (SELECT s.subscriber_id, s.url, s.active,"
    " s.secret_old IS NOT NULL AND (s.secret_old_expires_at IS NULL OR s.secret_old_expires_at > now())"
    " AS old_secret_valid, s.secret_old_expires_at, s.created_at, s.failures, s.next_attempt_at, s.last_error,"
    " (SELECT count(*) FROM webhook_deliveries d WHERE d.subscriber_id = s.subscriber_id AND d.state = 'pending')"
    " AS pending, (SELECT count(*) FROM webhook_deliveries d WHERE d.subscriber_id = s.subscriber_id"
    " AND d.state = 'failed') AS failed FROM webhook_subscribers s) x";
static const char ADD_SQL[] =
    "INSERT INTO webhook_subscribers (url, secret) VALUES ($1, $2) RETURNING subscriber_id::text";
static const char ROTATE_SQL[] =
    "UPDATE webhook_subscribers SET secret_old = secret, secret = $2, updated_at = now(),"
    " secret_old_expires_at = now() + $3::bigint * interval '1 second' WHERE subscriber_id = $1::uuid"
    " RETURNING secret_old_expires_at::text";
static const char RETIRE_SQL[] =
    "UPDATE webhook_subscribers SET secret_old = NULL, secret_old_expires_at = NULL, updated_at = now()"
    " WHERE subscriber_id = $1::uuid RETURNING 1";
static const char DISABLE_SQL[] =
    "UPDATE webhook_subscribers SET active = false, updated_at = now() WHERE subscriber_id = $1::uuid RETURNING 1";
static const char DELIVERIES_SQL[] =
    "SELECT coalesce(json_agg(x ORDER BY x.seq), '[]')::text FROM (SELECT delivery_id, seq, deposit_id, user_id,"
    " state, attempts, created_at, armed_at, last_attempt_at, delivered_at, last_status, last_error"
    " FROM webhook_deliveries WHERE subscriber_id = $1::uuid AND ($2 = '' OR state = $2) ORDER BY seq"
    " LIMIT $3::int) x";
static const char REDELIVER_SQL[] =
    "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, armed_at = now(), last_error = $2"
    " WHERE delivery_id = $1::uuid RETURNING deposit_id, subscriber_id::text";
static const char DUE_NOW_SQL[] =
    "UPDATE webhook_subscribers SET next_attempt_at = NULL, updated_at = now() WHERE subscriber_id = $1::uuid";
static const char AUDIT_SQL[] =
    "INSERT INTO admin_audit (actor, action, deposit_id, reason, idempotency_key, detail)"
    " VALUES ($1, $2, nullif($3, ''), $4, nullif($5, ''), $6::jsonb)";

static void fail(struct zl_admin_wh_call *w, int status, const char *msg, const char *arg)
{
    char text[ZL_ERRSTR_SIZE];
    snprintf(text, sizeof(text), "%s%s", msg, arg != NULL ? arg : "");
    json_decref(w->body);
    w->status = status;
    w->body = json_pack("{s:s}", "error", text);
}

/* One parameterised statement; NULL with the answer set (503/500, or 404
 * for a bad uuid: the id is the caller's) on failure. */
static PGresult *q(struct zl_admin_wh_call *w, const char *sql, int n, const char *const *v, int expect)
{
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_pg_ensure(w->pg, err, sizeof(err));
    if (c != ZL_OK) {
        fail(w, 503, "database: ", err);
        return NULL;
    }
    PGresult *r = PQexecParams(w->pg->conn, sql, n, NULL, v, NULL, NULL, 0);
    if (r != NULL && PQresultStatus(r) == (ExecStatusType)expect)
        return r;
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    bool bad_input = state != NULL && strcmp(state, "22P02") == 0; /* invalid_text_representation */
    c = zl_pg_classify(w->pg, r, err, sizeof(err));
    PQclear(r);
    zl_log(ZL_LOG_WARN, NULL, "admin webhooks: %s", err);
    if (bad_input)
        fail(w, 404, "no such subscriber or delivery (not a uuid)", NULL);
    else
        fail(w, c == ZL_OUTAGE ? 503 : 500, "database: ", err);
    return NULL;
}

/* A single JSON value the database built: the answer with status. */
static void answer_json(struct zl_admin_wh_call *w, int status, const char *sql, int n, const char *const *v)
{
    PGresult *r = q(w, sql, n, v, PGRES_TUPLES_OK);
    if (r == NULL)
        return;
    json_t *j = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    PQclear(r);
    if (j == NULL) {
        fail(w, 500, "the database's JSON did not parse", NULL);
        return;
    }
    json_decref(w->body);
    w->status = status;
    w->body = j;
}

/* The body as an object with a reason (1..REASON_MAX_BYTES), or NULL with
 * the answer set. */
static json_t *body_of(struct zl_admin_wh_call *w, const char **reason)
{
    json_t *j = w->req->body_len > 0 ? json_loadb(w->req->body, w->req->body_len, 0, NULL) : json_object();
    *reason = json_string_value(json_object_get(j, "reason"));
    if (!json_is_object(j) || *reason == NULL || (*reason)[0] == '\0' || strlen(*reason) > REASON_MAX_BYTES) {
        json_decref(j);
        fail(w, 400, "body must be a JSON object with a \"reason\" saying why", NULL);
        return NULL;
    }
    return j;
}

static bool secret_ok(struct zl_admin_wh_call *w, const char *secret)
{
    size_t n = secret != NULL ? strlen(secret) : 0;
    for (size_t i = 0; i < n; i++)
        if (secret[i] <= ' ' || secret[i] > '~')
            n = 0; /* printable ASCII only: it travels in files and headers */
    if (n < SECRET_MIN_BYTES || n > SECRET_MAX_BYTES) {
        fail(w, 400, "\"secret\" must be 16..200 printable characters without spaces", NULL);
        return false;
    }
    return true;
}

/* The audit entry of a webhook action (never a secret). Returns 0, or -1
 * with the answer set. */
static int audit(struct zl_admin_wh_call *w, const char *action, const char *deposit_id, const char *reason,
                 const char *subscriber_id)
{
    json_t *d = json_pack("{s:s,s:s,s:s}", "subscriber_id", subscriber_id, "token_fingerprint", w->fingerprint,
                          "peer", w->peer);
    char *detail = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    const char *v[6] = {w->actor, action, deposit_id, reason, w->idem_key != NULL ? w->idem_key : "",
                        detail != NULL ? detail : "{}"};
    PGresult *r = q(w, AUDIT_SQL, 6, v, PGRES_COMMAND_OK);
    free(detail);
    if (r == NULL)
        return -1;
    PQclear(r);
    zl_log_kv(ZL_LOG_INFO, NULL, "admin action", "action", action, "subscriber_id", subscriber_id, "actor",
              w->actor, "reason", reason, NULL);
    return 0;
}

static void h_add(struct zl_admin_wh_call *w)
{
    const char *reason;
    json_t *in = body_of(w, &reason);
    if (in == NULL)
        return;
    const char *url = json_string_value(json_object_get(in, "url"));
    const char *secret = json_string_value(json_object_get(in, "secret"));
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strlen(url) > URL_MAX_BYTES) {
        fail(w, 400, "\"url\" must be an http:// or https:// URL", NULL);
    } else if (secret_ok(w, secret)) {
        const char *v[2] = {url, secret};
        PGresult *r = q(w, ADD_SQL, 2, v, PGRES_TUPLES_OK);
        if (r != NULL && audit(w, "webhook_add", "", reason, PQgetvalue(r, 0, 0)) == 0) {
            json_decref(w->body);
            w->status = 201;
            w->body = json_pack("{s:s,s:s,s:b}", "subscriber_id", PQgetvalue(r, 0, 0), "url", url, "active", 1);
        }
        PQclear(r);
    }
    json_decref(in);
}

/* rotate, retire-secret, disable: one UPDATE of subscriber id. */
static void h_change(struct zl_admin_wh_call *w, const char *id, const char *action)
{
    const char *reason;
    json_t *in = body_of(w, &reason);
    if (in == NULL)
        return;
    PGresult *r = NULL;
    if (strcmp(action, "rotate") == 0) {
        const char *secret = json_string_value(json_object_get(in, "secret"));
        json_int_t valid = json_is_integer(json_object_get(in, "old_valid_s"))
                               ? json_integer_value(json_object_get(in, "old_valid_s"))
                               : OLD_SECRET_VALID_S_DEFAULT;
        char vs[32];
        snprintf(vs, sizeof(vs), "%lld", (long long)valid);
        if (valid < 0 || valid > OLD_SECRET_VALID_S_MAX)
            fail(w, 400, "\"old_valid_s\" must be 0..7776000 (90 days)", NULL);
        else if (secret_ok(w, secret))
            r = q(w, ROTATE_SQL, 3, (const char *[]){id, secret, vs}, PGRES_TUPLES_OK);
    } else {
        r = q(w, strcmp(action, "disable") == 0 ? DISABLE_SQL : RETIRE_SQL, 1, (const char *[]){id},
              PGRES_TUPLES_OK);
    }
    if (r != NULL && PQntuples(r) == 0) {
        fail(w, 404, "no such subscriber: ", id);
    } else if (r != NULL) {
        char audited[48];
        snprintf(audited, sizeof(audited), "webhook_%s", action);
        if (audit(w, audited, "", reason, id) == 0) {
            json_decref(w->body);
            w->status = 200;
            w->body = json_pack("{s:s,s:s}", "subscriber_id", id, "done", action);
            if (strcmp(action, "rotate") == 0)
                json_object_set_new(w->body, "old_secret_valid_until", json_string(PQgetvalue(r, 0, 0)));
        }
    }
    PQclear(r);
    json_decref(in);
}

static void h_deliveries(struct zl_admin_wh_call *w, const char *id)
{
    const char *state = zl_health_request_arg(w->req, "state");
    const char *limit = zl_health_request_arg(w->req, "limit");
    long n = limit != NULL ? strtol(limit, NULL, 10) : DELIVERIES_LIMIT_DEFAULT;
    if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "delivered") != 0 &&
        strcmp(state, "failed") != 0) {
        fail(w, 400, "state must be pending, delivered or failed", NULL);
        return;
    }
    char lim[24];
    snprintf(lim, sizeof(lim), "%ld", n < 1 || n > DELIVERIES_LIMIT_MAX ? DELIVERIES_LIMIT_DEFAULT : n);
    answer_json(w, 200, DELIVERIES_SQL, 3, (const char *[]){id, state != NULL ? state : "", lim});
}

static void h_redeliver(struct zl_admin_wh_call *w, const char *delivery_id)
{
    const char *reason;
    json_t *in = body_of(w, &reason);
    if (in == NULL)
        return;
    char note[ZL_ERRSTR_SIZE];
    snprintf(note, sizeof(note), "re-armed by %s", w->actor);
    PGresult *r = q(w, REDELIVER_SQL, 2, (const char *[]){delivery_id, note}, PGRES_TUPLES_OK);
    if (r != NULL && PQntuples(r) == 0) {
        fail(w, 404, "no such delivery: ", delivery_id);
    } else if (r != NULL) {
        const char *dep = PQgetvalue(r, 0, 0), *sub = PQgetvalue(r, 0, 1);
        PGresult *d = q(w, DUE_NOW_SQL, 1, (const char *[]){sub}, PGRES_COMMAND_OK);
        if (d != NULL && audit(w, "webhook_redeliver", dep, reason, sub) == 0) {
            json_decref(w->body);
            w->status = 200;
            w->body = json_pack("{s:s,s:s,s:s,s:s}", "delivery_id", delivery_id, "deposit_id", dep, "subscriber_id",
                                sub, "state", "pending");
        }
        PQclear(d);
    }
    PQclear(r);
    json_decref(in);
}

/* "/admin/webhooks/<seg>/<tail>": seg into id; tail compared. */
static bool segment(const char *path, const char *prefix, const char *tail, char id[ID_SIZE])
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return false;
    const char *s = path + pl;
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= ID_SIZE || strcmp(s + n, tail) != 0)
        return false;
    memcpy(id, s, n);
    id[n] = '\0';
    return true;
}

const char *zl_admin_webhooks_dispatch(struct zl_admin_wh_call *w)
{
    const char *p = w->req->path;
    bool get = strcmp(w->req->method, "GET") == 0, post = strcmp(w->req->method, "POST") == 0;
    char id[ID_SIZE];
    if (strcmp(p, "/admin/webhooks") == 0 && get)
        return answer_json(w, 200, LIST_SQL, 0, NULL), "webhook_list";
    if (strcmp(p, "/admin/webhooks") == 0 && post)
        return h_add(w), "webhook_add";
    if (segment(p, "/admin/webhooks/deliveries/", "/redeliver", id) && post)
        return h_redeliver(w, id), "webhook_redeliver";
    if (segment(p, "/admin/webhooks/", "/deliveries", id) && get)
        return h_deliveries(w, id), "webhook_deliveries";
    if (segment(p, "/admin/webhooks/", "/rotate", id) && post)
        return h_change(w, id, "rotate"), "webhook_rotate";
    if (segment(p, "/admin/webhooks/", "/retire-secret", id) && post)
        return h_change(w, id, "retire_secret"), "webhook_retire_secret";
    if (segment(p, "/admin/webhooks/", "/disable", id) && post)
        return h_change(w, id, "disable"), "webhook_disable";
    return NULL;
}
