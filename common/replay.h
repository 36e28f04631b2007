/* replay.h: re-publishing dead letters to the input of the stage whose DLQ
 * they are in (architecture §7-§8), the policy behind tools/zl-replay.
 *
 * Nothing in a letter is trusted: anyone who can write the DLQ topic can
 * write any key, value and headers. Where a letter goes is derived from the
 * DLQ topic's name (<prefix><stage>.dlq: that stage's input topic, see
 * zl_replay_target), never from its zl-dlq-original-topic header; its replay
 * count comes from replay_log, never from its zl-dlq-replay-count header;
 * and its value must decode, its key must be the envelope's deposit_id, and
 * its facts must match the deposit's state row.
 *
 * One run reads a DLQ topic from its consumer group's committed offsets (the
 * beginning for a new group) up to the end offsets seen at start, so a
 * message that fails again and returns to the DLQ during the run is not
 * replayed twice in one run. For each message that passes the filter:
 *
 *   1. refuse it ("misdirected") when zl-dlq-original-topic is not the
 *      target topic, and ("untrusted") when its value does not decode as the
 *      target's kind, its key is not the envelope's deposit_id, or its facts
 *      differ from the row; "row-not-dead" when there is no row at all;
 *   2. look it up in replay_log (schemas/sql/006_ops.sql) by its DLQ
 *      coordinates: 'sent' means done before, skip it;
 *   3. refuse it ("refused") when replay_log holds replay_count_max replays
 *      of this deposit from this DLQ topic already (other letters than
 *      this one: an interrupted run's claim of it does not count);
 *   4. in one transaction: claim it in replay_log and move its row from
 *      'dead' back to dead_from_state (CAS: WHERE state = 'dead' AND the
 *      row's dlq coordinates are this message's, so an older dead letter of
 *      a deposit that died again is "superseded", not replayed);
 *   5. publish key, value and headers to the target topic, with
 *      zl-dlq-replay-count = the replay_log count + 1, zl-attempt 0, without
 *      the zl-retry-*, zl-origin-*, zl-defers and other zl-dlq-* headers,
 *      traceparent kept; wait for the delivery report;
 *   6. mark it 'sent' in replay_log, then commit the group's offset past
 *      every message finished in order on that partition.
 * A crash after 4 leaves the claim: the next run publishes it (step 5) even
 * though the row has left 'dead'. A crash between the delivery in 5 and the
 * mark in 6 is the one window that re-sends a message; the stages' CAS makes
 * that duplicate harmless (architecture §5).
 *
 * Poison dead letters do not mark their row dead (architecture §10), so they
 * are published without a row move, once step 1 passed. A message whose row
 * is not 'dead' (an operator resolved it, or it was requeued) is skipped
 * unless force is set; force never skips step 1.
 *
 * Letters refused in step 1 are finished (the group's offset moves past
 * them, except in a dry run): no later run could send them either, and each
 * is logged with its coordinates, so an operator finds it in the DLQ topic,
 * where it stays. Messages that do not pass the filter, dry-run ones,
 * unreadable ones and those refused in step 3 are not finished: the group's
 * offset does not move past them, so a later run with another filter or a
 * higher maximum still sees them.
 *
 * @locality the calling thread; one run at a time per struct.
 */
#ifndef ZL_REPLAY_H
#define ZL_REPLAY_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "zl.h"

/* Partitions of one DLQ topic a run handles (topics have a few dozen). */
#define ZL_REPLAY_PARTITIONS_MAX 256

struct zl_replay_filter {
    const char *deposit_id;  /* message key equals this; NULL/"" = any */
    const char *error_class; /* zl-dlq-error-class equals this; NULL/"" = any */
    const char *stage;       /* zl-dlq-stage equals this; NULL/"" = any */
    int64_t since_ms;        /* zl-dlq-failed-at >= this (epoch ms); 0 = any */
    int64_t until_ms;        /* zl-dlq-failed-at <  this (epoch ms); 0 = any */
};

/* What became of one message; passed to the progress callback. */
typedef enum zl_replay_outcome {
    ZL_REPLAY_FILTERED = 0,  /* did not pass the filter */
    ZL_REPLAY_SENT,          /* re-published and recorded */
    ZL_REPLAY_DRY_RUN,       /* would have been re-published */
    ZL_REPLAY_ALREADY,       /* replay_log says sent before */
    ZL_REPLAY_SUPERSEDED,    /* the row is dead from a newer dead letter */
    ZL_REPLAY_NOT_DEAD,      /* the row is not dead (or missing) */
    ZL_REPLAY_REFUSED,       /* replay count (replay_log) at or past the maximum */
    ZL_REPLAY_INVALID,       /* headers missing or unreadable */
    ZL_REPLAY_MISDIRECTED,   /* zl-dlq-original-topic is not the stage's input topic */
    ZL_REPLAY_UNTRUSTED,     /* value, key or facts disagree with the envelope or the row */
} zl_replay_outcome;

