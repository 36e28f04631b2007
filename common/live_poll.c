/* live_poll.c: the live server's one poller (live.h, live_int.h). Each pass:
 *
 *   1. the watermark W = pg_snapshot_xmin(pg_current_snapshot()): every
 *      transaction below it has finished, so the history rows with tx < W
 *      are final (none can still appear; schemas/sql/016_live.sql);
 *   2. fan-out: the rows after the frontier F with tx < W, in (tx, id)
 *      order, a page at a time, each to the caught-up clients of its user;
 *      F moves to the last row sent, or to (W, 0) once none is left, so
 *      "sent" is always every row <= F in that order;
 *   3. catch-up: a new client gets its user's rows after its resume point
 *      up to F (a page per pass), then joins the fan-out, which starts
 *      right after F. Both run on this thread, so F cannot move in between:
 *      no row is missed or sent twice at the hand-over.
 *
 * One connection, one query per page: a thousand clients cost the database
 * what one does, plus one catch-up each when they connect.
 *
 * @locality the poller thread alone (its libpq connection is its own).
 */
#include "live.h"
#include "live_int.h"

#include "log.h"
#include "pg.h"
#include "zl.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* New clients caught up per pass at most (a page each), so a reconnect
 * storm after a restart does not hold the fan-out up for long. */
#define CATCHUPS_PER_PASS_MAX 32
/* Pause after a database failure before trying again. */
#define RETRY_MS 1000

/* Columns every history query returns, in this order (row_frame reads them). */
#define HISTORY_COLUMNS                                                                                       \
    "h.id, h.tx::text, d.user_id, h.deposit_id, h.from_state, h.to_state, "                                  \
    "to_char(h.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), d.chain_id, d.tx_hash, d.token, " \
    "d.amount::text"
enum { COL_ID, COL_TX, COL_USER, COL_DEPOSIT, COL_FROM, COL_TO, COL_AT, COL_CHAIN, COL_TXHASH, COL_TOKEN, COL_AMOUNT };

static const char SQL_WATERMARK[] = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text";
static const char SQL_NEW_ROWS[] =
    "SELECT " HISTORY_COLUMNS " FROM deposit_history h JOIN deposits d ON d.deposit_id = h.deposit_id"
    " WHERE (h.tx, h.id) > ($1::xid8, $2::bigint) AND h.tx < $3::xid8 ORDER BY h.tx, h.id LIMIT $4";
static const char SQL_CATCH_UP[] =
    "SELECT " HISTORY_COLUMNS " FROM deposit_history h JOIN deposits d ON d.deposit_id = h.deposit_id"
    " WHERE d.user_id = $1 AND (h.tx, h.id) > ($2::xid8, $3::bigint) AND (h.tx, h.id) <= ($4::xid8, $5::bigint)"
    " ORDER BY h.tx, h.id LIMIT $6";
static const char SQL_RESUME_POINT[] = "SELECT tx::text FROM deposit_history WHERE id = $1";

struct poller {
    struct zl_live *l;
    struct zl_pg pg;
    struct live_pos frontier; /* every row <= it went to the caught-up clients */
    bool have_frontier;       /* false until the first watermark is read */
    char err[ZL_ERRSTR_SIZE];
};

/* ---- rows to frames ----------------------------------------------------------- */

static json_t *text_or_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

/* The SSE frame of one history row: `id:` and one line of JSON. NULL when
 * memory runs out (live_client_push then drops the client, which resumes). */
static char *row_frame(const PGresult *r, int row)
{
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "event_id", json_integer(strtoll(PQgetvalue(r, row, COL_ID), NULL, 10)));
    json_object_set_new(j, "deposit_id", text_or_null(r, row, COL_DEPOSIT));
    json_object_set_new(j, "user_id", text_or_null(r, row, COL_USER));
    json_object_set_new(j, "from", text_or_null(r, row, COL_FROM));
    json_object_set_new(j, "state", text_or_null(r, row, COL_TO));
    json_object_set_new(j, "at", text_or_null(r, row, COL_AT));
    json_object_set_new(j, "chain_id", json_integer(strtoll(PQgetvalue(r, row, COL_CHAIN), NULL, 10)));
    json_object_set_new(j, "tx_hash", text_or_null(r, row, COL_TXHASH));
    json_object_set_new(j, "token", text_or_null(r, row, COL_TOKEN));
    json_object_set_new(j, "amount", text_or_null(r, row, COL_AMOUNT));
    char *data = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (data == NULL)
        return NULL;
    size_t size = strlen(data) + 64;
    char *frame = malloc(size);
    if (frame != NULL)
        snprintf(frame, size, "id: %s\ndata: %s\n\n", PQgetvalue(r, row, COL_ID), data);
    free(data);
    return frame;
}

