/* live_int.h: internals of the live server shared by live.c (HTTP, clients)
 * and live_poll.c (the poller). Not for other modules.
 *
 * Locking: one mutex, zl_live.mu, guards the client list and every client's
 * fields below it (queue, cursor, flags). Database queries never run under
 * it: the poller copies what it needs, queries, then takes the lock again to
 * hand the events out. A client's memory lives while refs > 0: one ref for
 * the connection (dropped when libmicrohttpd frees the response), one while
 * the poller queries on its behalf.
 */
#ifndef ZL_LIVE_INT_H
#define ZL_LIVE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "live.h"

/* A position in the (tx, id) order the stream follows. */
struct live_pos {
    uint64_t tx; /* xid8: 64 bits, epoch included, never wraps */
    int64_t id;  /* deposit_history.id */
};

struct live_client {
    struct live_client *next; /* in zl_live.clients */
    struct zl_live *server;   /* borrowed: the server it belongs to */
    char user[ZL_LIVE_USER_BYTES_MAX + 1];
    unsigned refs;
    /* Catch-up (the poller's, before the client sees live rows): */
    bool resolve;          /* last_event_id is to be turned into pos */
    int64_t last_event_id; /* from Last-Event-ID; 0 = none */
    bool caught_up;        /* true: gets the live fan-out */
    struct live_pos pos;   /* the last row sent (or the resume point): a
                              row at or before it is never sent again, e.g.
                              when another server sent it before a reconnect */
    /* The queue of SSE frames, a ring of malloc()ed strings: */
    char **q;
    size_t q_cap, q_head, q_len;
    bool dropped;    /* the queue overflowed: the stream ends after cur */
    bool gone;       /* the connection is over: nothing reads the queue */
    pthread_cond_t cv; /* signalled when a frame is queued or the stream must end */
    /* The frame being written (the connection thread's alone): */
    char *cur;
    size_t cur_len, cur_off;
    bool cur_owned; /* cur is malloc()ed (a static keepalive is not) */
};

struct zl_live {
    struct zl_live_config cfg; /* copy; addr and the secret's path are the
                                  caller's, used during start only (NULL after) */
    char *secret;              /* owned copy of the token secret; wiped */
    char *pg_dsn;              /* owned */
    int64_t pg_connect_timeout_ms;
    struct MHD_Daemon *daemon;
    pthread_t poller;
    bool poller_started;

    pthread_mutex_t mu;
    pthread_cond_t poll_cv; /* wakes the poller early: a new client, stop */
    bool stopping;
    struct live_client *clients;
    size_t nclients;
};

/* live.c: queues frame (malloc()ed; always consumed) for c, or drops c when
 * its queue is full or frame is NULL (out of memory): a dropped client
 * reconnects and resumes, where a skipped frame would be lost. Caller holds
 * l->mu. */
void live_client_push(struct zl_live *l, struct live_client *c, char *frame);

/* live.c: releases the poller's or the connection's ref on c. Caller holds
 * l->mu; c is freed when the last ref goes. */
void live_client_unref(struct zl_live *l, struct live_client *c);

/* live_poll.c: the poller thread's body (arg: struct zl_live *). */
void *live_poll_main(void *arg);

/* live_page.c: the page's HTML. */
extern const char live_page_html[];

#endif /* ZL_LIVE_INT_H */
