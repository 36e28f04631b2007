#include "replay.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "envelope.h"
#include "fault.h"
#include "facts.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"

/* A run gives up when the broker hands out nothing for this long although
 * messages remain before the end offsets. */
#define REPLAY_STALL_MS 30000
/* Bound on the broker's answers to metadata / offsets queries. */
#define REPLAY_QUERY_TIMEOUT_MS 10000
/* Filtered messages between two progress calls. */
#define REPLAY_PROGRESS_EVERY 1000
/* A replay_log status ("pending", "sent") with its NUL. */
#define REPLAY_STATUS_SIZE 16

static const char *const outcome_names[] = {
    [ZL_REPLAY_FILTERED] = "filtered",   [ZL_REPLAY_SENT] = "sent",
    [ZL_REPLAY_DRY_RUN] = "dry-run",     [ZL_REPLAY_ALREADY] = "already-replayed",
    [ZL_REPLAY_SUPERSEDED] = "superseded", [ZL_REPLAY_NOT_DEAD] = "row-not-dead",
    [ZL_REPLAY_REFUSED] = "refused",     [ZL_REPLAY_INVALID] = "invalid",
    [ZL_REPLAY_MISDIRECTED] = "misdirected", [ZL_REPLAY_UNTRUSTED] = "untrusted",
};

const char *zl_replay_outcome_name(zl_replay_outcome o)
{
    if ((int)o < 0 || (int)o > ZL_REPLAY_OUTCOME_LAST)
        return "unknown";
    return outcome_names[o];
}

/* ------------------------------------------------------------ pure helpers */

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

bool zl_replay_filter_match(const struct zl_replay_filter *f, const char *key, const char *error_class,
                            const char *stage, int64_t failed_at_ms)
{
    if (!empty(f->deposit_id) && (key == NULL || strcmp(f->deposit_id, key) != 0))
        return false;
    if (!empty(f->error_class) && (error_class == NULL || strcmp(f->error_class, error_class) != 0))
        return false;
    if (!empty(f->stage) && (stage == NULL || strcmp(f->stage, stage) != 0))
        return false;
    /* An unreadable failed-at (< 0) never passes a time filter. */
    if (f->since_ms != 0 && (failed_at_ms < 0 || failed_at_ms < f->since_ms))
        return false;
    if (f->until_ms != 0 && (failed_at_ms < 0 || failed_at_ms >= f->until_ms))
        return false;
    return true;
}

static bool dropped_header(const char *name)
{
    static const char *const prefixes[] = {"zl-retry-", "zl-origin-", "zl-dlq-", "zl-last-error", "zl-replayed-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return strcmp(name, "zl-attempt") == 0 || strcmp(name, "zl-defers") == 0;
}

rd_kafka_headers_t *zl_replay_headers(const rd_kafka_headers_t *src, int64_t replay_count, const char *from_topic,
                                      int32_t from_partition, int64_t from_offset)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    if (h == NULL)
        return NULL;
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; src != NULL && rd_kafka_header_get_all(src, i, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (!dropped_header(name))
            rd_kafka_header_add(h, name, -1, val, (ssize_t)len);
    }
    char buf[ZL_TOPIC_NAME_MAX + 48];
    rd_kafka_header_add(h, "zl-attempt", -1, "0", -1);
    snprintf(buf, sizeof(buf), "%" PRId64, replay_count);
    rd_kafka_header_add(h, "zl-dlq-replay-count", -1, buf, -1);
    snprintf(buf, sizeof(buf), "%s/%" PRId32 "/%" PRId64, from_topic, from_partition, from_offset);
    rd_kafka_header_add(h, "zl-replayed-from", -1, buf, -1);
    return h;
}

/* The stages that read a topic, and its kind; the same pairs as their
 * struct zl_stage (workers/<stage>/main.c). detect reads the chain. */
static const struct {
    const char *stage;
    zl_topic_kind in_kind;
} stage_inputs[] = {
    {"verify", ZL_TOPIC_DETECTED},
    {"ipfs-upload", ZL_TOPIC_VERIFIED},
    {"mint", ZL_TOPIC_PINNED},
    {"credit", ZL_TOPIC_MINTED},
};