static struct live_pos row_pos(const PGresult *r, int row)
{
    struct live_pos pos = {strtoull(PQgetvalue(r, row, COL_TX), NULL, 10),
                           strtoll(PQgetvalue(r, row, COL_ID), NULL, 10)};
    return pos;
}

/* <0, 0, >0 as a is before, at or after b in the stream's order. */
static int pos_cmp(struct live_pos a, struct live_pos b)
{
    if (a.tx != b.tx)
        return a.tx < b.tx ? -1 : 1;
    if (a.id != b.id)
        return a.id < b.id ? -1 : 1;
    return 0;
}

/* Query parameters of a position: decimal text. */
struct pos_text {
    char tx[24], id[24];
};

static struct pos_text pos_text(struct live_pos pos)
{
    struct pos_text t;
    snprintf(t.tx, sizeof(t.tx), "%" PRIu64, pos.tx);
    snprintf(t.id, sizeof(t.id), "%" PRId64, pos.id);
    return t;
}

/* ---- queries -------------------------------------------------------------------- */

static PGresult *query(struct poller *p, const char *name, int n, const char *const *v)
{
    zl_class cls;
    PGresult *r = zl_pg_prepared(&p->pg, name, n, v, PGRES_TUPLES_OK, &cls, p->err, sizeof(p->err));
    if (r == NULL)
        zl_log(ZL_LOG_WARN, NULL, "live: %s: %s (%s)", name, p->err, zl_class_name(cls));
    return r;
}

/* Reads the watermark into *w. -1 on a database failure. */
static int watermark(struct poller *p, uint64_t *w)
{
    PGresult *r = query(p, "live_watermark", 0, NULL);
    if (r == NULL)
        return -1;
    int rc = -1;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        *w = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

/* Sends rows after the frontier with tx < w to the caught-up clients of
 * their users, a page per query, until none is left. -1 on a failure (the
 * frontier stays at the last row handed out). */
static int fan_out(struct poller *p, uint64_t w)
{
    char rows_max[24], wt[24];
    snprintf(rows_max, sizeof(rows_max), "%" PRId64, p->l->cfg.rows_max);
    snprintf(wt, sizeof(wt), "%" PRIu64, w);
    for (;;) {
        struct pos_text f = pos_text(p->frontier);
        const char *v[4] = {f.tx, f.id, wt, rows_max};
        PGresult *r = query(p, "live_new_rows", 4, v);
        if (r == NULL)
            return -1;
        int n = PQntuples(r);
        pthread_mutex_lock(&p->l->mu);
        for (int i = 0; i < n; i++) {
            const char *user = PQgetvalue(r, i, COL_USER);
            struct live_pos at = row_pos(r, i);
            for (struct live_client *c = p->l->clients; c != NULL; c = c->next) {
                if (!c->caught_up || strcmp(c->user, user) != 0 || pos_cmp(at, c->pos) <= 0)
                    continue;
                live_client_push(p->l, c, row_frame(r, i));
                c->pos = at;
            }
        }
        pthread_mutex_unlock(&p->l->mu);
        if (n > 0)
            p->frontier = row_pos(r, n - 1);
        PQclear(r);
        if (n < p->l->cfg.rows_max)
            break;
    }
    /* Nothing with tx < w is left: the next rows start at w. (The
     * watermark never goes back; were it to, the frontier stays.) */
    struct live_pos next = {w, 0};
    if (pos_cmp(next, p->frontier) > 0)
        p->frontier = next;
    return 0;
}

/* Turns c's Last-Event-ID into its position: (tx of that row, its id). An
 * id the table does not hold (another database's, a made-up one) replays
 * from the start: twice is better than missed. */
static int resolve_resume(struct poller *p, struct live_client *c, struct live_pos *pos)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, c->last_event_id);
    const char *v[1] = {id};
    PGresult *r = query(p, "live_resume_point", 1, v);
    if (r == NULL)
        return -1;
    pos->tx = 0;
    pos->id = 0;
    if (PQntuples(r) == 1) {
        pos->tx = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        pos->id = c->last_event_id;
    }
    PQclear(r);
    return 0;
}

/* One catch-up page for c (a ref held by the caller): its user's rows after
 * its position up to the frontier, as many as its queue has room for. */