#define ZL_REPLAY_OUTCOME_LAST ZL_REPLAY_UNTRUSTED

const char *zl_replay_outcome_name(zl_replay_outcome o);

struct zl_replay_summary {
    int64_t scanned;  /* messages read */
    int64_t matched;  /* passed the filter */
    int64_t by_outcome[ZL_REPLAY_OUTCOME_LAST + 1];
    int64_t total;    /* messages between the start and end offsets */
    double elapsed_s;
};

/* Called after every message that passed the filter (and once per 1000
 * filtered ones): deposit id (may be ""), its outcome, a one-line detail,
 * and the running summary. Borrowed for the call only. */
typedef void (*zl_replay_progress_fn)(void *opaque, const char *deposit_id, zl_replay_outcome o,
                                      const char *detail, const struct zl_replay_summary *s);

struct zl_replay_opts {
    const char *brokers;
    const struct zl_kv_list *kafka_props; /* may be NULL */
    const char *pg_dsn;
    const char *group_id;       /* the replay's own consumer group */
    const char *dlq_topic;
    const char *target_topic;   /* zl_replay_target's: where letters go */
    zl_topic_kind target_kind;  /* ... and the kind they must decode as */
    struct zl_replay_filter filter;
    int64_t max_count;          /* stop after this many matched; 0 = all */
    double rate_per_s;          /* sends per second; 0 = unlimited */
    int64_t replay_count_max;   /* refuse messages already replayed this often */
    bool dry_run;
    bool force;                 /* publish even when the row is not dead */
    int64_t delivery_timeout_ms;
    int64_t pg_connect_timeout_ms;
    const volatile sig_atomic_t *run; /* stop when *run becomes 0; may be NULL */
    zl_replay_progress_fn progress;   /* may be NULL */
    void *progress_opaque;
};

/* Runs one replay. Returns 0 when the range was read to its end (or to
 * max_count), with *sum filled; -1 with errstr when it stopped early (broker
 * or database unreachable, delivery failed, interrupted): every message sent
 * so far is recorded, so running it again continues safely. */
int zl_replay_run(const struct zl_replay_opts *o, struct zl_replay_summary *sum, char *errstr, size_t errstr_size);

/* ---- pure helpers, exposed for unit tests and the fuzz target ---- */

/* The topic a letter of dlq_topic is replayed to, from the DLQ topic's name
 * alone: "<prefix><stage>.dlq" names the stage, and the stage's input topic
 * is <prefix> + the suffix of its input kind (verify: deposits.detected,
 * ipfs-upload: deposits.verified, mint: nft.pinned, credit: nft.minted), as
 * the runtime names it (runtime.c). in_topic_override, when not empty, is
 * the stage's ZL_IN_TOPIC: an operator who moved a stage's input moves its
 * replays with it; its kind is that of its suffix, else ZL_TOPIC_ANY.
 * Writes the topic into out and the kind into *kind and returns 0, or -1
 * with errstr when the name is not a DLQ of a stage with an input topic
 * (detect has none) and there is no override. */
int zl_replay_target(const char *prefix, const char *dlq_topic, const char *in_topic_override, char *out,
                     size_t out_size, zl_topic_kind *kind, char *errstr, size_t errstr_size);

/* The filter decision for one dead letter, from its key and headers. */
bool zl_replay_filter_match(const struct zl_replay_filter *f, const char *key, const char *error_class,
                            const char *stage, int64_t failed_at_ms);

/* The headers a replayed message carries, built from the dead letter's
 * (src may be NULL): everything but zl-retry-*, zl-origin-*, zl-defers,
 * zl-last-error*, zl-attempt and zl-dlq-*, then zl-attempt "0",
 * zl-dlq-replay-count = replay_count, zl-replayed-from "<topic>/<p>/<o>".
 * Returns a new list the caller owns (librdkafka takes it on produce), or
 * NULL when out of memory. */
rd_kafka_headers_t *zl_replay_headers(const rd_kafka_headers_t *src, int64_t replay_count, const char *from_topic,
                                      int32_t from_partition, int64_t from_offset);

/* Parses RFC 3339 ("2026-11-23T10:00:00Z", optional fraction, 'Z' or
 * +hh:mm / -hh:mm) into epoch milliseconds. Returns 0, or -1 when s is not
 * such a time. */
int zl_rfc3339_parse_ms(const char *s, int64_t *out_ms);

/* Parses a rate "N", "N/s" or "N/m" into sends per second (> 0). Returns 0,
 * or -1 when s is not such a rate. */
int zl_replay_parse_rate(const char *s, double *per_s);

#endif /* ZL_REPLAY_H */
