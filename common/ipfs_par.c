/* ipfs_par.c: zl_ipfs_pin_many (ipfs.h): a call's objects pinned and read
 * back concurrently, each provider and each gateway behind a bulkhead of
 * its own (a lane: at most `bound` requests in flight, ipfs_int.h).
 *
 * Why threads and not a curl multi handle: every provider call is already
 * a blocking sequence (a PSA pin polls its status until "pinned"), and a
 * thread per lane slot keeps those sequences as they are, each on its own
 * handle. The threads live for one call; their handles live with the
 * client, so connections are kept alive from one poll batch to the next.
 *
 * Scheduling, under run.mu: an object waits in at most one queue per lane.
 * It is queued to the first pin_k providers at once; a call that fails
 * queues it to the next provider in the list (so the providers asked are
 * exactly those the one-at-a-time order asked); a psa provider waits for
 * the object's earlier calls to end (it fetches the bytes from them). Once
 * pin_k hold it, a read_back object is queued to the first gateway, and to
 * the next one when a gateway fails. The call ends when nothing is queued
 * or running. A slow provider holds only the threads of its own lane.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipfs_int.h"
#include "log.h"

#define LANES_MAX (ZL_IPFS_PROVIDERS_MAX + ZL_IPFS_GATEWAYS_MAX)

/* One object's progress through the providers and gateways. */
struct obj_state {
    struct pin_tally tally;
    int inflight;        /* provider calls queued or running */
    int next_prov;       /* the next provider to ask */
    int next_gw;         /* the next gateway to ask */
    int gw_down;         /* gateways that were down */
    bool read_ok;        /* a gateway served it */
    size_t gw_off;       /* used length of gw_err */
    char gw_err[ZL_ERRSTR_SIZE];
};

/* A lane's queue: each object enters it at most once per call, so n slots
 * and no wrap-around. */
struct queue {
    size_t item[ZL_IPFS_BATCH_MAX];
    size_t head, tail;
    int threads;         /* worker threads started for this lane */
};

struct run {
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a queue got work, or the call ended */
    struct zl_ipfs *c;
    struct zl_ipfs_obj *objs;
    size_t n;
    int nlanes;          /* c->nprov providers, then c->ngw gateways */
    int outstanding;     /* objects queued or being served, over all lanes */
    struct queue q[LANES_MAX];
    struct obj_state st[ZL_IPFS_BATCH_MAX];
};

/* Per-request scratch, on the heap (~68 KiB): a Kubo request answers for
 * up to ZL_IPFS_BATCH_MAX objects. */
struct scratch {
    size_t idx[ZL_IPFS_BATCH_MAX];
    enum attempt a[ZL_IPFS_BATCH_MAX];
    char got[ZL_IPFS_BATCH_MAX][ZL_IPFS_CID_TEXT_MAX];
    char errs[ZL_IPFS_BATCH_MAX][ZL_ERRSTR_SIZE];
};

/* One worker: lane `lane` (or -1: every lane without a thread of its own),
 * slot `slot` of its lane's handles. */
struct worker {
    struct run *run;
    int lane;
    int slot;
    struct scratch *x;   /* the caller's own; a thread allocates its own */
    pthread_t tid;
};

void ipfs_lane_free(struct lane *l)
{
    for (int s = 0; s < ZL_IPFS_CONCURRENCY_LIMIT; s++) {
        if (l->curl[s] != NULL)
            curl_easy_cleanup(l->curl[s]);
        l->curl[s] = NULL;
    }
}

static struct lane *lane_of(struct run *r, int lane)
{
    return lane < r->c->nprov ? &r->c->prov[lane].lane : &r->c->gw_lane[lane - r->c->nprov];
}

/* @locks r->mu held. */
static void enqueue(struct run *r, int lane, size_t i)
{
    struct queue *q = &r->q[lane];
    ZL_ASSERT(q->tail < r->n);
    q->item[q->tail++] = i;
    r->outstanding++;
}