static int catch_up(struct poller *p, struct live_client *c)
{
    struct zl_live *l = p->l;
    pthread_mutex_lock(&l->mu);
    bool resolve = c->resolve;
    struct live_pos pos = c->pos;
    size_t room = c->q_cap - c->q_len;
    pthread_mutex_unlock(&l->mu);
    if (resolve && resolve_resume(p, c, &pos) != 0)
        return -1;
    if ((int64_t)room > l->cfg.rows_max)
        room = (size_t)l->cfg.rows_max;
    if (room == 0)
        return 0; /* its queue is full: the next pass, once it has read */

    char lim[24];
    snprintf(lim, sizeof(lim), "%zu", room);
    struct pos_text from = pos_text(pos), to = pos_text(p->frontier);
    const char *v[6] = {c->user, from.tx, from.id, to.tx, to.id, lim};
    PGresult *r = query(p, "live_catch_up", 6, v);
    if (r == NULL)
        return -1;
    int n = PQntuples(r);
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n; i++)
        live_client_push(l, c, row_frame(r, i));
    if (n > 0)
        pos = row_pos(r, n - 1);
    c->resolve = false;
    c->pos = pos;
    if ((size_t)n < room)
        c->caught_up = true; /* all up to the frontier: the fan-out goes on from it */
    pthread_mutex_unlock(&l->mu);
    PQclear(r);
    return 0;
}

/* Catch-up pages for clients that are not caught up, a bounded number per
 * pass. Each is held by a ref while its query runs without the lock. */
static int catch_up_clients(struct poller *p)
{
    struct zl_live *l = p->l;
    struct live_client *todo[CATCHUPS_PER_PASS_MAX];
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    for (struct live_client *c = l->clients; c != NULL && n < CATCHUPS_PER_PASS_MAX; c = c->next) {
        if (!c->caught_up && !c->gone && !c->dropped) {
            c->refs++;
            todo[n++] = c;
        }
    }
    pthread_mutex_unlock(&l->mu);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = catch_up(p, todo[i]);
        pthread_mutex_lock(&l->mu);
        live_client_unref(l, todo[i]);
        pthread_mutex_unlock(&l->mu);
    }
    return rc;
}

/* ---- the loop ------------------------------------------------------------------- */

static int pass(struct poller *p)
{
    if (zl_pg_ensure(&p->pg, p->err, sizeof(p->err)) != ZL_OK) {
        zl_log(ZL_LOG_WARN, NULL, "live: database: %s", p->err);
        return -1;
    }
    uint64_t w;
    if (watermark(p, &w) != 0)
        return -1;
    if (!p->have_frontier) {
        /* History before the server started reaches clients by catch-up. */
        p->frontier.tx = w;
        p->frontier.id = 0;
        p->have_frontier = true;
    } else if (fan_out(p, w) != 0) {
        return -1;
    }
    return catch_up_clients(p);
}

/* Sleeps up to ms, or until a client arrives or the server stops. Returns
 * false when it stops. */
static bool wait_next(struct zl_live *l, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    if (!l->stopping)
        (void)pthread_cond_timedwait(&l->poll_cv, &l->mu, &until); /* a timeout is the usual wake-up */
    bool run = !l->stopping;
    pthread_mutex_unlock(&l->mu);
    return run;
}

void *live_poll_main(void *arg)
{
    static struct poller zero;
    struct poller *p = malloc(sizeof(*p));
    struct zl_live *l = arg;
    if (p == NULL) {
        zl_log(ZL_LOG_ERROR, NULL, "live: poller: out of memory; no live updates");
        return NULL;
    }
    *p = zero;
    p->l = l;
    if (zl_pg_init(&p->pg, l->pg_dsn, l->pg_connect_timeout_ms) != 0 ||
        zl_pg_add_stmt(&p->pg, "live_watermark", SQL_WATERMARK, 0) != 0 ||
        zl_pg_add_stmt(&p->pg, "live_new_rows", SQL_NEW_ROWS, 4) != 0 ||
        zl_pg_add_stmt(&p->pg, "live_catch_up", SQL_CATCH_UP, 6) != 0 ||
        zl_pg_add_stmt(&p->pg, "live_resume_point", SQL_RESUME_POINT, 1) != 0) {
        zl_log(ZL_LOG_ERROR, NULL, "live: poller: out of memory; no live updates");
        zl_pg_close(&p->pg);
        free(p);
        return NULL;
    }
    int64_t next_ms = l->cfg.poll_interval_ms;
    do {
        next_ms = pass(p) == 0 ? l->cfg.poll_interval_ms : RETRY_MS;
    } while (wait_next(l, next_ms));
    zl_pg_close(&p->pg);
    free(p);
    return NULL;
}
