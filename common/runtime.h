/* runtime.h: the stage runtime every worker runs (architecture §5–§9).
 *
 * A stage's main.c fills a struct zl_stage with what its step does and calls
 * zl_runtime_main(). The runtime owns everything else: config, logging, the
 * consumer loop with batching, the state-table compare-and-set, retries in
 * place, the delay tiers, the DLQ, outage pauses, health and metrics, and an
 * orderly shutdown on SIGTERM/SIGINT.
 *
 * At-least-once delivery is made exactly-once in effect like this, per batch:
 *   1. decode + validate (invalid → DLQ as poison);
 *   2. read the rows; a row already past this stage → re-publish its output;
 *   3. stage->process() does the side effect idempotently;
 *   4. one transaction: CAS the rows that succeeded, plus stage->in_tx();
 *   5. publish outputs, retries and dead letters; wait for every delivery;
 *   6. store offset + 1 per partition, only up to the last finished message.
 * Up to ZL_BATCHES_INFLIGHT_MAX batches overlap: the next batch's steps 1-5
 * run while earlier batches wait in step 5; step 6 runs in poll order, and
 * a batch holding a deposit of a batch in flight waits for it first.
 * A crash between any two steps means a redelivery that step 2 and the CAS
 * make harmless.
 *
 * @locality every callback below runs on the runtime's main thread.
 */
#ifndef ZL_RUNTIME_H
#define ZL_RUNTIME_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "config.h"
#include "envelope.h"
#include "log.h"
#include "pg.h"
#include "state.h"
#include "trace.h"
#include "zl.h"

/* One consumed message and what became of it. Owned by the runtime; a stage
 * reads in/row and writes out/error. The runtime's own bookkeeping of a
 * work (its phase in the batch, its delivery) is private to the runtime
 * (runtime_int.h): a stage never sees it. */
struct zl_work {
    rd_kafka_message_t *msg;   /* owned by the runtime */
    int tier;                  /* -1: the stage's input topic; n: retry tier n */
    int attempt;               /* transient failures so far (header zl-attempt); defers apart */
    int defers;                /* defers so far (header zl-defers) */
    char traceparent[ZL_TRACEPARENT_BUF_SIZE]; /* W3C header, propagated or started here */
    char trace_id[ZL_TRACE_ID_HEX_SIZE];
    struct zl_event in;        /* decoded input; once its row is read, its facts are the row's (facts.h) */
    struct zl_row row;         /* its state row, read before process() */
    struct zl_event out;       /* output event, filled by the stage */
    zl_class result;
    char error[ZL_ERRSTR_SIZE];
    /* With result ZL_OK, a side state (state.h, e.g. ZL_STATE_BELOW_MINIMUM)
     * the stage settles the row in instead of done_state: the runtime moves
     * it there from accept_states with error as its last_error, publishes
     * nothing, skips in_tx and stores the offset. ZL_STATE_UNKNOWN (the
     * runtime's preset): the usual success. */
    zl_state settle;
    /* With result ZL_DEFER, the stage's estimate of how long until another
     * look is worth it (e.g. the blocks still to come times the block
     * time): the runtime re-checks after that long (at least
     * ZL_DEFER_MIN_MS), in the shortest retry tier whose delay covers it
     * (the last tier when none does), and does not step on to a longer
     * tier for the next defer. 0 (the runtime's preset): no estimate, each
     * defer steps one tier on and then cycles in the last. */
    int64_t defer_ms;
    /* With result ZL_DEFER: true when the wait is a queue for the stage's
     * own capacity (e.g. every Solana nonce account busy with another
     * receipt), not a wait on this deposit's facts: it does not count
     * toward ZL_DEFERS_MAX (header zl-defers is left as it was), since a
     * backlog of valid deposits must never be dead-lettered for waiting
     * its turn. false: the runtime's preset. */
    bool queued;
};

/* The shortest re-check a stage's defer_ms asks for: below it a wait for a
 * block would spin on the retry topic. */