static zl_topic_kind kind_of_topic(const char *topic)
{
    size_t tl = strlen(topic);
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        const char *suffix = zl_topic_kind_suffix((zl_topic_kind)k);
        size_t sl = strlen(suffix);
        if (tl >= sl && strcmp(topic + tl - sl, suffix) == 0)
            return (zl_topic_kind)k;
    }
    return ZL_TOPIC_ANY;
}

int zl_replay_target(const char *prefix, const char *dlq_topic, const char *in_topic_override, char *out,
                     size_t out_size, zl_topic_kind *kind, char *errstr, size_t errstr_size)
{
    static const char dlq_suffix[] = ".dlq";
    size_t pl = strlen(prefix), tl = strlen(dlq_topic), sl = strlen(dlq_suffix);
    if (tl <= pl + sl || strncmp(dlq_topic, prefix, pl) != 0 || strcmp(dlq_topic + tl - sl, dlq_suffix) != 0) {
        snprintf(errstr, errstr_size, "%s is not a stage's DLQ topic (expected %s<stage>%s)", dlq_topic, prefix,
                 dlq_suffix);
        return -1;
    }
    if (!empty(in_topic_override)) {
        if (snprintf(out, out_size, "%s", in_topic_override) >= (int)out_size) {
            snprintf(errstr, errstr_size, "ZL_IN_TOPIC is too long");
            return -1;
        }
        *kind = kind_of_topic(out);
        return 0;
    }
    const char *stage = dlq_topic + pl;
    size_t stage_len = tl - pl - sl;
    for (size_t i = 0; i < sizeof(stage_inputs) / sizeof(stage_inputs[0]); i++) {
        if (strlen(stage_inputs[i].stage) != stage_len || strncmp(stage, stage_inputs[i].stage, stage_len) != 0)
            continue;
        if (zl_topic_name(out, out_size, prefix, stage_inputs[i].in_kind) != 0) {
            snprintf(errstr, errstr_size, "ZL_TOPIC_PREFIX \"%s\" makes an invalid topic name", prefix);
            return -1;
        }
        *kind = stage_inputs[i].in_kind;
        return 0;
    }
    snprintf(errstr, errstr_size,
             "%s: stage \"%.*s\" has no input topic known to zl-replay (verify, ipfs-upload, mint, credit);"
             " set ZL_IN_TOPIC to the stage's input topic",
             dlq_topic, (int)stage_len, stage);
    return -1;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int zl_rfc3339_parse_ms(const char *s, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec, ms = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d) ||
        (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; isdigit((unsigned char)*p); p++, n++)
            if (n < 3)
                ms = ms * 10 + (*p - '0');
        if (n == 0 || n > 9)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        off_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out_ms = ((int64_t)t - off_s) * 1000 + ms;
    return 0;
}

int zl_replay_parse_rate(const char *s, double *per_s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !(v > 0) || v > 1e6)
        return -1;
    if (*end == '\0' || strcmp(end, "/s") == 0)
        *per_s = v;
    else if (strcmp(end, "/m") == 0)
        *per_s = v / 60.0;
    else
        return -1;
    return 0;
}

/* ------------------------------------------------------------ the run */

static const char SQL_LOOKUP[] =
    "SELECT status FROM replay_log WHERE dlq_topic = $1 AND dlq_partition = $2::int AND dlq_offset = $3::bigint";
static const char SQL_RESTORE[] =
    "UPDATE deposits SET state = coalesce(dead_from_state, $5), dead_from_state = NULL, attempts = 0,"
    " next_attempt_at = NULL, last_error = $6, last_error_class = NULL, updated_at = now()"
    " WHERE deposit_id = $1 AND state = 'dead' AND dlq_topic = $2 AND dlq_partition = $3::int"
    " AND dlq_offset = $4::bigint RETURNING state";
static const char SQL_ROW[] =
    "SELECT state, coalesce(dlq_topic, ''), coalesce(dlq_partition, -1), coalesce(dlq_offset, -1)"
    " FROM deposits WHERE deposit_id = $1";
static const char SQL_CLAIM[] =
    "INSERT INTO replay_log (dlq_topic, dlq_partition, dlq_offset, deposit_id, target_topic, status,"
    " replay_count, restored_state) VALUES ($1, $2::int, $3::bigint, nullif($4, ''), $5, 'claimed', $6::int,"
    " nullif($7, '')) ON CONFLICT DO NOTHING RETURNING 1";
/* Replays of this deposit from this DLQ, this letter's own claim aside (an
 * interrupted run's claim of it is that same replay, not another one). */
