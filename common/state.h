/* state.h: the deposits state table (schemas/sql/001_state.sql), read and
 * advanced only by compare-and-set (architecture §4).
 *
 * Every function here runs on the caller's zl_pg connection and returns a
 * zl_class: ZL_OK, ZL_OUTAGE when the database is unreachable (the caller
 * pauses), or another class for a statement that failed on a healthy
 * connection. None of them begins or commits a transaction unless it says so.
 *
 * @locality the thread that owns the zl_pg.
 */
#ifndef ZL_STATE_H
#define ZL_STATE_H

#include <stdbool.h>

#include "envelope.h"
#include "facts.h"
#include "hex.h"
#include "pg.h"
#include "zl.h"

typedef enum zl_state {
    ZL_STATE_UNKNOWN = 0, /* no row */
    ZL_STATE_DETECTED,
    ZL_STATE_VERIFIED,
    ZL_STATE_PINNED,
    ZL_STATE_MINT_SUBMITTED,
    ZL_STATE_MINTED,
    ZL_STATE_CREDITED,
    ZL_STATE_REORGED, /* terminal side state: never credited */
    ZL_STATE_DEAD,    /* in a DLQ, waiting for replay */
    ZL_STATE_BELOW_MINIMUM, /* terminal side state: under its token's minimum, never dead-lettered; an
                               operator may waive the minimum (013) and put it back to detected */
} zl_state;

/* Bytes of a state name with its NUL: the longest, "mint_submitted", has 14
 * characters. */
#define ZL_STATE_NAME_SIZE 16

/* "detected", ...; "unknown" for ZL_STATE_UNKNOWN. */
const char *zl_state_name(zl_state s);
/* Returns -1 when name is not a state. */
int zl_state_parse(const char *name, zl_state *out);
/* Position on the main path detected(1) .. credited(6); 0 for side states. A
 * row whose rank is >= a stage's target rank is already done for that stage. */
int zl_state_rank(zl_state s);
/* True for a state off the main path (reorged, dead, below_minimum): no
 * stage has anything to do for such a row until an operator moves it. */
bool zl_state_off_path(zl_state s);

/* The parts of a row the runtime and stages read. Strings are "" when NULL. */
struct zl_row {
    bool found;
    zl_state state;
    int attempts;
    /* the deposit's facts and the stage results: what stages act on */
    struct zl_facts facts;
    char credit_id[ZL_UUID_TEXT_SIZE];
    char credit_eggs[ZL_UINT256_DEC_SIZE];
    char dead_from_state[ZL_STATE_NAME_SIZE];
    /* the block the deposit is recorded in now (it moves when a reorg
     * re-includes the tx), and the confirmations verify saw; -1 if NULL */
    uint64_t block_number;
    char block_hash[ZL_HASH_HEX_SIZE];
    int64_t confirmations;
    /* an operator waived the token's minimum for this deposit (013,
     * min_waived_at set): verify judges it without the minimum */
    bool min_waived;
};

/* Statements the functions below use; registers them on p. Call once before
 * the first zl_pg_ensure(). Returns -1 when p has no room for them. */
int zl_state_prepare(struct zl_pg *p);

/* Reads the rows of ids[0..n) into rows[0..n) (rows[i].found = false for a
 * missing row), their facts included, in one round trip. */
zl_class zl_state_read(struct zl_pg *p, const char *const *ids, size_t n, struct zl_row *rows, char *errstr,
                       size_t errstr_size);

/* Compare-and-set for a batch, in one statement: for every id whose state is
 * one of `from` (a '{detected,verified}' style Postgres array literal), sets
 * state = to and clears the failure bookkeeping. Writes moved[i] = true for
 * the ids that moved; the others were moved by another copy first, or are
 * done. Must run inside the caller's transaction when paired with other
 * writes. */
zl_class zl_state_cas(struct zl_pg *p, const char *const *ids, size_t n, const char *from, zl_state to,
                      bool *moved, char *errstr, size_t errstr_size);

/* Settles the row of id in the side state `to` (e.g. below_minimum) while
 * its state is one of `from` (a '{detected}' style literal), with `why` as
 * its last_error (the history keeps it): a stage's decision that the
 * deposit goes no further (runtime.h, zl_work.settle). *moved says whether
 * the row moved (false: another copy moved it first). */
zl_class zl_state_settle(struct zl_pg *p, const char *id, const char *from, zl_state to, const char *why,
                         bool *moved, char *errstr, size_t errstr_size);

/* Records a failed attempt: attempts + 1, last_error(_class), next_attempt_at
 * = now + delay_ms (NULL when delay_ms < 0). Missing rows are ignored. */
zl_class zl_state_record_failure(struct zl_pg *p, const char *id, zl_class cls, const char *error,
                                 int64_t delay_ms, char *errstr, size_t errstr_size);

/* Moves the row to `dead`, remembering the state it was in and the DLQ
 * coordinates, only while the row is still what the dead message was about:
 * not terminal (credited, reorged, dead, below_minimum), not in one of past_states (a
 * '{verified,pinned}' style literal: the stage's done state and later, i.e.
 * another copy finished it), and still in block block_hash (a reorg that
 * re-included the tx elsewhere makes the message stale: the row's newer
 * event is on its way). *marked says whether the row moved. */
zl_class zl_state_mark_dead(struct zl_pg *p, const char *id, zl_class cls, const char *error, const char *dlq_topic,
                            int32_t dlq_partition, int64_t dlq_offset, const char *past_states,
                            const char *block_hash, bool *marked, char *errstr, size_t errstr_size);

#endif /* ZL_STATE_H */
