/* runtime_batch.c: one poll batch, steps 1-6 of runtime.h (decode, rows,
 * the key and facts checked against the row, the stage's side effect with
 * in-place retries, the CAS, offsets). */
#include "runtime_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "facts.h"
#include "fault.h"
#include "trace.h"

const char *rt_phase_outcome(enum work_phase ph)
{
    switch (ph) {
    case PH_OK: return "ok";
    case PH_DONE: return "done";
    case PH_RETRY: return "retry";
    case PH_DLQ: return "dlq";
    case PH_UNFINISHED: return "unfinished";
    case PH_SKIP: return "skipped";
    default: return "new";
    }
}

void zl_work_log_ctx(const struct zl_work *w, struct zl_log_ctx *ctx)
{
    ctx->deposit_id = rt_work_of(w)->decoded ? w->in.deposit_id : NULL;
    ctx->topic = rd_kafka_topic_name(w->msg->rkt);
    ctx->partition = w->msg->partition;
    ctx->offset = w->msg->offset;
    ctx->trace_id = w->trace_id[0] ? w->trace_id : NULL;
}

static void start_trace(struct zl_work *w)
{
    if (zl_kafka_header(w->msg, "traceparent", w->traceparent, sizeof(w->traceparent)) == 0 &&
        zl_trace_parse(w->traceparent, w->trace_id) == 0)
        return;
    /* No usable parent: start a trace here. */
    zl_trace_new(NULL, w->traceparent, sizeof(w->traceparent), w->trace_id);
}

static int header_int(const rd_kafka_message_t *m, const char *name, int64_t dflt, int64_t *out)
{
    char buf[ZL_INT64_DEC_SIZE + 8]; /* an integer, and room to see a longer header as too long */
    *out = dflt;
    if (zl_kafka_header(m, name, buf, sizeof(buf)) != 0)
        return -1;
    char *end = NULL;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int tier_of(const struct rt *rt, const char *topic)
{
    for (int i = 0; i < rt->ntiers; i++)
        if (strcmp(rt->retry_topics[i], topic) == 0)
            return i;
    return -1;
}

/* Step 1: headers, delay tiers, decoding. */
static void decode_all(struct rt *rt, struct zl_work **ws, size_t n)
{
    int64_t now = zl_wall_ms();
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = ws[i];
        struct rt_work *rw = rt_work_of(w);
        if (rw->held)
            continue; /* fetched before a rewind of its partition: it comes again */
        const char *topic = rd_kafka_topic_name(w->msg->rkt);
        struct part *p = rt_part_find(rt, topic, w->msg->partition);
        if (p == NULL || p->paused_until_ms > 0) {
            rw->phase = PH_SKIP; /* revoked while the batch filled, or delayed */
            continue;
        }
        w->tier = tier_of(rt, topic);
        int64_t v;
        header_int(w->msg, "zl-attempt", 0, &v);
        w->attempt = v < 0 || v > 1000000 ? 0 : (int)v;
        header_int(w->msg, "zl-defers", 0, &v);
        w->defers = v < 0 || v > 1000000 ? 0 : (int)v;
        start_trace(w);
        /* A due time that is unreadable or past is due now; one beyond the
         * longest tier is the header's word only, clamped by rt_retry_due. */
        int64_t due = 0;
        if (w->tier >= 0 && header_int(w->msg, "zl-retry-due-at", 0, &due) == 0)
            due = rt_retry_due(rt, p, w->msg, w->tier, due, now);
        if (due > now) {
            /* Not due: hold the partition at this message. Later messages
             * in the tier are due later still (one fixed delay per tier). */
            p->paused_until_ms = zl_now_ms() + (due - now);
            rt_pause_one(rt, topic, w->msg->partition, w->msg->offset);
            rw->phase = PH_SKIP;
            continue;
        }
        char err[ZL_ERRSTR_SIZE];
        if (w->msg->payload == NULL ||
            zl_event_decode(rt->stage->in_kind, w->msg->payload, w->msg->len, &w->in, err, sizeof(err)) != 0) {
            w->result = ZL_POISON;
            snprintf(w->error, sizeof(w->error), "undecodable %s message: %s", zl_topic_kind_schema(rt->stage->in_kind),
                     w->msg->payload == NULL ? "empty value" : err);
            rw->phase = PH_DLQ;
            continue;
        }
        rw->decoded = true;
    }
}

