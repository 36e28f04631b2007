#include "signer_pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "log.h"

/* A key file holds 64 hex digits, maybe "0x" and a newline: anything much
 * longer is the wrong file. */
#define SIGNER_KEY_FILE_BYTES_MAX 256
/* The threads look at the stop flag this often while sleeping. */
#define SIGNER_SLEEP_STEP_MS 50
/* Path of one key file, from a list or a directory. */
#define SIGNER_PATH_SIZE 4096

/* Takes key i unless another holder's lease of it is live. A takeover of
 * someone else's expired lease is counted. */
static const char SQL_ACQUIRE[] =
    "INSERT INTO signer_leases AS l (signer, holder, expires_at)"
    " VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')"
    " ON CONFLICT (signer) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at,"
    " acquired_at = now(), renewed_at = now(),"
    " takeovers = l.takeovers + CASE WHEN l.holder = EXCLUDED.holder THEN 0 ELSE 1 END"
    " WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder RETURNING takeovers";

static const char SQL_RENEW[] =
    "UPDATE signer_leases SET expires_at = now() + $3::bigint * interval '1 millisecond', renewed_at = now()"
    " WHERE signer = $1 AND holder = $2 AND expires_at > now() RETURNING 1";

static const char SQL_RELEASE[] =
    "UPDATE signer_leases SET expires_at = now() WHERE signer = $1 AND holder = $2 AND expires_at > now()";

/* On the stage's connection: the session names its holder (018's fence)
 * and learns whether the lease is still live. */
static const char SQL_BIND[] =
    "SELECT set_config('zl.signer_holder', $1, false),"
    " EXISTS (SELECT 1 FROM signer_leases WHERE signer = $2 AND holder = $1 AND expires_at > now())";

/* Stored transactions re-sent at a takeover: far more than a window. */
#define SIGNER_RESEND_MAX 256

static const char SQL_PENDING[] =
    "SELECT nonce, raw_tx, tx_hash FROM signer_txs WHERE chain_id = $1::bigint AND signer = $2 AND status = 'pending'"
    " ORDER BY nonce LIMIT $3::int";

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Sleeps up to ms, returning early when the pool is asked to stop. */
static void nap(struct zl_signer_pool *p, int64_t ms)
{
    for (int64_t end = zl_now_ms() + ms; !atomic_load(&p->stop) && zl_now_ms() < end;) {
        int64_t left = end - zl_now_ms();
        sleep_ms(left < SIGNER_SLEEP_STEP_MS ? left : SIGNER_SLEEP_STEP_MS);
    }
}

/* ------------------------------------------------------------ loading */

/* Reads one key file into key. setting names where the path came from. */
static int load_key_file(struct zl_secp_key *key, const char *setting, const char *path, char *errstr,
                         size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "%s: cannot open %s: %s", setting, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(errstr, errstr_size, "%s: %s is not a regular file", setting, path);
        return -1;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        snprintf(errstr, errstr_size, "%s: %s may be read by group or others (chmod 600 it): it holds a key",
                 setting, path);
        return -1;
    }
    char buf[SIGNER_KEY_FILE_BYTES_MAX + 1];
    ssize_t n = read(fd, buf, SIGNER_KEY_FILE_BYTES_MAX + 1);
    close(fd);
    int rc = 0;
    if (n < 0 || n > SIGNER_KEY_FILE_BYTES_MAX) {
        snprintf(errstr, errstr_size, "%s: %s: %s", setting, path,
                 n < 0 ? strerror(errno) : "too long to be a key (64 hex digits)");
        rc = -1;
    } else {
        buf[n] = '\0';
        char why[ZL_ERRSTR_SIZE];
        if (zl_secp_key_load(key, buf, why, sizeof(why)) != 0) {
            snprintf(errstr, errstr_size, "%s: %s: %s", setting, path, why);
            rc = -1;
        }
    }
    memset(buf, 0, sizeof(buf)); /* the key's text leaves no copy behind */
    return rc;
}

/* Adds the key in path to the pool; a second copy of a key is refused (two
 * entries would lease one signer twice). */