#define ZL_DEFER_MIN_MS 100

struct zl_metrics;
struct zl_health;
struct zl_runtime_config;

/* What the runtime lends a stage at init: valid until fini. */
/* What a stage's init returns for a wrong setting (see init below). */
#define ZL_RUNTIME_INIT_REFUSED (-2)

struct zl_runtime_env {
    struct zl_metrics *metrics;            /* register the stage's own metrics here */
    struct zl_health *health;              /* report the stage's dependencies here */
    const struct zl_runtime_config *cfg;   /* the runtime's settings */
    const struct zl_kv_list *kafka_props;  /* the Kafka properties (-X, TLS, SASL): a stage's own producer */
};

struct zl_stage {
    const char *name;            /* "verify": group zl-verify, zl.verify.dlq, zl.verify.retry.N */
    zl_topic_kind in_kind;       /* schema of the input topic */
    zl_topic_kind out_kind;      /* schema of the output topic */
    const char *accept_states;   /* rows this stage acts on, e.g. "{detected}" */
    zl_state done_state;         /* the CAS target on success */

    /* An observer (notify) acts on rows without moving them: no
     * compare-and-set and no output topic. Every work whose row is in
     * accept_states goes to process and, on ZL_OK, to in_tx (the row as it
     * is, even at or past done_state: republish is not called and may be
     * NULL); a success is done once in_tx committed. A row in no accept
     * state is left alone (done, nothing published), and the row records
     * none of the observer's retries or dead letters (it is not its row). */
    bool observe;

    /* The side effect for one message whose row is in accept_states. Returns
     * ZL_OK with w->out filled, or a class with w->error set. May block on
     * I/O; the runtime retries ZL_TRANSIENT in place with backoff. Not
     * called when process_batch is set (may then be NULL). */
    zl_class (*process)(void *ctx, struct zl_work *w);

    /* The row is already past this stage: fill w->out from w->in and w->row
     * so the output is published again (an earlier run may have died before
     * publishing). Returns ZL_OK, or a class with w->error. */
    zl_class (*republish)(void *ctx, struct zl_work *w);

    /* Optional: the side effect for every work of one poll batch whose row
     * is in accept_states, at once (e.g. one transaction for many deposits).
     * Each deposit appears once in ws: later copies of it in the poll batch
     * take the first copy's result, output and reason.
     * When set, the runtime calls it instead of process, in batch order
     * (n >= 1). Each work still gets its own result: set w->result (and
     * w->out on ZL_OK, w->error otherwise) for every one of ws[0..n); the
     * runtime routes each by its own class exactly as it routes process()'s
     * (ZL_OUTAGE on any work pauses; that work and every success of the
     * batch are re-consumed after the outage). Works left at the preset
     * ZL_TRANSIENT "no result" are retried like any transient failure. The
     * works that came back ZL_TRANSIENT are handed to it again, as a
     * smaller batch, with the same in-place backoff as process(). */
    void (*process_batch)(void *ctx, struct zl_work *const *ws, size_t n);

    /* Optional: extra writes inside the CAS transaction, for the messages
     * whose row moved. Returning anything but ZL_OK rolls the batch back. */
    zl_class (*in_tx)(void *ctx, struct zl_pg *pg, struct zl_work *const *moved, size_t n, char *errstr,
                      size_t errstr_size);

    /* Optional: register the stage's prepared statements on pg. */
    int (*prepare)(void *ctx, struct zl_pg *pg);

    /* Optional: during an outage, ZL_OK once the stage's own dependencies
     * answer again. */
    zl_class (*probe)(void *ctx, char *errstr, size_t errstr_size);

    /* Optional: called once after config is loaded and health/metrics
     * exist, before consuming. Returns 0; -1 with errstr (startup fails,
     * exit code 1); or ZL_RUNTIME_INIT_REFUSED with errstr when a setting is
     * wrong (exit code 2, ZL_EXIT_CONFIG: restarting will not help). */
    int (*init)(void *ctx, const struct zl_runtime_env *env, char *errstr, size_t errstr_size);

