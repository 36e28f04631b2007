/* detector_int.h: the detector's private state and the pieces its two files
 * share: detector.c (the live scan: cursor, reorgs, one step) and
 * detector_addr.c (the address set, its refresh, and the backfill of
 * late-registered addresses). Not for other modules. */
#ifndef ZL_DETECTOR_INT_H
#define ZL_DETECTOR_INT_H

#include <jansson.h>

#include "addrset.h"
#include "chain.h"
#include "detector.h"
#include "envelope.h"

/* Bytes of a block-number parameter ("12345678901"). */
#define NUM_TEXT_MAX 24
/* Bytes of an endpoint's label (scheme://host[:port], never the path, which
 * may hold an API key): host names are at most 253 bytes. */
#define DET_ENDPOINT_LABEL_BYTES 272
/* Bytes of the gauges' label: token="" around a 15-byte symbol. */
#define DET_TOKEN_LABEL_BYTES 32
/* Bytes of a deposit id (zl_deposit_id_format: 95 always suffice). */
#define DEPOSIT_ID_TEXT_MAX 96

struct zl_detector {
    struct zl_detector_opts o;
    char token[ZL_ADDRESS_HEX_SIZE];
    char token_label[DET_TOKEN_LABEL_BYTES]; /* token="SYMBOL", on the per-token gauges */
    char topic[256];
    char lock_key[128];
    char chain_text[NUM_TEXT_MAX];
    struct zl_pg_lock lock; /* the scan lock: held by one copy */
    int64_t range;                 /* current blocks per step: halved on refusals */
    int64_t sub_blocks;            /* blocks per eth_getLogs request, adapted to the log count */
    struct zl_addrset *addrs;      /* registered addresses of the chain; owned */
    int64_t addr_seq_seen;         /* highest deposit_addresses.seq read into addrs */
    int64_t addr_full_read_at_ms;  /* when the next refresh re-reads every address (0 = now) */
    bool addr_limit_hit;           /* the last refresh stopped at ZL_DETECT_ADDRESSES_MAX */
    int64_t bf_blocks;             /* blocks per backfill request: halved on refusals */
    struct zl_rpc *confirm[ZL_RPC_ENDPOINTS_MAX]; /* one client per endpoint (confirm_k > 1); owned */
    char confirm_label[ZL_RPC_ENDPOINTS_MAX][DET_ENDPOINT_LABEL_BYTES]; /* scheme://host[:port], for the log */
    size_t nconfirm;
    zl_metric *m_disagree_held;     /* ranges held: endpoints disagreed, no k agreed */
    zl_metric *m_disagree_outvoted; /* ranges where k agreed and another endpoint did not */
    zl_metric *m_blocks;
    zl_metric *m_deposits;
    zl_metric *m_lag;
    zl_metric *m_reorgs;
    zl_metric *m_orphaned;
    zl_metric *m_past_finality; /* rows past detected marked reorged_after */
    zl_metric *m_publish_failed;
    zl_metric *m_range;
    zl_metric *m_transfers;      /* Transfers of the token read by the live scan */
    zl_metric *m_addresses;      /* addresses in the set */
    zl_metric *m_addr_limit;     /* refreshes refused at ZL_DETECT_ADDRESSES_MAX */
    zl_metric *m_bf_pending;     /* backfill ranges not done */
    zl_metric *m_bf_blocks;      /* blocks scanned by backfills */
    zl_metric *m_bf_deposits;    /* deposits recorded by backfills */
    zl_metric *m_bf_done;        /* backfill ranges finished */
};

/* One log found by the scan, on its way into the state table. */
struct found_log {
    struct zl_transfer_log tl;
    char id[DEPOSIT_ID_TEXT_MAX];
    char log_index[NUM_TEXT_MAX];
    char block_number[NUM_TEXT_MAX];
    char user_id[ZL_USER_ID_SIZE];
    bool fresh; /* inserted or re-included by this step: publish it */
};

/* The logs of one eth_getLogs request, kept until their transaction commits
 * so the fresh ones can be published after it. */
struct scan_part {
    struct found_log *fl;     /* kept logs in chain order; owned */
    struct found_log **by_id; /* the same, sorted by deposit id; owned */
    size_t n;
};

/* The det_insert statement sent and not yet answered (libpq async). */
struct inflight {
    bool active;
    struct scan_part *part; /* borrowed */
};

/* The address statements (detector_addr.c), registered by zl_detector_new. */
extern const struct zl_pg_stmt det_addr_stmts[];
extern const size_t det_addr_stmts_count;

/* Describes the address and backfill metrics and takes their handles. */
void det_addr_metrics(struct zl_detector *d);

/* Reads the addresses registered since the last read (every one, the first
 * time and every DET_ADDRESSES_FULL_READ_MS) into d->addrs, and records a
 * backfill range scan_from_block..covered_to for each address that enters
 * the set with a scan_from_block at or below covered_to (the live scan
 * covers the blocks above). An address enters the set only after its range
 * is recorded. Returns ZL_OK; ZL_PERMANENT with errstr when the set would
 * pass ZL_DETECT_ADDRESSES_MAX (logged, counted; the caller must not scan);
 * or the database's class. */
zl_class det_addresses_refresh(struct zl_detector *d, int64_t covered_to, char *errstr, size_t errstr_size);

/* detector_confirm.c: makes the per-endpoint clients from tmpl->urls when
 * d->o.confirm_k > 1 (0, or -1 with errstr), frees them, describes the
 * disagreement metric. */
int det_confirm_init(struct zl_detector *d, const struct zl_rpc_opts *tmpl, char *errstr, size_t errstr_size);
void det_confirm_free(struct zl_detector *d);
void det_confirm_metrics(struct zl_detector *d);

/* eth_getLogs(params) over blocks lo..hi: from d->o.rpc when confirm_k <= 1,
 * else the answer confirm_k endpoints agree on (detector_confirm.c). On
 * ZL_OK *out is the log array (the caller's). *held is true when the
 * endpoints disagreed and none had confirm_k votes (ZL_TRANSIENT): the
 * range must stay unscanned, not shrunk as for a refused request. */
zl_class det_get_logs(struct zl_detector *d, json_t *params, uint64_t lo, uint64_t hi, json_t **out, bool *held,
                      char *errstr, size_t errstr_size);

/* Shared by the live scan and the backfill. Each returns as its name in
 * detector.c says; none keeps a pointer it was given. */
PGresult *det_run(struct zl_detector *d, const char *name, int n, const char *const *vals, int expect, zl_class *c,
                  char *errstr, size_t errstr_size);
void det_count(zl_metric *m, uint64_t n);
zl_class det_tx_fail(struct zl_detector *d, zl_class c);
zl_class det_collect(struct zl_detector *d, json_t *logs, uint64_t lo, uint64_t hi, const char *only_to,
                     struct scan_part *p, char *errstr, size_t errstr_size);
zl_class det_insert_part(struct zl_detector *d, struct scan_part *p, struct inflight *inf, char *errstr,
                         size_t errstr_size);
zl_class det_insert_finish(struct zl_detector *d, struct inflight *inf, bool abandon, char *errstr,
                           size_t errstr_size);
void det_publish(struct zl_detector *d, const struct zl_transfer_log *tl, const char *deposit_id,
                 const char *user_id);
void det_part_free(struct scan_part *p);

#endif /* ZL_DETECTOR_INT_H */