static const char SQL_COUNT[] =
    "SELECT count(*) FROM replay_log WHERE deposit_id = $1 AND dlq_topic = $2"
    " AND NOT (dlq_partition = $3::int AND dlq_offset = $4::bigint)";
static const char SQL_FACTS[] = "SELECT " ZL_FACTS_COLUMNS " FROM deposits d WHERE d.deposit_id = $1";
static const char SQL_SENT[] =
    "UPDATE replay_log SET status = 'sent', sent_partition = $4::int, sent_offset = $5::bigint, sent_at = now()"
    " WHERE dlq_topic = $1 AND dlq_partition = $2::int AND dlq_offset = $3::bigint";

struct rpart {
    int32_t partition;
    int64_t end;         /* high watermark at start: stop here */
    int64_t next_commit; /* offset to commit next (first unfinished) */
    bool blocked;        /* an unfinished message was seen: commit no further */
    bool done;
};

struct delivery {
    int state; /* 0 pending, 1 delivered, -1 failed */
    int32_t partition;
    int64_t offset;
    char error[256];
};

struct run {
    const struct zl_replay_opts *o;
    struct zl_replay_summary *sum;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    struct zl_pg pg;
    struct rpart parts[ZL_REPLAY_PARTITIONS_MAX];
    int nparts;
    int64_t started_ms;
    int64_t pace_start_ms; /* when the first send was due */
    int64_t sends;
};

/* @locality the run's thread, inside rd_kafka_poll(producer). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct delivery *d = m->_private;
    if (d == NULL)
        return;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->state = -1;
        snprintf(d->error, sizeof(d->error), "%s", rd_kafka_err2str(m->err));
        return;
    }
    d->partition = m->partition;
    d->offset = m->offset;
    d->state = 1;
}

static struct rpart *rpart_find(struct run *r, int32_t partition)
{
    for (int i = 0; i < r->nparts; i++)
        if (r->parts[i].partition == partition)
            return &r->parts[i];
    return NULL;
}

static bool stopping(const struct run *r)
{
    return r->o->run != NULL && *r->o->run == 0;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Reads the topic's partitions and end offsets and the group's committed
 * offsets, and assigns every partition at its start. */
static int setup_partitions(struct run *r, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->consumer, r->o->dlq_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(r->consumer, 0, rkt, &md, REPLAY_QUERY_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "metadata of %s: %s (is the broker up?)", r->o->dlq_topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "topic %s: %s (create it with zl-topics)", r->o->dlq_topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
        rd_kafka_metadata_destroy(md);
        return -1;
    }
    int n = md->topics[0].partition_cnt;
    if (n > ZL_REPLAY_PARTITIONS_MAX)
        n = ZL_REPLAY_PARTITIONS_MAX;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) {
        r->parts[i].partition = md->topics[0].partitions[i].id;
        rd_kafka_topic_partition_list_add(l, r->o->dlq_topic, r->parts[i].partition);
    }
    r->nparts = n;
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_committed(r->consumer, l, REPLAY_QUERY_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "committed offsets of group %s: %s", r->o->group_id, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(l);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        struct rpart *p = &r->parts[i];
        int64_t lo = 0, hi = 0;
        err = rd_kafka_query_watermark_offsets(r->consumer, r->o->dlq_topic, p->partition, &lo, &hi,
                                               REPLAY_QUERY_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "end offsets of %s[%d]: %s", r->o->dlq_topic, p->partition,
                     rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
        int64_t start = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
        if (start < lo)
            start = lo; /* retention removed what the group had not reached */
        l->elems[i].offset = start;
        p->end = hi;
        p->next_commit = start;
        p->done = start >= hi;
        if (!p->done)
            r->sum->total += hi - start;
    }
    rd_kafka_resp_err_t aerr = rd_kafka_assign(r->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "assign %s: %s", r->o->dlq_topic, rd_kafka_err2str(aerr));
        return -1;
    }
    return 0;
}

/* The message at `offset` is finished: advance the group's offset when
 * every earlier one on the partition is finished too. Synchronous, so a
 * crash right after never re-reads a finished message. */