    /* Optional: the admin API's breaker reset (POST /admin/breakers/reset
     * on the worker's HTTP port, body {"dependency": "rpc"} or {} for all).
     * Called on the main thread between batches, never concurrently with
     * process(). Returns how many breakers were reset. */
    int (*reset_breakers)(void *ctx, const char *dependency /* NULL = all */);

    /* Optional: cheap upkeep the stage times itself, called on the main
     * thread once per turn of the poll loop (at least every
     * ZL_POLL_TIMEOUT_MS), between batches, never during an outage pause.
     * It delays the next poll by as long as it takes: a call or two at
     * most (mint: a head read while its transactions wait for a block). */
    void (*between)(void *ctx, int64_t now_ms);

    /* Optional: called once at shutdown, after the consumer is closed. */
    void (*fini)(void *ctx);

    void *ctx;
};

/* Fills *ctx for log lines about w: its deposit (once decoded), the topic,
 * partition and offset it came from, and its trace id. The strings are
 * borrowed from w and valid while w is. */
void zl_work_log_ctx(const struct zl_work *w, struct zl_log_ctx *ctx);

/* Gives ws[0..n) all the same result and reason (a process_batch that
 * cannot start: out of memory, its database gone). */
void zl_works_fail(struct zl_work *const *ws, size_t n, zl_class c, const char *why);

/* Settings every worker has (ZL_KAFKA_BROKERS, ZL_PG_DSN, ZL_BATCH_SIZE_MAX,
 * ...). Exposed so tools and docs can print them. */
struct zl_runtime_config {
    char *kafka_brokers;
    char *pg_dsn;
    char *topic_prefix;
    char *group_id;             /* default "zl-<stage>" */
    char *group_instance_id;    /* static membership; "" = dynamic */
    char *in_topic;             /* default <prefix><in_kind suffix> */
    char *out_topic;            /* default <prefix><out_kind suffix> */
    int64_t batch_size_max;
    int64_t poll_timeout_ms;
    int64_t batch_fill_ms;
    int64_t inplace_attempts_max;
    int64_t inplace_base_ms;
    int64_t inplace_cap_ms;
    char *retry_tiers_ms;
    int64_t defers_max;
    int64_t outage_base_ms;
    int64_t outage_cap_ms;
    int64_t delivery_timeout_ms;
    int64_t pg_connect_timeout_ms;
    char *http_addr;
    int64_t http_port;
    char *http_port_file;
    int64_t stall_ms;           /* a partition with lag and no progress this long is re-seeked */
    int64_t test_stray_pause_after; /* tests only: pause the input behind the runtime's back */
    int64_t batches_inflight_max;   /* poll batches whose produce may be in flight at once (1 = one at a time) */
    int64_t test_fail_produce_batch; /* tests only: every produce of this poll batch (1 = the first) fails */
};

/* The runtime's batch-overlap settings (ZL_BATCHES_INFLIGHT_MAX, ...), into
 * struct zl_runtime_config like zl_runtime_settings: a section of its own. */
extern const struct zl_setting zl_runtime_overlap_settings[];
extern const size_t zl_runtime_overlap_settings_count;

extern const struct zl_setting zl_runtime_settings[];
extern const size_t zl_runtime_settings_count;

/* The whole life of a worker: loads config (the runtime's settings plus the
 * stage's own `extra` sections, which may be NULL/0), runs until SIGTERM or
 * SIGINT, drains, and returns the process exit code: 0 after a clean drain,
 * 2 on a configuration error, 1 on a fatal runtime error. Only main() exits. */
int zl_runtime_main(const struct zl_stage *stage, struct zl_config_section *extra, size_t nextra, int argc,
                    char **argv);

#endif /* ZL_RUNTIME_H */