/* Queues object i wherever it should go next. @locks r->mu held. */
static void dispatch(struct run *r, size_t i)
{
    struct zl_ipfs *c = r->c;
    struct obj_state *s = &r->st[i];
    if (s->tally.mismatch)
        return;
    if (s->tally.pinned >= c->pin_k) {
        if (r->objs[i].read_back && c->verify && s->inflight == 0 && !s->read_ok && s->next_gw < c->ngw)
            enqueue(r, c->nprov + s->next_gw++, i);
        return;
    }
    while (s->tally.pinned + s->inflight < c->pin_k && s->next_prov < c->nprov) {
        if (c->prov[s->next_prov].kind == ZL_IPFS_PSA && s->inflight > 0)
            break; /* dispatched again when the earlier calls end */
        enqueue(r, s->next_prov++, i);
        s->inflight++;
    }
}

/* Serves one request of lane for objs[idx[0..k)] on slot's handle, then
 * records it and queues what follows. @locks takes r->mu to record. */
static void serve(struct run *r, int lane, int slot, struct scratch *x, size_t k)
{
    struct zl_ipfs *c = r->c;
    struct lane *l = lane_of(r, lane);
    if (l->curl[slot] == NULL)
        l->curl[slot] = curl_easy_init(); /* a NULL here fails the request as down, below */
    CURL *h = l->curl[slot];
    bool gw = lane >= c->nprov;
    for (size_t j = 0; j < k; j++)
        x->got[j][0] = '\0';
    if (h == NULL) {
        for (size_t j = 0; j < k; j++) {
            x->a[j] = A_DOWN;
            snprintf(x->errs[j], ZL_ERRSTR_SIZE, "curl_easy_init failed");
        }
    } else if (gw) {
        const struct zl_ipfs_obj *o = &r->objs[x->idx[0]];
        x->a[0] = ipfs_gateway_check(c, lane - c->nprov, h, o->data, o->len, o->cid, x->errs[0], ZL_ERRSTR_SIZE);
    } else if (c->prov[lane].kind == ZL_IPFS_KUBO) {
        ipfs_pin_kubo(c, &c->prov[lane], h, r->objs, x->idx, k, x->got, x->a, x->errs);
    } else {
        x->a[0] = ipfs_pin_one(c, &c->prov[lane], h, &r->objs[x->idx[0]], x->got[0], sizeof(x->got[0]), x->errs[0],
                               ZL_ERRSTR_SIZE);
    }
    pthread_mutex_lock(&r->mu);
    for (size_t j = 0; j < k; j++) {
        size_t i = x->idx[j];
        struct obj_state *s = &r->st[i];
        if (gw) {
            if (x->a[j] == A_OK) {
                s->read_ok = true;
            } else {
                if (x->a[j] == A_DOWN)
                    s->gw_down++;
                int w = snprintf(s->gw_err + s->gw_off, sizeof(s->gw_err) - s->gw_off, "%s%s: %s",
                                 s->gw_off > 0 ? "; " : "", c->gw[lane - c->nprov], x->errs[j]);
                if (w > 0 && (size_t)w < sizeof(s->gw_err) - s->gw_off)
                    s->gw_off += (size_t)w;
            }
        } else {
            ipfs_pin_record(c, &c->prov[lane], &r->objs[i], &s->tally, x->a[j], x->got[j], x->errs[j]);
            s->inflight--;
        }
        dispatch(r, i);
    }
    r->outstanding -= (int)k; /* after dispatch: what follows was counted first */
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* A lane with work that this worker may serve, or -1. @locks r->mu held. */
static int pick(struct run *r, const struct worker *w)
{
    if (w->lane >= 0)
        return r->q[w->lane].head < r->q[w->lane].tail ? w->lane : -1;
    for (int l = 0; l < r->nlanes; l++)
        if (r->q[l].threads == 0 && r->q[l].head < r->q[l].tail)
            return l;
    return -1;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    struct scratch *x = w->x != NULL ? w->x : malloc(sizeof(*x));
    pthread_mutex_lock(&r->mu);
    if (x == NULL) { /* its lane's other threads, or the caller's, serve the work */
        r->q[w->lane].threads--;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    for (;;) {
        int lane = pick(r, w);
        if (lane < 0) {
            if (r->outstanding == 0)
                break;
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        struct queue *q = &r->q[lane];
        /* A Kubo provider takes everything waiting for it in one add
         * request; the others one object per request. */
        size_t k = 0;
        bool batch = lane < r->c->nprov && r->c->prov[lane].kind == ZL_IPFS_KUBO;
        while (q->head < q->tail && (k == 0 || batch))
            x->idx[k++] = q->item[q->head++];
        pthread_mutex_unlock(&r->mu);
        serve(r, lane, w->lane >= 0 ? w->slot : 0, x, k);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    if (x != w->x)
        free(x);
    return NULL;
}

/* Threads for lane: one per slot up to its bound, no more than it can have
 * work for. A thread that cannot be started leaves its work to the others,
 * or to the caller's thread when none started (pick). */
static void start_lane(struct run *r, struct worker *ws, size_t *nw, int lane, size_t wanted)
{
    int bound = lane_of(r, lane)->bound;
    for (int s = 0; s < bound && (size_t)s < wanted; s++) {
        struct worker *w = &ws[*nw];
        *w = (struct worker){.run = r, .lane = lane, .slot = s};
        pthread_mutex_lock(&r->mu);
        r->q[lane].threads++; /* before it runs: it may give up and count itself out */
        pthread_mutex_unlock(&r->mu);
        if (pthread_create(&w->tid, NULL, work, w) != 0) {
            pthread_mutex_lock(&r->mu);
            r->q[lane].threads--;
            pthread_mutex_unlock(&r->mu);
            zl_log_kv(ZL_LOG_WARN, NULL, "IPFS: cannot start a worker thread, fewer requests in flight", NULL);
            break;
        }
        (*nw)++;
    }
}

void zl_ipfs_pin_many(struct zl_ipfs *c, struct zl_ipfs_obj *objs, size_t n)
{
    ZL_ASSERT(n <= ZL_IPFS_BATCH_MAX);
    struct run *r = calloc(1, sizeof(*r));
    struct worker *ws = calloc(LANES_MAX * ZL_IPFS_CONCURRENCY_LIMIT, sizeof(*ws));
    struct scratch *x = malloc(sizeof(*x));
    bool oom = r == NULL || ws == NULL || x == NULL;
    for (size_t i = 0; i < n; i++) {
        objs[i].error[0] = '\0';
        objs[i].result = ZL_TRANSIENT;
        if (oom)
            snprintf(objs[i].error, sizeof(objs[i].error), "out of memory");
    }
    if (oom || n == 0)
        goto out;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->c = c;
    r->objs = objs;
    r->n = n;
    r->nlanes = c->nprov + c->ngw;
    bool read_back = false;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < n; i++) {
        dispatch(r, i);
        read_back = read_back || objs[i].read_back;
    }
    pthread_mutex_unlock(&r->mu);
    size_t nw = 0;
    for (int l = 0; l < r->nlanes; l++)
        start_lane(r, ws, &nw, l, l < c->nprov || (c->verify && read_back) ? n : 0);
    struct worker self = {.run = r, .lane = -1, .x = x};
    work(&self); /* serves lanes without a thread, returns when everything ended */
    for (size_t i = 0; i < nw; i++)
        pthread_join(ws[i].tid, NULL);
    for (size_t i = 0; i < n; i++) {
        struct obj_state *s = &r->st[i];
        struct zl_ipfs_obj *o = &objs[i];
        ipfs_pin_result(c, o, &s->tally);
        if (o->result != ZL_OK || !o->read_back || !c->verify || s->read_ok)
            continue;
        snprintf(o->error, sizeof(o->error), "%s not retrievable through any gateway (%s)", o->cid, s->gw_err);
        o->result = s->gw_down == c->ngw ? ZL_OUTAGE : ZL_TRANSIENT;
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
out:
    free(x);
    free(ws);
    free(r);
}
