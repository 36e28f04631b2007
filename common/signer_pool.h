/* signer_pool.h: the mint stage's signer keys, and the lease that gives one
 * of them to one copy of the stage at a time (schemas/sql/018_signer_pool.sql).
 *
 * Copies sharing one key queue on its nonce row (nonce.h), so a second copy
 * adds nothing. With a pool (ZL_SIGNER_KEY_FILES or ZL_SIGNER_KEY_DIR) each
 * copy leases a key of its own in the database and signs only with it:
 *   - a lease is a row (signer, holder, expires_at by the database's clock);
 *     the holder renews it every renew_ms from a thread with its own
 *     connection;
 *   - a copy that has not renewed for lease_ms - lease_ms/4 stops using the
 *     key (zl_signer_pool_usable turns false) and asks the process to stop
 *     (SIGTERM: drain, exit, restart), BEFORE the lease can expire and
 *     another copy take it; the database fences it too: a new signature is
 *     stored only from the session of the lease's live holder (018's
 *     trigger, zl_signer_pool_bind);
 *   - a copy with no free key waits in zl_signer_pool_start, not ready
 *     (health dependency "signer"), and never shares one;
 *   - a key whose lease expired is taken over; its nonce rows are per
 *     signer, so the new holder continues its stored transactions.
 * The single ZL_SIGNER_KEY_FILE keeps its old meaning: one key every copy
 * shares, no lease (copies queue on its nonce row, as before).
 *
 * Every key's native balance is read every balance_ms and exported as
 * zl_signer_balance_ether{signer="0x.."}, with the low-water mark
 * zl_signer_balance_low_ether beside it for the alert. Keys are never
 * logged: only their addresses.
 *
 * @locality zl_signer_pool_load, _start, _bind, _stop: the stage's main
 * thread. zl_signer_pool_usable: any thread. The pool's own thread renews
 * the lease and reads balances.
 */
#ifndef ZL_SIGNER_POOL_H
#define ZL_SIGNER_POOL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "metrics.h"
#include "pg.h"
#include "rpc.h"
#include "secp.h"
#include "txmgr.h"

/* Keys one pool holds: far more than copies of a stage anyone runs. */
#define ZL_SIGNER_POOL_KEYS_MAX 64
/* Room for a lease holder's name: host/pid/random. */
#define ZL_SIGNER_HOLDER_SIZE 160

struct zl_signer_pool_opts {
    const char *pg_dsn;            /* borrowed: the lease thread's own connection */
    int64_t pg_connect_timeout_ms;
    struct zl_rpc_opts rpc;        /* the balance reads' own client (urls etc. copied by zl_rpc_new) */
    int64_t lease_ms;              /* a lease lasts this long past its last renewal */
    int64_t renew_ms;              /* between renewals (and tries while waiting for a free key) */
    int64_t balance_ms;            /* between balance reads of every key */
    double balance_low_ether;      /* exported beside the balances: the alert's threshold */
    struct zl_metrics *metrics;    /* borrowed */
    struct zl_health *health;      /* borrowed: dependency "signer" */
};

struct zl_signer_pool {
    struct zl_secp_key keys[ZL_SIGNER_POOL_KEYS_MAX]; /* owned; secrets wiped by zl_signer_pool_stop */
    size_t nkeys;
    bool leased;                   /* a pool: lease one key; false: the shared single key */
    size_t current;                /* index of the key this copy signs with */
    char holder[ZL_SIGNER_HOLDER_SIZE];
    struct zl_signer_pool_opts o;
    struct zl_pg pg;               /* the lease thread's connection */
    bool pg_inited;
    struct zl_rpc *rpc;            /* owned: the balance reads' client */
    pthread_t thread;              /* renews the lease (a pool only) */
    bool thread_started;
    pthread_t balance_thread;      /* reads every key's balance */
    bool balance_started;
    atomic_bool stop;              /* asks the thread to finish */
    atomic_bool lost;              /* the lease could not be renewed in time: never sign again */
    _Atomic int64_t valid_until_ms; /* zl_now_ms() after which the key must not be used */
};