static int add_key_file(struct zl_signer_pool *p, const char *setting, const char *path, char *errstr,
                        size_t errstr_size)
{
    if (p->nkeys >= ZL_SIGNER_POOL_KEYS_MAX) {
        snprintf(errstr, errstr_size, "%s: more than %d keys", setting, ZL_SIGNER_POOL_KEYS_MAX);
        return -1;
    }
    struct zl_secp_key *k = &p->keys[p->nkeys];
    if (load_key_file(k, setting, path, errstr, errstr_size) != 0)
        return -1;
    for (size_t i = 0; i < p->nkeys; i++) {
        if (strcmp(p->keys[i].address_hex, k->address_hex) == 0) {
            snprintf(errstr, errstr_size, "%s: %s holds the key of %s a second time", setting, path, k->address_hex);
            zl_secp_key_free(k);
            return -1;
        }
    }
    p->nkeys++;
    return 0;
}

static int load_list(struct zl_signer_pool *p, const char *csv, char *errstr, size_t errstr_size)
{
    const char *cur = csv;
    size_t len;
    const char *item;
    while ((item = zl_rpc_next_url(&cur, &len)) != NULL) {
        char path[SIGNER_PATH_SIZE];
        if (len == 0)
            continue;
        if (len >= sizeof(path)) {
            snprintf(errstr, errstr_size, "ZL_SIGNER_KEY_FILES: a path is longer than %d bytes", SIGNER_PATH_SIZE);
            return -1;
        }
        memcpy(path, item, len);
        path[len] = '\0';
        if (add_key_file(p, "ZL_SIGNER_KEY_FILES", path, errstr, errstr_size) != 0)
            return -1;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file of dir not named ".*", in name order (so every copy tries the
 * keys in one order). */
static int load_dir(struct zl_signer_pool *p, const char *dir, char *errstr, size_t errstr_size)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(errstr, errstr_size, "ZL_SIGNER_KEY_DIR: cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    char *names[ZL_SIGNER_POOL_KEYS_MAX + 1];
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and a secret volume's ..data links */
        names[n] = n < ZL_SIGNER_POOL_KEYS_MAX ? strdup(e->d_name) : NULL;
        if (names[n] == NULL) {
            snprintf(errstr, errstr_size, "ZL_SIGNER_KEY_DIR: %s: more than %d keys (or out of memory)", dir,
                     ZL_SIGNER_POOL_KEYS_MAX);
            rc = -1;
        } else {
            n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[SIGNER_PATH_SIZE];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path)) {
            snprintf(errstr, errstr_size, "ZL_SIGNER_KEY_DIR: a path is longer than %d bytes", SIGNER_PATH_SIZE);
            rc = -1;
        } else {
            rc = add_key_file(p, "ZL_SIGNER_KEY_DIR", path, errstr, errstr_size);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    if (rc == 0 && p->nkeys == 0) {
        snprintf(errstr, errstr_size, "ZL_SIGNER_KEY_DIR: %s holds no key file", dir);
        rc = -1;
    }
    return rc;
}

static bool given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int zl_signer_pool_load(struct zl_signer_pool *p, const char *key_text, const char *files_csv, const char *dir,
                        char *errstr, size_t errstr_size)
{
    memset(p, 0, sizeof(*p));
    int ways = (int)given(key_text) + (int)given(files_csv) + (int)given(dir);
    if (ways != 1) {
        snprintf(errstr, errstr_size, "set exactly one of ZL_SIGNER_KEY_FILE (one key all copies share), "
                                      "ZL_SIGNER_KEY_FILES or ZL_SIGNER_KEY_DIR (a pool: one key per copy); %d are set",
                 ways);
        return -1;
    }
    int rc;
    if (given(key_text)) {
        char why[ZL_ERRSTR_SIZE];
        rc = zl_secp_key_load(&p->keys[0], key_text, why, sizeof(why));
        if (rc != 0)
            snprintf(errstr, errstr_size, "ZL_SIGNER_KEY_FILE: %s", why);
        else
            p->nkeys = 1;
    } else {
        p->leased = true;
        rc = given(files_csv) ? load_list(p, files_csv, errstr, errstr_size) : load_dir(p, dir, errstr, errstr_size);
        if (rc == 0 && p->nkeys == 0) {
            snprintf(errstr, errstr_size, "ZL_SIGNER_KEY_FILES: no file named");
            rc = -1;
        }
    }
    if (rc != 0)
        zl_signer_pool_stop(p);
    return rc;
}

/* ------------------------------------------------------------ leasing */

static void set_holder(struct zl_signer_pool *p)
{
    char host[64] = "";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "unknown");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* The time and pid make the name unique per process: a restarted copy
     * is a new holder and never mistakes a lease of its last life for its
     * own (that one may still have a signature in flight). */
    snprintf(p->holder, sizeof(p->holder), "%s/%ld/%lx%lx", host, (long)getpid(), (unsigned long)ts.tv_sec,
             (unsigned long)ts.tv_nsec);
}

static void lease_ms_str(const struct zl_signer_pool *p, char out[ZL_INT64_DEC_SIZE])
{
    snprintf(out, ZL_INT64_DEC_SIZE, "%" PRId64, p->o.lease_ms);
}

/* The moment after which a lease renewed (or taken) by a statement sent at
 * sent_ms must not be used: a quarter of the lease early, so a signature
 * begun just before it is stored well before anyone else may take the key
 * (and 018's fence refuses it after). */
static int64_t valid_until(const struct zl_signer_pool *p, int64_t sent_ms)
{
    return sent_ms + p->o.lease_ms - p->o.lease_ms / 4;
}

/* One try at key i. ZL_OK with *got. */
static zl_class try_acquire(struct zl_signer_pool *p, size_t i, bool *got, char *errstr, size_t errstr_size)
{
    *got = false;
    char ms[ZL_INT64_DEC_SIZE];
    lease_ms_str(p, ms);
    const char *params[3] = {p->keys[i].address_hex, p->holder, ms};
    int64_t sent = zl_now_ms();
    zl_class c;
    PGresult *r = zl_pg_prepared(&p->pg, "lease_acquire", 3, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    if (PQntuples(r) == 1) {
        *got = true;
        p->current = i;
        atomic_store(&p->valid_until_ms, valid_until(p, sent));
        zl_log_kv(ZL_LOG_INFO, NULL, "signer leased", "signer", p->keys[i].address_hex, "holder", p->holder,
                  "takeovers", PQgetvalue(r, 0, 0), NULL);
    }
    PQclear(r);
    return ZL_OK;
}

/* Tries every key once, starting at one that depends on the holder so that
 * copies starting together do not all contend for the first key. */
static zl_class acquire_any(struct zl_signer_pool *p, bool *got, char *errstr, size_t errstr_size)
{
    size_t start = 0;
    for (const char *s = p->holder; *s != '\0'; s++)
        start = start * 31 + (unsigned char)*s;
    for (size_t k = 0; k < p->nkeys; k++) {
        zl_class c = try_acquire(p, (start + k) % p->nkeys, got, errstr, errstr_size);
        if (c != ZL_OK || *got)
            return c;
    }
    *got = false;
    return ZL_OK;
}

/* The lease is lost: never sign again, and stop the process so it restarts
 * and waits for a key like a new copy (the runtime drains on SIGTERM; a
 * process() that starts meanwhile is refused by zl_signer_pool_bind). */
static void lose(struct zl_signer_pool *p, const char *why)
{
    if (atomic_exchange(&p->lost, true))
        return;
    zl_log_kv(ZL_LOG_ERROR, NULL, "signer lease lost: stopping for a restart", "signer",
              p->keys[p->current].address_hex, "why", why, NULL);
    zl_health_set_dep(p->o.health, "signer", false, "lease lost", why);
    raise(SIGTERM);
}

static void renew_once(struct zl_signer_pool *p)
{
    char ms[ZL_INT64_DEC_SIZE], err[ZL_ERRSTR_SIZE];
    lease_ms_str(p, ms);
    const char *params[3] = {p->keys[p->current].address_hex, p->holder, ms};
    int64_t sent = zl_now_ms();
    zl_class c = zl_pg_ensure(&p->pg, err, sizeof(err));
    PGresult *r = NULL;
    if (c == ZL_OK)
        r = zl_pg_prepared(&p->pg, "lease_renew", 3, params, PGRES_TUPLES_OK, &c, err, sizeof(err));
    if (r != NULL && PQntuples(r) == 1)
        atomic_store(&p->valid_until_ms, valid_until(p, sent));
    else if (r != NULL)
        lose(p, "the lease expired or another copy holds it");
    if (r != NULL)
        PQclear(r);
    else if (zl_now_ms() >= atomic_load(&p->valid_until_ms))
        lose(p, err);
    else
        zl_log_kv(ZL_LOG_WARN, NULL, "signer lease not renewed, will retry", "error", err, NULL);
}

static void *lease_thread(void *arg)
{
    struct zl_signer_pool *p = arg;
    while (!atomic_load(&p->stop) && !atomic_load(&p->lost)) {
        nap(p, p->o.renew_ms);
        if (!atomic_load(&p->stop))
            renew_once(p);
    }
    return NULL;
}

/* ------------------------------------------------------------ balances */

int zl_signer_wei_to_ether(const char *hex, double *ether)
{
    if (hex == NULL || strncmp(hex, "0x", 2) != 0 || hex[2] == '\0' || strlen(hex) > 66)
        return -1;
    double v = 0;
    for (const char *s = hex + 2; *s != '\0'; s++) {
        int d = zl_hex_digit(*s);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    *ether = v / 1e18;
    return 0;
}

static void read_balances(struct zl_signer_pool *p)
{
    for (size_t i = 0; i < p->nkeys && !atomic_load(&p->stop); i++) {
        const char *addr = p->keys[i].address_hex;
        json_t *res = NULL;
        char err[ZL_ERRSTR_SIZE];
        double ether;
        json_t *params = json_pack("[ss]", addr, "latest");
        zl_class c = zl_rpc_call(p->rpc, "eth_getBalance", params, &res, NULL, err, sizeof(err));
        json_decref(params); /* zl_rpc_call borrows them */
        if (c == ZL_OK && zl_signer_wei_to_ether(json_string_value(res), &ether) == 0) {
            char labels[64];
            snprintf(labels, sizeof(labels), "signer=\"%s\"", addr);
            zl_metrics_gauge_set(p->o.metrics, "zl_signer_balance_ether", labels, ether);
        } else {
            zl_log_kv(ZL_LOG_WARN, NULL, "signer balance not read", "signer", addr, "error",
                      c == ZL_OK ? "not a quantity" : err, NULL);
        }
        json_decref(res);
    }
}

static void *balance_thread(void *arg)
{
    struct zl_signer_pool *p = arg;
    while (!atomic_load(&p->stop)) {
        read_balances(p);
        nap(p, p->o.balance_ms);
    }
    return NULL;
}

/* ------------------------------------------------------------ life */

static void describe(struct zl_signer_pool *p)
{
    struct zl_metrics *m = p->o.metrics;
    zl_metrics_describe(m, "zl_signer_balance_ether", ZL_METRIC_GAUGE,
                        "Native balance (gas money) of each signer key of the pool, in ether");
    zl_metrics_describe(m, "zl_signer_balance_low_ether", ZL_METRIC_GAUGE,
                        "ZL_SIGNER_BALANCE_LOW_GWEI in ether: below it a signer needs topping up");
    zl_metrics_describe(m, "zl_signer_leased", ZL_METRIC_GAUGE, "1 for the signer this copy holds the lease of");
    zl_metrics_gauge_set(m, "zl_signer_balance_low_ether", NULL, p->o.balance_low_ether);
}

/* Waits for a free key, heartbeating the health server (init runs before
 * the runtime's loop does). */
static int wait_for_key(struct zl_signer_pool *p, const volatile sig_atomic_t *run, char *errstr,
                        size_t errstr_size)
{
    char err[ZL_ERRSTR_SIZE] = "";
    bool logged = false;
    for (;;) {
        zl_health_heartbeat(p->o.health);
        bool got = false;
        zl_class c = zl_pg_ensure(&p->pg, err, sizeof(err));
        if (c == ZL_OK)
            c = acquire_any(p, &got, err, sizeof(err));
        if (got)
            return 0;
        if (c == ZL_OK && !logged) {
            char n[ZL_INT64_DEC_SIZE];
            snprintf(n, sizeof(n), "%zu", p->nkeys);
            zl_log_kv(ZL_LOG_WARN, NULL, "every signer key is leased to another copy: waiting (not ready)", "keys",
                      n, NULL);
            logged = true;
        } else if (c != ZL_OK) {
            zl_log_kv(ZL_LOG_WARN, NULL, "cannot lease a signer yet", "error", err, NULL);
        }
        zl_health_set_dep(p->o.health, "signer", false, "waiting",
                          c == ZL_OK ? "every key is leased to another copy" : err);
        for (int64_t end = zl_now_ms() + p->o.renew_ms; *run && zl_now_ms() < end;)
            sleep_ms(SIGNER_SLEEP_STEP_MS);
        if (!*run) {
            snprintf(errstr, errstr_size, "stopped while waiting for a free signer key");
            return -1;
        }
    }
}

int zl_signer_pool_start(struct zl_signer_pool *p, const struct zl_signer_pool_opts *o,
                         const volatile sig_atomic_t *run, char *errstr, size_t errstr_size)
{
    ZL_ASSERT(p->nkeys > 0 && o->lease_ms > 0 && o->renew_ms > 0 && o->renew_ms < o->lease_ms / 2);
    p->o = *o;
    set_holder(p);
    describe(p);
    if (zl_rpc_new(&p->rpc, &o->rpc, errstr, errstr_size) != 0)
        return -1;
    if (p->leased) {
        if (zl_pg_init(&p->pg, o->pg_dsn, o->pg_connect_timeout_ms) != 0) {
            snprintf(errstr, errstr_size, "signer pool: out of memory");
            return -1;
        }
        p->pg_inited = true;
        if (zl_pg_add_stmt(&p->pg, "lease_acquire", SQL_ACQUIRE, 3) != 0 ||
            zl_pg_add_stmt(&p->pg, "lease_renew", SQL_RENEW, 3) != 0 ||
            zl_pg_add_stmt(&p->pg, "lease_release", SQL_RELEASE, 2) != 0) {
            snprintf(errstr, errstr_size, "signer pool: cannot register its statements");
            return -1;
        }
        if (wait_for_key(p, run, errstr, errstr_size) != 0)
            return -1;
        if (pthread_create(&p->thread, NULL, lease_thread, p) != 0) {
            snprintf(errstr, errstr_size, "signer pool: cannot start the lease thread");
            return -1;
        }
        p->thread_started = true;
    }
    zl_health_set_dep(o->health, "signer", true, p->leased ? "leased" : "shared", "");
    char labels[64];
    snprintf(labels, sizeof(labels), "signer=\"%s\"", p->keys[p->current].address_hex);
    zl_metrics_gauge_set(o->metrics, "zl_signer_leased", labels, 1);
    pthread_t bt;
    /* The balances read on a thread of their own: a slow endpoint must not
     * delay a renewal. */
    if (pthread_create(&bt, NULL, balance_thread, p) != 0) {
        snprintf(errstr, errstr_size, "signer pool: cannot start the balance thread");
        return -1;
    }
    p->balance_thread = bt;
    p->balance_started = true;
    return 0;
}

const struct zl_secp_key *zl_signer_pool_key(const struct zl_signer_pool *p)
{
    return &p->keys[p->current];
}

int zl_signer_pool_copy_key(const struct zl_signer_pool *p, struct zl_secp_key *out, char *errstr,
                            size_t errstr_size)
{
    char hex[2 * sizeof(p->keys[0].secret) + 1];
    zl_hex_encode_bare(p->keys[p->current].secret, sizeof(p->keys[0].secret), hex, sizeof(hex));
    int rc = zl_secp_key_load(out, hex, errstr, errstr_size);
    memset(hex, 0, sizeof(hex)); /* no copy of the secret stays on the stack */
    return rc;
}

bool zl_signer_pool_usable(struct zl_signer_pool *p)
{
    if (!p->leased)
        return true;
    return !atomic_load(&p->lost) && zl_now_ms() < atomic_load(&p->valid_until_ms);
}

int zl_signer_pool_prepare(struct zl_pg *pg)
{
    if (zl_pg_add_stmt(pg, "signer_bind", SQL_BIND, 2) != 0)
        return -1;
    return zl_pg_add_stmt(pg, "signer_pending", SQL_PENDING, 3);
}

size_t zl_signer_pool_resend_pending(struct zl_signer_pool *p, struct zl_txmgr *tx, struct zl_pg *pg,
                                     uint64_t chain_id)
{
    if (!p->leased)
        return 0;
    char err[ZL_ERRSTR_SIZE], chain[ZL_INT64_DEC_SIZE], max[ZL_INT64_DEC_SIZE];
    snprintf(chain, sizeof(chain), "%" PRIu64, chain_id);
    snprintf(max, sizeof(max), "%d", SIGNER_RESEND_MAX);
    const char *params[3] = {chain, p->keys[p->current].address_hex, max};
    zl_class c = zl_pg_ensure(pg, err, sizeof(err));
    PGresult *r = NULL;
    if (c == ZL_OK)
        r = zl_pg_prepared(pg, "signer_pending", 3, params, PGRES_TUPLES_OK, &c, err, sizeof(err));
    if (r == NULL) {
        zl_log_kv(ZL_LOG_WARN, NULL, "signer's pending transactions not re-sent", "error", err, NULL);
        return 0;
    }
    size_t sent = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        struct zl_nonce_tx slot;
        memset(&slot, 0, sizeof(slot));
        slot.nonce = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        slot.raw_hex = PQgetvalue(r, i, 1); /* borrowed from r: never cleared */
        snprintf(slot.tx_hash, sizeof(slot.tx_hash), "%s", PQgetvalue(r, i, 2));
        if (zl_txmgr_broadcast(tx, &slot, &c, err, sizeof(err)) == ZL_TX_SENT)
            sent++;
        else
            zl_log_kv(ZL_LOG_WARN, NULL, "stored transaction not re-sent", "tx_hash", slot.tx_hash, "error", err, NULL);
    }
    char n[ZL_INT64_DEC_SIZE];
    snprintf(n, sizeof(n), "%zu", sent);
    zl_log_kv(ZL_LOG_INFO, NULL, "signer's pending transactions re-sent", "signer", params[1], "sent", n, NULL);
    PQclear(r);
    return sent;
}

zl_class zl_signer_pool_bind(struct zl_signer_pool *p, struct zl_pg *pg, char *errstr, size_t errstr_size)
{
    if (!p->leased)
        return ZL_OK;
    const char *addr = p->keys[p->current].address_hex;
    if (!zl_signer_pool_usable(p)) {
        snprintf(errstr, errstr_size, "the lease of signer %s was not renewed in time: not signing (restarting)",
                 addr);
        return ZL_OUTAGE;
    }
    const char *params[2] = {p->holder, addr};
    zl_class c;
    PGresult *r = zl_pg_prepared(pg, "signer_bind", 2, params, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    bool live = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    if (!live) {
        lose(p, "the database shows the lease expired or held by another copy");
        snprintf(errstr, errstr_size, "the lease of signer %s is no longer this copy's: not signing (restarting)",
                 addr);
        return ZL_OUTAGE;
    }
    return ZL_OK;
}

void zl_signer_pool_stop(struct zl_signer_pool *p)
{
    atomic_store(&p->stop, true);
    if (p->thread_started)
        pthread_join(p->thread, NULL);
    if (p->balance_started)
        pthread_join(p->balance_thread, NULL);
    p->thread_started = p->balance_started = false;
    if (p->pg_inited && p->leased && !atomic_load(&p->lost) && p->nkeys > 0) {
        /* Given back, so a restarting copy need not wait out the lease. */
        char err[ZL_ERRSTR_SIZE];
        const char *params[2] = {p->keys[p->current].address_hex, p->holder};
        zl_class c;
        if (zl_pg_ensure(&p->pg, err, sizeof(err)) == ZL_OK) {
            PGresult *r = zl_pg_prepared(&p->pg, "lease_release", 2, params, PGRES_COMMAND_OK, &c, err, sizeof(err));
            if (r != NULL)
                PQclear(r);
        }
    }
    if (p->pg_inited)
        zl_pg_close(&p->pg);
    p->pg_inited = false;
    zl_rpc_free(p->rpc);
    p->rpc = NULL;
    for (size_t i = 0; i < p->nkeys; i++)
        zl_secp_key_free(&p->keys[i]);
    p->nkeys = 0;
}