static int finish(struct run *r, struct rpart *p, int64_t offset, char *errstr, size_t errstr_size)
{
    if (p->blocked || offset != p->next_commit)
        return 0;
    p->next_commit = offset + 1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->o->dlq_topic, p->partition)->offset = p->next_commit;
    rd_kafka_resp_err_t err = rd_kafka_commit(r->consumer, l, 0 /* sync */);
    rd_kafka_topic_partition_list_destroy(l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "commit %s[%d]@%" PRId64 ": %s", r->o->dlq_topic, p->partition,
                 p->next_commit, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Runs one prepared statement; returns its result or NULL with errstr. */
static PGresult *q(struct run *r, const char *name, int n, const char *const *v, int expect, char *errstr,
                   size_t errstr_size)
{
    zl_class c;
    return zl_pg_prepared(&r->pg, name, n, v, expect, &c, errstr, errstr_size);
}

/* The state a row goes back to when it has no dead_from_state: the one whose
 * event the target topic carries. */
static const char *implied_state(zl_topic_kind kind)
{
    switch (kind) {
    case ZL_TOPIC_VERIFIED: return "verified";
    case ZL_TOPIC_PINNED: return "pinned";
    case ZL_TOPIC_MINTED: return "minted";
    default: return "detected";
    }
}

struct dead_letter {
    const rd_kafka_message_t *m;
    char key[256];
    const char *target; /* the run's target topic (never the letter's header) */
    char cls[32];
    char stage[64];
    int64_t failed_at_ms;
    int64_t replay_count;
    char part_s[ZL_INT64_DEC_SIZE], off_s[ZL_INT64_DEC_SIZE];
};

/* Moves the row out of 'dead' and claims the message, in one transaction.
 * Returns the outcome: ZL_REPLAY_SENT means "claimed, publish it"; -1 on a
 * database failure. */
static int claim(struct run *r, struct dead_letter *dl, char *detail, size_t detail_size, char *errstr,
                 size_t errstr_size)
{
    char count_s[ZL_INT64_DEC_SIZE], note[ZL_TOPIC_NAME_MAX + 64];
    snprintf(count_s, sizeof(count_s), "%" PRId64, dl->replay_count + 1);
    snprintf(note, sizeof(note), "replayed from %s/%s/%s", r->o->dlq_topic, dl->part_s, dl->off_s);
    if (zl_pg_exec(&r->pg, "BEGIN", errstr, errstr_size) != ZL_OK)
        return -1;
    char restored[32] = "";
    bool poison = strcmp(dl->cls, "poison") == 0;
    if (!poison && dl->key[0] != '\0') {
        const char *v[6] = {dl->key, r->o->dlq_topic, dl->part_s, dl->off_s, implied_state(r->o->target_kind), note};
        PGresult *res = q(r, "zl_replay_restore", 6, v, PGRES_TUPLES_OK, errstr, errstr_size);
        if (res == NULL)
            goto fail;
        if (PQntuples(res) == 1)
            snprintf(restored, sizeof(restored), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (restored[0] == '\0') {
            const char *v1[1] = {dl->key};
            res = q(r, "zl_replay_row", 1, v1, PGRES_TUPLES_OK, errstr, errstr_size);
            if (res == NULL)
                goto fail;
            int outcome = ZL_REPLAY_NOT_DEAD;
            if (PQntuples(res) == 0) {
                snprintf(detail, detail_size, "no state row");
            } else if (strcmp(PQgetvalue(res, 0, 0), "dead") == 0) {
                outcome = ZL_REPLAY_SUPERSEDED;
                snprintf(detail, detail_size, "row is dead from a newer dead letter %s/%s/%s", PQgetvalue(res, 0, 1),
                         PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
            } else {
                snprintf(detail, detail_size, "row is %s, not dead", PQgetvalue(res, 0, 0));
            }
            PQclear(res);
            if (!r->o->force || outcome == ZL_REPLAY_SUPERSEDED) {
                zl_pg_exec(&r->pg, "ROLLBACK", errstr, errstr_size);
                return outcome;
            }
        }
    }
    const char *v[7] = {r->o->dlq_topic, dl->part_s, dl->off_s, dl->key, dl->target, count_s, restored};
    PGresult *res = q(r, "zl_replay_claim", 7, v, PGRES_TUPLES_OK, errstr, errstr_size);
    if (res == NULL)
        goto fail;
    bool claimed = PQntuples(res) == 1;
    PQclear(res);
    if (!claimed) {
        /* Another replay claimed it between our lookup and now. */
        zl_pg_exec(&r->pg, "ROLLBACK", errstr, errstr_size);
        snprintf(detail, detail_size, "claimed by another replay");
        return ZL_REPLAY_ALREADY;
    }
    if (zl_pg_exec(&r->pg, "COMMIT", errstr, errstr_size) != ZL_OK)
        return -1;
    snprintf(detail, detail_size, "%s -> %s%s%s", dl->key, dl->target, restored[0] ? ", row back to " : "",
             restored);
    return ZL_REPLAY_SENT;
fail:
    zl_pg_rollback(&r->pg);
    return -1;
}

/* Publishes the dead letter to its original topic and waits for delivery. */
static int publish(struct run *r, struct dead_letter *dl, struct delivery *d, char *errstr, size_t errstr_size)
{
    rd_kafka_headers_t *src = NULL;
    if (rd_kafka_message_headers(dl->m, &src) != RD_KAFKA_RESP_ERR_NO_ERROR)
        src = NULL;
    rd_kafka_headers_t *h =
        zl_replay_headers(src, dl->replay_count + 1, r->o->dlq_topic, dl->m->partition, dl->m->offset);
    if (h == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    memset(d, 0, sizeof(*d));
    rd_kafka_resp_err_t err = rd_kafka_producev(
        r->producer, RD_KAFKA_V_TOPIC(dl->target), RD_KAFKA_V_KEY(dl->m->key, dl->m->key_len),
        RD_KAFKA_V_VALUE(dl->m->payload, dl->m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h);
        snprintf(errstr, errstr_size, "produce to %s: %s", dl->target, rd_kafka_err2str(err));
        return -1;
    }
    int64_t deadline = zl_now_ms() + r->o->delivery_timeout_ms + 5000;
    while (d->state == 0 && zl_now_ms() < deadline)
        rd_kafka_poll(r->producer, 50 /* ms */);
    if (d->state != 1) {
        snprintf(errstr, errstr_size, "delivery to %s: %s", dl->target,
                 d->state == 0 ? "no delivery report in time" : d->error);
        return -1;
    }
    return 0;
}

static void report(struct run *r, const char *id, zl_replay_outcome o, const char *detail)
{
    r->sum->by_outcome[o]++;
    r->sum->elapsed_s = (double)(zl_now_ms() - r->started_ms) / 1000.0;
    if (r->o->progress != NULL)
        r->o->progress(r->o->progress_opaque, id, o, detail, r->sum);
}

/* A letter that zl-replay will never send: logged with its coordinates
 * (it stays in the DLQ topic for an operator to read), counted, and
 * finished so later runs do not stop at it again, except in a dry run,
 * which moves nothing. */
static int refuse(struct run *r, struct rpart *p, const struct dead_letter *dl, zl_replay_outcome o,
                  const char *detail, char *errstr, size_t errstr_size)
{
    struct zl_log_ctx ctx = {.deposit_id = dl->key[0] ? dl->key : NULL, .topic = r->o->dlq_topic,
                             .partition = dl->m->partition, .offset = dl->m->offset};
    zl_log(ZL_LOG_WARN, &ctx, "dead letter refused (%s): %s", zl_replay_outcome_name(o), detail);
    report(r, dl->key, o, detail);
    if (r->o->dry_run) {
        p->blocked = true;
        return 0;
    }
    return finish(r, p, dl->m->offset, errstr, errstr_size);
}

/* The facts a replayed letter carries against its state row, judged by
 * zl_facts_compare(), the same check the stages' runtime makes before it
 * acts (so a letter replay sends is one the stage would accept):
 * ZL_REPLAY_SENT when they match, ZL_REPLAY_UNTRUSTED with detail naming the
 * first field that differs, ZL_REPLAY_NOT_DEAD when there is no row, -1 with
 * errstr on a database failure. */
static int facts_match_row(struct run *r, const struct zl_event *ev, char *detail, size_t detail_size,
                           char *errstr, size_t errstr_size)
{
    const char *v[1] = {ev->deposit_id};
    PGresult *res = q(r, "zl_replay_facts", 1, v, PGRES_TUPLES_OK, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        snprintf(detail, detail_size, "no state row for %s", ev->deposit_id);
        return ZL_REPLAY_NOT_DEAD;
    }
    struct zl_facts f;
    zl_facts_from_result(res, 0, 0, &f);
    PQclear(res);
    char why[ZL_ERRSTR_SIZE];
    if (zl_facts_compare(&f, ev, NULL, why, sizeof(why)) != 0) {
        snprintf(detail, detail_size, "the letter disagrees with the state row: %s", why);
        return ZL_REPLAY_UNTRUSTED;
    }
    return ZL_REPLAY_SENT;
}

/* Step 1 past the topic check: the value decodes as the target's kind, the
 * key is its deposit_id, and its facts match the row. Every letter, not only
 * poison ones: the class header is the letter's word too. Returns
 * ZL_REPLAY_SENT (go on) with *ev filled, another outcome with detail, or -1
 * with errstr on a database failure. */
static int check_letter(struct run *r, const struct dead_letter *dl, struct zl_event *ev, char *detail,
                        size_t detail_size, char *errstr, size_t errstr_size)
{
    const rd_kafka_message_t *m = dl->m;
    const char *bad_key = NULL;
    if (m->key == NULL || m->key_len == 0)
        bad_key = "empty";
    else if (m->key_len >= sizeof(dl->key))
        bad_key = "too long";
    else if (memchr(m->key, '\0', m->key_len) != NULL)
        bad_key = "not text"; /* dl->key would stop at the NUL and match a shorter id */
    if (bad_key != NULL) {
        snprintf(detail, detail_size, "its key is %s: it cannot name a deposit", bad_key);
        return ZL_REPLAY_UNTRUSTED;
    }
    char err[ZL_ERRSTR_SIZE];
    if (m->payload == NULL || zl_event_decode(r->o->target_kind, m->payload, m->len, ev, err, sizeof(err)) != 0) {
        snprintf(detail, detail_size, "its value is not a %s event: %s",
                 r->o->target_kind == ZL_TOPIC_ANY ? "valid" : zl_topic_kind_schema(r->o->target_kind),
                 m->payload == NULL ? "empty value" : err);
        return ZL_REPLAY_UNTRUSTED;
    }
    if (strcmp(dl->key, ev->deposit_id) != 0) {
        snprintf(detail, detail_size, "its key %s is not the envelope's deposit_id %s", dl->key, ev->deposit_id);
        return ZL_REPLAY_UNTRUSTED;
    }
    return facts_match_row(r, ev, detail, detail_size, errstr, errstr_size);
}

/* Handles one message. Returns 0, or -1 with errstr when the run must stop. */
static int handle(struct run *r, const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
    struct rpart *p = rpart_find(r, m->partition);
    if (p == NULL || m->offset >= p->end)
        return 0; /* past the end of this run: left for the next one */
    r->sum->scanned++;
    if (m->offset + 1 >= p->end)
        p->done = true;

    struct dead_letter dl = {.m = m, .failed_at_ms = -1};
    size_t klen = m->key_len < sizeof(dl.key) - 1 ? m->key_len : sizeof(dl.key) - 1;
    if (m->key != NULL)
        memcpy(dl.key, m->key, klen);
    snprintf(dl.part_s, sizeof(dl.part_s), "%" PRId32, m->partition);
    snprintf(dl.off_s, sizeof(dl.off_s), "%" PRId64, m->offset);
    zl_kafka_header(m, "zl-dlq-error-class", dl.cls, sizeof(dl.cls));
    zl_kafka_header(m, "zl-dlq-stage", dl.stage, sizeof(dl.stage));
    char buf[64];
    if (zl_kafka_header(m, "zl-dlq-failed-at", buf, sizeof(buf)) == 0)
        zl_rfc3339_parse_ms(buf, &dl.failed_at_ms);

    if (!zl_replay_filter_match(&r->o->filter, dl.key, dl.cls, dl.stage, dl.failed_at_ms)) {
        p->blocked = true;
        r->sum->by_outcome[ZL_REPLAY_FILTERED]++;
        if (r->o->progress != NULL && r->sum->by_outcome[ZL_REPLAY_FILTERED] % REPLAY_PROGRESS_EVERY == 0)
            r->o->progress(r->o->progress_opaque, "", ZL_REPLAY_FILTERED, "", r->sum);
        return 0;
    }
    r->sum->matched++;
    dl.target = r->o->target_topic;
    char detail[ZL_ERRSTR_SIZE] = "";
    char header_target[ZL_TOPIC_NAME_MAX + 1];
    if (zl_kafka_header(m, "zl-dlq-original-topic", header_target, sizeof(header_target)) != 0 ||
        header_target[0] == '\0') {
        p->blocked = true;
        report(r, dl.key, ZL_REPLAY_INVALID, "no zl-dlq-original-topic header: not a zeroloss dead letter");
        return 0;
    }
    if (strcmp(header_target, dl.target) != 0) {
        snprintf(detail, sizeof(detail),
                 "zl-dlq-original-topic says %s, but %s holds dead letters of the stage that reads %s: not sent",
                 header_target, r->o->dlq_topic, dl.target);
        return refuse(r, p, &dl, ZL_REPLAY_MISDIRECTED, detail, errstr, errstr_size);
    }
    struct zl_event ev;
    int t = check_letter(r, &dl, &ev, detail, sizeof(detail), errstr, errstr_size);
    if (t < 0)
        return -1;
    if (t != ZL_REPLAY_SENT)
        return refuse(r, p, &dl, (zl_replay_outcome)t, detail, errstr, errstr_size);

    const char *lv[3] = {r->o->dlq_topic, dl.part_s, dl.off_s};
    PGresult *res = q(r, "zl_replay_lookup", 3, lv, PGRES_TUPLES_OK, errstr, errstr_size);
    if (res == NULL)
        return -1;
    char status[REPLAY_STATUS_SIZE] = "";
    if (PQntuples(res) == 1)
        snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (strcmp(status, "sent") == 0) {
        report(r, dl.key, ZL_REPLAY_ALREADY, "replayed by an earlier run");
        return finish(r, p, m->offset, errstr, errstr_size);
    }
    /* The count is replay_log's: a letter's zl-dlq-replay-count header is
     * whatever its writer put there, and trusting it would let a rewritten
     * letter start over at 0. */
    const char *cv[4] = {dl.key, r->o->dlq_topic, dl.part_s, dl.off_s};
    res = q(r, "zl_replay_count", 4, cv, PGRES_TUPLES_OK, errstr, errstr_size);
    if (res == NULL)
        return -1;
    dl.replay_count = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    if (dl.replay_count >= r->o->replay_count_max) {
        p->blocked = true;
        snprintf(detail, sizeof(detail),
                 "replayed %" PRId64 " times already by replay_log (max %" PRId64 "): resolve it by hand",
                 dl.replay_count, r->o->replay_count_max);
        report(r, dl.key, ZL_REPLAY_REFUSED, detail);
        return 0;
    }
    if (r->o->dry_run) {
        p->blocked = true;
        snprintf(detail, sizeof(detail), "would send %s -> %s (replay count %" PRId64 ")%s", dl.key, dl.target,
                 dl.replay_count + 1, status[0] ? ", claimed by an interrupted run" : "");
        report(r, dl.key, ZL_REPLAY_DRY_RUN, detail);
        return 0;
    }
    if (status[0] == '\0') {
        int c = claim(r, &dl, detail, sizeof(detail), errstr, errstr_size);
        if (c < 0)
            return -1;
        if (c != ZL_REPLAY_SENT) {
            report(r, dl.key, (zl_replay_outcome)c, detail);
            return finish(r, p, m->offset, errstr, errstr_size);
        }
        zl_fault_point("replay_after_claim");
    } else {
        snprintf(detail, sizeof(detail), "%s -> %s (claimed by an interrupted run)", dl.key, dl.target);
    }

    /* Pace sends: the nth send is due n/rate seconds after the first. */
    if (r->o->rate_per_s > 0) {
        if (r->sends == 0)
            r->pace_start_ms = zl_now_ms();
        int64_t due = r->pace_start_ms + (int64_t)((double)r->sends * 1000.0 / r->o->rate_per_s);
        sleep_ms(due - zl_now_ms());
    }
    struct delivery d;
    if (publish(r, &dl, &d, errstr, errstr_size) != 0)
        return -1;
    r->sends++;
    zl_fault_point("replay_after_delivery");
    char dp[ZL_INT64_DEC_SIZE], doff[ZL_INT64_DEC_SIZE];
    snprintf(dp, sizeof(dp), "%" PRId32, d.partition);
    snprintf(doff, sizeof(doff), "%" PRId64, d.offset);
    const char *sv[5] = {r->o->dlq_topic, dl.part_s, dl.off_s, dp, doff};
    res = q(r, "zl_replay_sent", 5, sv, PGRES_COMMAND_OK, errstr, errstr_size);
    if (res == NULL)
        return -1;
    PQclear(res);
    zl_fault_point("replay_after_record");
    report(r, dl.key, ZL_REPLAY_SENT, detail);
    return finish(r, p, m->offset, errstr, errstr_size);
}

static bool all_done(const struct run *r)
{
    for (int i = 0; i < r->nparts; i++)
        if (!r->parts[i].done)
            return false;
    return true;
}

static int open_clients(struct run *r, char *errstr, size_t errstr_size)
{
    if (zl_pg_init(&r->pg, r->o->pg_dsn, r->o->pg_connect_timeout_ms) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (zl_pg_add_stmt(&r->pg, "zl_replay_lookup", SQL_LOOKUP, 3) != 0 ||
        zl_pg_add_stmt(&r->pg, "zl_replay_restore", SQL_RESTORE, 6) != 0 ||
        zl_pg_add_stmt(&r->pg, "zl_replay_row", SQL_ROW, 1) != 0 ||
        zl_pg_add_stmt(&r->pg, "zl_replay_claim", SQL_CLAIM, 7) != 0 ||
        zl_pg_add_stmt(&r->pg, "zl_replay_sent", SQL_SENT, 5) != 0 ||
        zl_pg_add_stmt(&r->pg, "zl_replay_count", SQL_COUNT, 4) != 0 ||
        zl_pg_add_stmt(&r->pg, "zl_replay_facts", SQL_FACTS, 1) != 0) {
        snprintf(errstr, errstr_size, "too many prepared statements");
        return -1;
    }
    char err[ZL_ERRSTR_SIZE];
    if (zl_pg_ensure(&r->pg, err, sizeof(err)) != ZL_OK) {
        snprintf(errstr, errstr_size, "database: %s (is 006_ops.sql applied? run zl-migrate)", err);
        return -1;
    }
    r->consumer = zl_kafka_consumer_new(r->o->brokers, r->o->group_id, r->o->kafka_props, NULL, NULL, r, errstr,
                                        errstr_size);
    if (r->consumer == NULL)
        return -1;
    if (!r->o->dry_run) {
        r->producer = zl_kafka_producer_new(r->o->brokers, r->o->kafka_props, r->o->delivery_timeout_ms, dr_cb, r,
                                            errstr, errstr_size);
        if (r->producer == NULL)
            return -1;
    }
    return 0;
}

int zl_replay_run(const struct zl_replay_opts *o, struct zl_replay_summary *sum, char *errstr, size_t errstr_size)
{
    memset(sum, 0, sizeof(*sum));
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    r->o = o;
    r->sum = sum;
    r->started_ms = zl_now_ms();
    int rc = -1;
    if (open_clients(r, errstr, errstr_size) != 0 || setup_partitions(r, errstr, errstr_size) != 0)
        goto out;
    int64_t last_msg_ms = zl_now_ms();
    rc = 0;
    while (!all_done(r) && !(o->max_count > 0 && sum->matched >= o->max_count)) {
        if (stopping(r)) {
            snprintf(errstr, errstr_size, "interrupted: run it again to continue");
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 200 /* ms: checks *run this often */);
        if (m == NULL) {
            if (zl_now_ms() - last_msg_ms > REPLAY_STALL_MS) {
                snprintf(errstr, errstr_size, "no message from %s for %d s before its end offsets (broker down?)",
                         o->dlq_topic, REPLAY_STALL_MS / 1000);
                rc = -1;
                break;
            }
            continue;
        }
        last_msg_ms = zl_now_ms();
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            zl_log(ZL_LOG_WARN, NULL, "consume %s: %s", o->dlq_topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int hr = handle(r, m, errstr, errstr_size);
        rd_kafka_message_destroy(m);
        if (hr != 0) {
            rc = -1;
            break;
        }
    }
    sum->elapsed_s = (double)(zl_now_ms() - r->started_ms) / 1000.0;
out:
    if (r->consumer != NULL) {
        rd_kafka_consumer_close(r->consumer);
        rd_kafka_destroy(r->consumer);
    }
    if (r->producer != NULL) {
        rd_kafka_flush(r->producer, 5000 /* ms: nothing is pending after a wait */);
        rd_kafka_destroy(r->producer);
    }
    zl_pg_close(&r->pg);
    free(r);
    return rc;
}