/* Loads the keys: exactly one of key_text (ZL_SIGNER_KEY_FILE's content,
 * borrowed), files_csv (comma-separated paths) or dir (every file in it
 * whose name does not start with '.', as a Kubernetes secret volume holds
 * them) is non-empty. A key file must be a regular file no group or other
 * may read, holding 64 hex digits. Returns 0, or -1 with errstr naming the
 * setting and file (never the content); nothing stays allocated then. */
int zl_signer_pool_load(struct zl_signer_pool *p, const char *key_text, const char *files_csv, const char *dir,
                        char *errstr, size_t errstr_size);

/* Takes a key: for a pool, waits (not ready, heartbeating health) until a
 * lease is free or *run turns false; then starts the thread that renews it
 * and reads balances. Returns 0 with zl_signer_pool_key() set; -1 with
 * errstr when stopped while waiting or the thread or client cannot start
 * (the keys stay loaded: zl_signer_pool_stop frees them). */
int zl_signer_pool_start(struct zl_signer_pool *p, const struct zl_signer_pool_opts *o,
                         const volatile sig_atomic_t *run, char *errstr, size_t errstr_size);

/* The key this copy signs with (valid after zl_signer_pool_start). */
const struct zl_secp_key *zl_signer_pool_key(const struct zl_signer_pool *p);

/* Loads into out a key of its own (its own context: the caller frees it
 * with zl_secp_key_free) equal to zl_signer_pool_key(). Returns 0, or -1
 * with errstr (out of memory). */
int zl_signer_pool_copy_key(const struct zl_signer_pool *p, struct zl_secp_key *out, char *errstr,
                            size_t errstr_size);

/* True while the key may be used: always for the shared key; for a lease,
 * until lease_ms - lease_ms/4 after the last renewal that succeeded. */
bool zl_signer_pool_usable(struct zl_signer_pool *p);

/* Right after a lease is taken (before consuming): re-sends, lowest nonce
 * first, every stored transaction of the signer still pending, with tx (on
 * pg, the stage's own connection). The last holder may have died between
 * storing and broadcasting, and the deposit may since have been minted by
 * another copy's key: nobody would then drive that nonce, and every later
 * one of this signer would wait behind it. Re-sending stored bytes is
 * always safe (byte-identical; the contract refuses a second mint).
 * Failures are logged: the stored transactions are driven again when their
 * deposits come back, and the transaction manager repairs gaps. Returns how many were
 * sent. */
size_t zl_signer_pool_resend_pending(struct zl_signer_pool *p, struct zl_txmgr *tx, struct zl_pg *pg,
                                     uint64_t chain_id);

/* The statements zl_signer_pool_bind and _resend_pending use, registered on the stage's own
 * connection (before its first zl_pg_ensure). Returns -1 when
 * ZL_PG_STMTS_MAX is reached. */
int zl_signer_pool_prepare(struct zl_pg *pg);

/* Before signing on pg (the stage's own connection): names this copy as the
 * lease holder in the session (zl.signer_holder, what 018's fence checks)
 * and checks the lease is still this copy's. ZL_OK; ZL_OUTAGE with errstr
 * when the lease is lost (the process is stopping) or pg's class. */
zl_class zl_signer_pool_bind(struct zl_signer_pool *p, struct zl_pg *pg, char *errstr, size_t errstr_size);

/* Stops the thread, gives the lease back (expires now: the next copy need
 * not wait) and wipes the keys. Safe after a failed load or start, and
 * twice. */
void zl_signer_pool_stop(struct zl_signer_pool *p);

/* Ether from a quantity in wei ("0x..." of up to 64 hex digits), as a
 * double (a gauge's precision is enough to see gas money running low).
 * Returns 0, or -1 when hex is not a quantity. */
int zl_signer_wei_to_ether(const char *hex, double *ether);

#endif /* ZL_SIGNER_POOL_H */