/* Runs stage->process with in-place retries of transient failures. */
static zl_class process_with_retries(struct rt *rt, struct zl_work *w)
{
    for (int64_t a = 0;; a++) {
        w->error[0] = '\0';
        w->settle = ZL_STATE_UNKNOWN;
        w->defer_ms = 0;
        w->queued = false;
        zl_class c = rt->stage->process(rt->stage->ctx, w);
        if (c != ZL_TRANSIENT || a + 1 >= rt->cfg.inplace_attempts_max || !zl_boot_running())
            return c;
        int64_t delay = zl_backoff_delay_ms(&rt->inplace, (uint32_t)a);
        struct zl_log_ctx ctx;
        zl_work_log_ctx(w, &ctx);
        zl_log(ZL_LOG_INFO, &ctx, "transient failure, retrying in place in %" PRId64 " ms: %s", delay, w->error);
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (delay % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

static bool accepts(const struct zl_stage *st, zl_state s)
{
    /* accept_states is "{a,b}": match a whole element. */
    const char *name = zl_state_name(s);
    size_t len = strlen(name);
    for (const char *p = st->accept_states; (p = strstr(p, name)) != NULL; p += len) {
        char before = p == st->accept_states ? '{' : p[-1];
        char after = p[len];
        if ((before == '{' || before == ',') && (after == '}' || after == ','))
            return true;
    }
    return false;
}

/* The phase a decided work moves to (not ZL_OUTAGE, which stops the batch). */
static enum work_phase phase_of(zl_class c)
{
    return c == ZL_OK ? PH_NEW /* CAS pending */ : (c == ZL_TRANSIENT || c == ZL_DEFER) ? PH_RETRY : PH_DLQ;
}

void zl_works_fail(struct zl_work *const *ws, size_t n, zl_class c, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        ws[i]->result = c;
        snprintf(ws[i]->error, sizeof(ws[i]->error), "%s", why);
    }
}

/* Calls stage->process_batch once per deposit: a deposit twice in one poll
 * batch (a redelivery beside its retry, or the sweeper's re-publication)
 * goes to the hook once, and its later copies take the first copy's result,
 * output and reason. A hook would otherwise see one deposit twice in one
 * side effect (a mintBatch carrying an id twice, one file named twice in a
 * Kubo add). */

/* A work and its position in the poll batch, for call_batch_hook's sort. */
struct batch_ent {
    struct zl_work *w;
    size_t pos;
};

/* By deposit id, then position: a deposit's first copy sorts first. */
static int by_deposit_then_position(const void *a, const void *b)
{
    const struct batch_ent *x = a, *y = b;
    int c = strcmp(x->w->in.deposit_id, y->w->in.deposit_id);
    return c != 0 ? c : (x->pos < y->pos ? -1 : x->pos > y->pos);
}

static void call_batch_hook(struct rt *rt, struct zl_work **todo, size_t n)
{
    /* Sorted, the copies of one deposit sit side by side: n log n, not n^2,
     * on every poll batch (up to 500 works). */
    struct batch_ent *e = malloc(n * sizeof(*e));
    size_t *first = malloc(n * sizeof(*first)); /* per position: position of its deposit's first copy */
    struct zl_work **uniq = malloc(n * sizeof(*uniq));
    if (e == NULL || first == NULL || uniq == NULL) {
        free(e);
        free(first);
        free(uniq);
        return; /* every work stays at the preset "no result": retried */
    }
    for (size_t i = 0; i < n; i++)
        e[i] = (struct batch_ent){todo[i], i};
    qsort(e, n, sizeof(*e), by_deposit_then_position);
    for (size_t i = 0; i < n; i++)
        first[e[i].pos] = i > 0 && strcmp(e[i - 1].w->in.deposit_id, e[i].w->in.deposit_id) == 0
                              ? first[e[i - 1].pos]
                              : e[i].pos;
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) /* poll order, as the hook is promised */
        if (first[i] == i)
            uniq[nu++] = todo[i];
    rt->stage->process_batch(rt->stage->ctx, uniq, nu);
    for (size_t i = 0; i < n; i++) {
        if (first[i] == i)
            continue;
        const struct zl_work *f = todo[first[i]];
        todo[i]->result = f->result;
        todo[i]->settle = f->settle;
        todo[i]->defer_ms = f->defer_ms;
        todo[i]->queued = f->queued;
        todo[i]->out = f->out;
        snprintf(todo[i]->error, sizeof(todo[i]->error), "%s", f->error);
    }
    free(e);
    free(first);
    free(uniq);
}

/* Runs stage->process_batch over the accepted works, then again over those
 * that came back transient, with the same in-place backoff and bound as
 * process_with_retries. Returns false on an outage (enter_outage called);
 * the outage's works, and every success so far, stay PH_NEW. */
static bool process_batch_with_retries(struct rt *rt, struct zl_work **todo, size_t n)
{
    for (int64_t a = 0; n > 0; a++) {
        for (size_t i = 0; i < n; i++) {
            /* Preset: a work the stage forgot is retried, never "succeeds"
             * with an empty output. */
            todo[i]->result = ZL_TRANSIENT;
            todo[i]->settle = ZL_STATE_UNKNOWN;
            todo[i]->defer_ms = 0;
            todo[i]->queued = false;
            snprintf(todo[i]->error, sizeof(todo[i]->error), "stage %s set no result (or no reason) for this message",
                     rt->stage->name);
        }
        call_batch_hook(rt, todo, n);
        bool last = a + 1 >= rt->cfg.inplace_attempts_max || !zl_boot_running();
        bool outage = false;
        size_t again = 0;
        for (size_t i = 0; i < n; i++) {
            struct zl_work *w = todo[i];
            if (w->result == ZL_OUTAGE) {
                if (!outage)
                    rt_enter_outage(rt, w->error);
                outage = true; /* stays PH_NEW: unfinished */
            } else if (w->result == ZL_TRANSIENT && !last) {
                todo[again++] = w;
            } else {
                rt_work_of(w)->phase = phase_of(w->result);
            }
        }
        if (outage)
            return false; /* the transient ones stay PH_NEW too: re-consumed after it */
        if (again == 0)
            return true;
        n = again;
        int64_t delay = zl_backoff_delay_ms(&rt->inplace, (uint32_t)a);
        struct zl_log_ctx ctx;
        zl_work_log_ctx(todo[0], &ctx);
        zl_log(ZL_LOG_INFO, &ctx, "%zu transient failure(s) in a batch, retrying them in place in %" PRId64 " ms: %s",
               n, delay, todo[0]->error);
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (delay % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* Bytes of a Kafka key quoted in a dead letter's reason: a deposit id and
 * then some; a longer key is cut. */
#define KEY_QUOTE_BYTES_MAX 160

/* The Kafka key names the deposit too (it picks the partition, and so the
 * order of its events): a key that names another is misrouted or forged. */
static bool key_refused(struct zl_work *w)
{
    const rd_kafka_message_t *m = w->msg;
    size_t idlen = strlen(w->in.deposit_id);
    if (m->key != NULL && m->key_len == idlen && memcmp(m->key, w->in.deposit_id, idlen) == 0)
        return false;
    int shown = m->key == NULL ? 0 : (int)(m->key_len > KEY_QUOTE_BYTES_MAX ? KEY_QUOTE_BYTES_MAX : m->key_len);
    w->result = ZL_POISON;
    snprintf(w->error, sizeof(w->error), "key \"%.*s\" differs from deposit_id %s", shown,
             m->key == NULL ? "" : (const char *)m->key, w->in.deposit_id);
    return true;
}

/* The row is the truth (facts.h): a message that says something else about
 * its deposit is refused as poison, and the row is left untouched. One that
 * agrees takes the row's facts, so the stage acts on the row's. */
static bool facts_refused(struct zl_work *w)
{
    char why[ZL_ERRSTR_SIZE];
    if (zl_facts_compare(&w->row.facts, &w->in, NULL, why, sizeof(why)) == 0) {
        zl_facts_apply(&w->row.facts, &w->in);
        return false;
    }
    w->result = ZL_POISON;
    snprintf(w->error, sizeof(w->error), "message disagrees with the state row: %s", why);
    return true;
}

/* A republished output names the block the row records: a copy from before
 * a reorg still names the orphaned one. */
static void adopt_row_block(struct zl_work *w)
{
    w->in.block_number = w->row.block_number;
    snprintf(w->in.block_hash, sizeof(w->in.block_hash), "%s", w->row.block_hash);
}

/* The row is done already: publish its output again, built from the row.
 * Routes a failure by its class. Returns false on an outage. */
static bool republish(struct rt *rt, struct zl_work *w)
{
    struct rt_work *rw = rt_work_of(w);
    w->error[0] = '\0';
    zl_class c = rt->stage->republish(rt->stage->ctx, w);
    w->result = c;
    rw->has_out = c == ZL_OK;
    if (c == ZL_OUTAGE) {
        rt_enter_outage(rt, w->error);
        rw->phase = PH_UNFINISHED;
        return false;
    }
    rw->phase = c == ZL_OK ? PH_OK : (c == ZL_TRANSIENT || c == ZL_DEFER) ? PH_RETRY : PH_DLQ;
    return true;
}

/* Messages whose CAS found the row already moved by another copy publish
 * what the row holds, not their own result: the two may differ (e.g. a rate
 * looked up a moment later), and downstream must see what was recorded.
 * Returns false on an outage. */
static bool republish_lost_races(struct rt *rt, struct zl_work **group, size_t n)
{
    const char **ids = calloc(n, sizeof(*ids));
    struct zl_row *rows = calloc(n, sizeof(*rows));
    struct zl_work **lost = calloc(n, sizeof(*lost));
    bool ok = false;
    if (ids == NULL || rows == NULL || lost == NULL) {
        rt_enter_outage(rt, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rt_work_of(group[i])->lost_race) {
            lost[k] = group[i];
            ids[k++] = group[i]->in.deposit_id;
        }
    ok = true;
    if (k == 0)
        goto out;
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_state_read(&rt->pg, ids, k, rows, err, sizeof(err));
    if (c != ZL_OK) {
        rt_enter_outage(rt, err);
        for (size_t j = 0; j < k; j++)
            rt_work_of(lost[j])->phase = PH_UNFINISHED;
        ok = false;
        goto out;
    }
    for (size_t j = 0; j < k && ok; j++) {
        lost[j]->row = rows[j];
        if (!rows[j].found || zl_state_rank(rows[j].state) < zl_state_rank(rt->stage->done_state)) {
            rt_work_of(lost[j])->phase = PH_DONE; /* moved elsewhere (dead, reorged): nothing to publish */
            rt_work_of(lost[j])->has_out = false;
            continue;
        }
        adopt_row_block(lost[j]);
        ok = republish(rt, lost[j]);
    }
out:
    free(ids);
    free(rows);
    free(lost);
    return ok;
}

/* The message describes the deposit in a block the row no longer names: a
 * reorg re-included the tx elsewhere after the message was published, and
 * the row's newer event (with the new block) is on its way. Acting on the
 * stale one could pass on old block facts or dead-letter a live deposit. */
static bool superseded(const struct zl_work *w, const struct zl_row *row)
{
    return row->block_hash[0] != '\0' && w->in.block_hash[0] != '\0' &&
           strcasecmp(row->block_hash, w->in.block_hash) != 0;
}

/* Step 2-3: rows and side effects. Returns false on an outage. */
static bool process_all(struct rt *rt, struct zl_work **ws, size_t n)
{
    const char **ids = calloc(n, sizeof(*ids));
    struct zl_row *rows = calloc(n, sizeof(*rows));
    size_t *idx = calloc(n, sizeof(*idx));
    struct zl_work **accepted = calloc(n, sizeof(*accepted)); /* for process_batch */
    size_t naccepted = 0;
    bool ok = false;
    if (ids == NULL || rows == NULL || idx == NULL || accepted == NULL) {
        rt_enter_outage(rt, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (rt_work_of(ws[i])->phase == PH_NEW && rt_work_of(ws[i])->decoded) {
            ids[k] = ws[i]->in.deposit_id;
            idx[k++] = i;
        }
    }
    char err[ZL_ERRSTR_SIZE];
    zl_class c = zl_state_read(&rt->pg, ids, k, rows, err, sizeof(err));
    if (c != ZL_OK) {
        rt_enter_outage(rt, err);
        goto out;
    }
    for (size_t j = 0; j < k; j++) {
        struct zl_work *w = ws[idx[j]];
        struct rt_work *rw = rt_work_of(w);
        w->row = rows[j];
        struct zl_log_ctx ctx;
        zl_work_log_ctx(w, &ctx);
        if (key_refused(w)) {
            rw->phase = PH_DLQ;
        } else if (!w->row.found) {
            w->result = ZL_PERMANENT;
            snprintf(w->error, sizeof(w->error), "no state row for deposit %s", w->in.deposit_id);
            rw->phase = PH_DLQ;
        } else if (facts_refused(w)) {
            rw->phase = PH_DLQ;
        } else if (zl_state_off_path(w->row.state)) {
            zl_log(ZL_LOG_INFO, &ctx, "row is %s: nothing to do", zl_state_name(w->row.state));
            rw->phase = PH_DONE;
        } else if (!rt->stage->observe && zl_state_rank(w->row.state) >= zl_state_rank(rt->stage->done_state)) {
            adopt_row_block(w);
            if (!republish(rt, w))
                goto out;
        } else if (accepts(rt->stage, w->row.state) && superseded(w, &w->row)) {
            zl_log(ZL_LOG_INFO, &ctx, "superseded: the row now names block %s, this message %s; its newer event"
                   " carries on", w->row.block_hash, w->in.block_hash);
            rw->phase = PH_DONE;
        } else if (accepts(rt->stage, w->row.state) && rt->stage->process_batch != NULL) {
            accepted[naccepted++] = w; /* after the loop, all at once */
        } else if (accepts(rt->stage, w->row.state)) {
            c = process_with_retries(rt, w);
            w->result = c;
            if (c == ZL_OUTAGE) {
                rt_enter_outage(rt, w->error);
                goto out;
            }
            rw->phase = phase_of(c);
        } else if (rt->stage->observe) {
            zl_log(ZL_LOG_INFO, &ctx, "row is %s, not %s: nothing to observe", zl_state_name(w->row.state),
                   rt->stage->accept_states);
            rw->phase = PH_DONE;
        } else {
            w->result = ZL_DEFER;
            w->queued = false;
            snprintf(w->error, sizeof(w->error), "row is %s, stage %s waits for %s", zl_state_name(w->row.state),
                     rt->stage->name, rt->stage->accept_states);
            rw->phase = PH_RETRY;
        }
    }
    if (naccepted > 0 && !process_batch_with_retries(rt, accepted, naccepted))
        goto out;
    ok = true;
out:
    free(ids);
    free(rows);
    free(idx);
    free(accepted);
    return ok;
}

/* One transaction for a set of successes: CAS + the stage's writes. */
static zl_class commit_group(struct rt *rt, struct zl_work **group, size_t n, char *err, size_t err_size)
{
    const char **ids = calloc(n, sizeof(*ids));
    bool *moved = calloc(n, sizeof(*moved));
    struct zl_work **mv = calloc(n, sizeof(*mv));
    zl_class c = ZL_TRANSIENT;
    if (ids == NULL || moved == NULL || mv == NULL) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = group[i]->in.deposit_id;
    c = zl_pg_exec(&rt->pg, "BEGIN", err, err_size);
    if (c != ZL_OK)
        goto out;
    if (rt->stage->observe) { /* nothing moves: every work of the group is the observer's */
        for (size_t i = 0; i < n; i++)
            moved[i] = true;
    } else {
        c = zl_state_cas(&rt->pg, ids, n, rt->stage->accept_states, rt->stage->done_state, moved, err, err_size);
    }
    size_t nmoved = 0;
    for (size_t i = 0; c == ZL_OK && i < n; i++)
        if (moved[i])
            mv[nmoved++] = group[i];
    if (c == ZL_OK && rt->stage->in_tx != NULL && nmoved > 0)
        c = rt->stage->in_tx(rt->stage->ctx, &rt->pg, mv, nmoved, err, err_size);
    if (c == ZL_OK)
        c = zl_pg_exec(&rt->pg, "COMMIT", err, err_size);
    if (c != ZL_OK)
        zl_pg_rollback(&rt->pg);
    for (size_t i = 0; c == ZL_OK && i < n; i++)
        rt_work_of(group[i])->lost_race = !moved[i];
out:
    free(ids);
    free(moved);
    free(mv);
    return c;
}

/* Step 4, first: the works a stage settled in a side state (zl_work.settle)
 * move there one by one, in no transaction of the batch's (nothing else is
 * written for them), and finish with nothing to publish; a row another copy
 * moved first is left as it is. Returns false on an outage. */
static bool settle_all(struct rt *rt, struct zl_work **ws, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = ws[i];
        struct rt_work *rw = rt_work_of(w);
        if (rw->phase != PH_NEW || !rw->decoded || w->result != ZL_OK || w->settle == ZL_STATE_UNKNOWN)
            continue;
        char err[ZL_ERRSTR_SIZE];
        bool moved = false;
        zl_class c = zl_state_settle(&rt->pg, w->in.deposit_id, rt->stage->accept_states, w->settle, w->error,
                                     &moved, err, sizeof(err));
        if (c == ZL_OUTAGE) {
            rt_enter_outage(rt, err);
            return false;
        }
        struct zl_log_ctx ctx;
        zl_work_log_ctx(w, &ctx);
        if (c != ZL_OK) {
            w->result = c;
            snprintf(w->error, sizeof(w->error), "state settle: %s", err);
            rw->phase = c == ZL_TRANSIENT ? PH_RETRY : PH_DLQ;
            continue;
        }
        zl_log(ZL_LOG_INFO, &ctx, "%s %s: %s", moved ? "settled" : "already moved, not settled",
               zl_state_name(w->settle), w->error);
        rw->phase = PH_DONE;
        rw->has_out = false;
    }
    return true;
}

/* A success whose transaction committed: its output goes out (an
 * observer has none: it is done). */
static void committed(const struct rt *rt, struct zl_work *w)
{
    rt_work_of(w)->phase = rt->stage->observe ? PH_DONE : PH_OK;
    rt_work_of(w)->has_out = !rt->stage->observe;
}

/* Step 4: CAS the successes in one transaction; on a statement error, fall
 * back to one transaction per message so one bad row cannot hold up the
 * rest. Returns false on an outage. */
static bool commit_all(struct rt *rt, struct zl_work **ws, size_t n)
{
    struct zl_work **group = calloc(n, sizeof(*group));
    if (group == NULL) {
        rt_enter_outage(rt, "out of memory");
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rt_work_of(ws[i])->phase == PH_NEW && rt_work_of(ws[i])->decoded && ws[i]->result == ZL_OK)
            group[k++] = ws[i];
    bool ok = true;
    char err[ZL_ERRSTR_SIZE];
    if (k > 0) {
        zl_class c = commit_group(rt, group, k, err, sizeof(err));
        if (c == ZL_OUTAGE) {
            rt_enter_outage(rt, err);
            ok = false;
        } else if (c == ZL_OK) {
            for (size_t i = 0; i < k; i++)
                committed(rt, group[i]);
            ok = republish_lost_races(rt, group, k);
        } else {
            zl_log(ZL_LOG_WARN, NULL, "batch commit failed (%s), retrying one by one: %s", zl_class_name(c), err);
            for (size_t i = 0; i < k && ok; i++) {
                c = commit_group(rt, &group[i], 1, err, sizeof(err));
                if (c == ZL_OUTAGE) {
                    rt_enter_outage(rt, err);
                    ok = false;
                } else if (c == ZL_OK) {
                    committed(rt, group[i]);
                    ok = republish_lost_races(rt, &group[i], 1);
                } else {
                    group[i]->result = c;
                    snprintf(group[i]->error, sizeof(group[i]->error), "state commit: %s", err);
                    rt_work_of(group[i])->phase = c == ZL_TRANSIENT ? PH_RETRY : PH_DLQ;
                }
            }
        }
    }
    free(group);
    return ok;
}

/* A message about to be dead-lettered for a failure of its own is checked
 * against the row once more: the row may have moved on while it was being
 * worked on (another copy finished it, a reorg re-included the tx in
 * another block and the detector published it again). Then it is dropped,
 * not dead-lettered: a dead letter for a live deposit would either kill it
 * (the mark below is guarded too) or mislead an operator. A failed read
 * leaves the decision to the guarded mark. */
static void drop_superseded_dead_letters(struct rt *rt, struct zl_work **ws, size_t n)
{
    const char **ids = calloc(n, sizeof(*ids));
    size_t *idx = calloc(n, sizeof(*idx));
    struct zl_row *rows = calloc(n, sizeof(*rows));
    size_t k = 0;
    if (ids == NULL || idx == NULL || rows == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct rt_work *rw = rt_work_of(ws[i]);
        /* an observer's row is always "moved on": its dead letters stay */
        if (!rt->stage->observe && rw->phase == PH_DLQ && rw->decoded && ws[i]->row.found &&
            ws[i]->result != ZL_POISON) {
            ids[k] = ws[i]->in.deposit_id;
            idx[k++] = i;
        }
    }
    char err[ZL_ERRSTR_SIZE];
    if (k == 0 || zl_state_read(&rt->pg, ids, k, rows, err, sizeof(err)) != ZL_OK)
        goto out;
    for (size_t j = 0; j < k; j++) {
        struct zl_work *w = ws[idx[j]];
        const struct zl_row *r = &rows[j];
        bool moved_on = r->found && (zl_state_off_path(r->state) ||
                                     zl_state_rank(r->state) >= zl_state_rank(rt->stage->done_state));
        if (!r->found || !(moved_on || superseded(w, r)))
            continue;
        struct zl_log_ctx ctx;
        zl_work_log_ctx(w, &ctx);
        zl_log(ZL_LOG_WARN, &ctx, "not dead-lettered: the row moved on meanwhile (now %s, block %s): %s",
               zl_state_name(r->state), r->block_hash, w->error);
        rt_work_of(w)->phase = PH_DONE;
    }
out:
    free(ids);
    free(idx);
    free(rows);
}

static void log_outcomes(struct rt *rt, struct zl_work **ws, size_t n)
{
    int64_t now = zl_now_ms();
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = ws[i];
        struct rt_work *rw = rt_work_of(w);
        if (rw->phase == PH_SKIP)
            continue;
        zl_metric_counter_add(rt->m_outcome[rw->phase], 1);
        if (rw->phase == PH_OK || rw->phase == PH_DONE)
            zl_metric_observe(rt->m_latency, (double)(now - rw->started_ms) / 1000.0);
        if (rw->phase == PH_RETRY || rw->phase == PH_DLQ) {
            struct zl_log_ctx ctx;
            zl_work_log_ctx(w, &ctx);
            /* A defer is the plan (a deposit waiting for its blocks), not
             * a fault: at 100 deposits/s it was 6,000 warnings a minute. It
             * is still counted (zl_retries_total{class="defer"}). */
            zl_log_level lvl = rw->phase == PH_DLQ          ? ZL_LOG_ERROR
                               : w->result == ZL_DEFER ? ZL_LOG_INFO
                                                       : ZL_LOG_WARN;
            zl_log(lvl, &ctx, "%s (%s) -> %s: %s",
                   rt_phase_outcome(rw->phase), zl_class_name(w->result), rw->produced_topic, w->error);
            if (rw->phase == PH_DLQ) {
                char labels[RT_METRIC_LABELS_SIZE];
                snprintf(labels, sizeof(labels), "stage=\"%s\",class=\"%s\"", rt->stage->name, zl_class_name(w->result));
                zl_metrics_counter_add(rt->metrics, "zl_dlq_total", labels, 1);
            } else {
                char labels[RT_METRIC_LABELS_SIZE];
                snprintf(labels, sizeof(labels), "stage=\"%s\",class=\"%s\"", rt->stage->name, zl_class_name(w->result));
                zl_metrics_counter_add(rt->metrics, "zl_retries_total", labels, 1);
            }
        }
    }
}

/* Step 6: store offset + 1 per partition up to the first unfinished message,
 * and rewind partitions that have unfinished messages. */
static void store_offsets(struct rt *rt, struct zl_work **ws, size_t n)
{
    zl_fault_point("after_produce_before_offset_store");
    rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < n; i++) {
        struct zl_work *w = ws[i];
        struct rt_work *rw = rt_work_of(w);
        const char *topic = rd_kafka_topic_name(w->msg->rkt);
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(store, topic, w->msg->partition);
        if (tp == NULL) {
            tp = rd_kafka_topic_partition_list_add(store, topic, w->msg->partition);
            tp->offset = RD_KAFKA_OFFSET_INVALID;
            tp->metadata_size = 0; /* metadata unused: marks "still contiguous" below */
        }
        if (tp->metadata_size != 0)
            continue; /* an earlier message of this partition is unfinished */
        bool finished = !rw->held && (rw->phase == PH_OK || rw->phase == PH_DONE || rw->phase == PH_RETRY ||
                                      rw->phase == PH_DLQ);
        if (finished) {
            tp->offset = w->msg->offset + 1;
        } else {
            tp->metadata_size = 1; /* stop storing; rewind to here */
            if (rw->phase == PH_UNFINISHED && !rw->held) {
                rt_pause_one(rt, topic, w->msg->partition, w->msg->offset);
                /* Younger batches in flight fetched this partition before
                 * the seek: their copies come again. */
                rt_inflight_hold(rt, topic, w->msg->partition);
            }
        }
    }
    /* Drop entries with nothing to store before the call. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(store->cnt);
    for (int i = 0; i < store->cnt; i++)
        if (store->elems[i].offset >= 0 && rt_part_find(rt, store->elems[i].topic, store->elems[i].partition))
            rd_kafka_topic_partition_list_add(l, store->elems[i].topic, store->elems[i].partition)->offset =
                store->elems[i].offset;
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(rt->consumer, l);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            zl_log(ZL_LOG_WARN, NULL, "offsets store: %s (partition revoked? it will be re-processed harmlessly)",
                   rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_topic_partition_list_destroy(store);
}

void rt_batch_front(struct rt *rt, struct rt_batch *b)
{
    struct zl_work **ws = b->ws;
    size_t n = b->n;
    decode_all(rt, ws, n);
    zl_fault_point("after_decode");
    bool ok = process_all(rt, ws, n);
    zl_fault_point("after_side_effect");
    if (ok)
        ok = settle_all(rt, ws, n);
    if (ok)
        ok = commit_all(rt, ws, n);
    if (ok)
        zl_fault_point("after_db_commit");
    if (!ok) {
        /* An outage stops the batch: whatever is not yet decided is
         * re-consumed after it. Decided failures and outputs still go out. */
        for (size_t i = 0; i < n; i++) {
            struct rt_work *rw = rt_work_of(ws[i]);
            if (rw->phase == PH_NEW)
                rw->phase = PH_UNFINISHED;
        }
    }
    rt_route_failures(rt, ws, n);
    drop_superseded_dead_letters(rt, ws, n);
    rt_produce_all(rt, b);
}

void rt_batch_back(struct rt *rt, struct rt_batch *b)
{
    struct zl_work **ws = b->ws;
    size_t n = b->n;
    (void)rt_await_deliveries(rt, b); /* a failure is an outage, its works unfinished */
    if (!rt_record_failures(rt, ws, n)) {
        for (size_t i = 0; i < n; i++) {
            struct rt_work *rw = rt_work_of(ws[i]);
            if ((rw->phase == PH_RETRY || rw->phase == PH_DLQ) && rw->decoded && ws[i]->row.found)
                rw->phase = PH_UNFINISHED; /* re-done after the outage; a duplicate retry is harmless */
        }
    }
    log_outcomes(rt, ws, n);
    store_offsets(rt, ws, n);
}
