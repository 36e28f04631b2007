/* live.c: the live server's HTTP side and its clients (live.h). The poller
 * that feeds the clients is live_poll.c; the page is live_page.c.
 *
 * libmicrohttpd runs one thread per connection, so a stream's content
 * callback may wait (on its client's condition variable) for the next
 * event without holding up any other stream; a client that does not read
 * only blocks its own thread's write, and its queue, filled by the poller,
 * overflows and drops it. */
#include "live.h"
#include "live_int.h"

#include "log.h"
#include "zl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define OFF(f) offsetof(struct zl_live_config, f)

const struct zl_setting zl_live_settings[] = {
    {"ZL_LIVE_PORT", ZL_CFG_INT, "0", "port of the live updates server (SSE stream and page); 0 = off",
     OFF(port), 0, 65535},
    {"ZL_LIVE_ADDR", ZL_CFG_STR, "127.0.0.1", "IPv4 address the live updates server listens on", OFF(addr), 0, 0},
    {"ZL_LIVE_TOKEN_SECRET_FILE", ZL_CFG_SECRET_FILE, "",
     "file holding the HMAC-SHA256 key of users' live tokens (required when ZL_LIVE_PORT is set)",
     OFF(token_secret), 0, 0},
    {"ZL_LIVE_CLIENTS_MAX", ZL_CFG_INT, "1000", "live streams open at once; one more is answered 503",
     OFF(clients_max), 1, 100000},
    {"ZL_LIVE_QUEUE_EVENTS_MAX", ZL_CFG_INT, "256",
     "events waiting for one live client; one more drops it (it resumes with Last-Event-ID)",
     OFF(queue_events_max), 4, 1000000},
    {"ZL_LIVE_POLL_INTERVAL_MS", ZL_CFG_INT, "250", "time between two reads of new deposit history",
     OFF(poll_interval_ms), 10, 60000},
    {"ZL_LIVE_ROWS_MAX", ZL_CFG_INT, "500", "history rows per live query (a poll, a client's catch-up page)",
     OFF(rows_max), 1, 100000},
    {"ZL_LIVE_KEEPALIVE_MS", ZL_CFG_INT, "15000", "a comment line on an idle live stream this often",
     OFF(keepalive_ms), 100, 3600000},
};
const size_t zl_live_settings_count = sizeof(zl_live_settings) / sizeof(zl_live_settings[0]);

#define PATH_PAGE "/"
#define PATH_EVENTS "/events"
/* What a stream's response callback hands libmicrohttpd at most per call. */
#define STREAM_BLOCK_BYTES 4096
/* Connections beyond the streams: page loads and refused requests. */
#define EXTRA_CONNECTIONS 64
/* A connection that neither reads nor writes for this long is closed (a
 * stream writes a keepalive well within it). */
#define CONNECTION_TIMEOUT_S 120
/* Each stream is a thread: its stack need hold only libmicrohttpd's frames
 * and stream_read's (buffers are on the heap), so a thousand streams do not
 * reserve 8 MiB each. */
#define STREAM_THREAD_STACK_BYTES (256 * 1024)
/* EventSource waits this long before reconnecting (sent as `retry:`). */
#define RECONNECT_MS 1000
#define LAST_EVENT_ID_HEADER "Last-Event-ID"

static const char KEEPALIVE[] = ": keepalive\n\n";

/* ---- clients -------------------------------------------------------------- */

static void free_client(struct live_client *c)
{
    for (size_t i = 0; i < c->q_len; i++)
        free(c->q[(c->q_head + i) % c->q_cap]);
    free(c->q);
    if (c->cur_owned)
        free(c->cur);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static void unlink_client(struct zl_live *l, struct live_client *c)
{
    for (struct live_client **pp = &l->clients; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            l->nclients--;
            return;
        }
    }
}

void live_client_unref(struct zl_live *l, struct live_client *c)
{
    if (--c->refs > 0)
        return;
    unlink_client(l, c);
    free_client(c);
}

/* Frees every queued frame: a dropped or gone client holds no memory for
 * events nobody will read. */
static void clear_queue(struct live_client *c)
{
    for (size_t i = 0; i < c->q_len; i++)
        free(c->q[(c->q_head + i) % c->q_cap]);
    c->q_len = 0;
}

void live_client_push(struct zl_live *l, struct live_client *c, char *frame)
{
    (void)l;
    if (c->dropped || c->gone) {
        free(frame);
        return;
    }
    if (frame == NULL || c->q_len == c->q_cap) {
        /* Slower than its events (or no memory for one): end its stream
         * rather than wait for it, hold an unbounded backlog or skip an
         * event; it resumes with Last-Event-ID and misses nothing. */
        free(frame);
        clear_queue(c);
        c->dropped = true;
        if (frame == NULL)
            zl_log(ZL_LOG_WARN, NULL, "live: out of memory for an event of user %s: client dropped", c->user);
        else
            zl_log(ZL_LOG_WARN, NULL, "live: a client of user %s fell %zu events behind: dropped", c->user,
                   c->q_cap);
        pthread_cond_signal(&c->cv);
        return;
    }
    c->q[(c->q_head + c->q_len) % c->q_cap] = frame;
    c->q_len++;
    pthread_cond_signal(&c->cv);
}

/* ---- the stream ------------------------------------------------------------ */

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Takes the next frame into c->cur, waiting up to the keepalive interval;
 * a keepalive comment when none came. false: the stream is to end. Caller
 * holds l->mu. */
static bool next_frame(struct zl_live *l, struct live_client *c)
{
    struct timespec until;
    deadline_after(&until, l->cfg.keepalive_ms);
    while (c->q_len == 0 && !c->dropped && !l->stopping) {
        if (pthread_cond_timedwait(&c->cv, &l->mu, &until) == ETIMEDOUT)
            break;
    }
    if (c->dropped || l->stopping)
        return false;
    if (c->q_len == 0) {
        c->cur = (char *)KEEPALIVE;
        c->cur_len = sizeof(KEEPALIVE) - 1;
        c->cur_owned = false;
    } else {
        c->cur = c->q[c->q_head];
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_len--;
        c->cur_len = strlen(c->cur);
        c->cur_owned = true;
    }
    c->cur_off = 0;
    return true;
}

/* libmicrohttpd's content callback of a stream, on the connection's thread:
 * copies as much of the current frame as fits, waiting for one when none is
 * being written. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct live_client *c = cls;
    struct zl_live *l = c->server;
    pthread_mutex_lock(&l->mu);
    if (c->cur == NULL && !next_frame(l, c)) {
        pthread_mutex_unlock(&l->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&l->mu);
    /* cur is this thread's alone once taken from the queue. */
    size_t n = c->cur_len - c->cur_off;
    if (n > max)
        n = max;
    memcpy(buf, c->cur + c->cur_off, n);
    c->cur_off += n;
    if (c->cur_off == c->cur_len) {
        if (c->cur_owned)
            free(c->cur);
        c->cur = NULL;
        c->cur_owned = false;
    }
    return (ssize_t)n;
}

/* libmicrohttpd frees the stream's response: the connection is over. */
static void stream_free(void *cls)
{
    struct live_client *c = cls;
    struct zl_live *l = c->server;
    pthread_mutex_lock(&l->mu);
    c->gone = true;
    clear_queue(c);
    live_client_unref(l, c);
    pthread_mutex_unlock(&l->mu);
}

/* A new client for user, resuming after last_event_id (0: from the start),
 * in the list with the connection's ref; NULL when the server is full or
 * memory ran out (*full says which). */
static struct live_client *add_client(struct zl_live *l, const char *user, int64_t last_event_id, bool *full)
{
    *full = false;
    struct live_client *c = calloc(1, sizeof(*c));
    char **q = calloc((size_t)l->cfg.queue_events_max, sizeof(*q));
    char *hello = malloc(32);
    if (c == NULL || q == NULL || hello == NULL || pthread_cond_init(&c->cv, NULL) != 0) {
        free(c);
        free(q);
        free(hello);
        return NULL;
    }
    c->server = l;
    snprintf(c->user, sizeof(c->user), "%s", user);
    c->q = q;
    c->q_cap = (size_t)l->cfg.queue_events_max;
    c->refs = 1;
    c->last_event_id = last_event_id;
    c->resolve = last_event_id > 0;
    c->pos.tx = 0;
    c->pos.id = 0;
    /* The first frame goes out at once, so the client sees its stream open
     * (and learns how soon to reconnect) before any event. */
    snprintf(hello, 32, "retry: %d\n\n", RECONNECT_MS);
    c->cur = hello;
    c->cur_len = strlen(hello);
    c->cur_owned = true;

    pthread_mutex_lock(&l->mu);
    if (l->nclients >= (size_t)l->cfg.clients_max || l->stopping) {
        pthread_mutex_unlock(&l->mu);
        *full = true;
        free_client(c);
        return NULL;
    }
    c->next = l->clients;
    l->clients = c;
    l->nclients++;
    pthread_cond_signal(&l->poll_cv); /* its catch-up need not wait a poll interval */
    pthread_mutex_unlock(&l->mu);
    return c;
}

/* ---- requests --------------------------------------------------------------- */

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *content_type,
                                    const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
        (status != MHD_HTTP_UNAUTHORIZED ||
         MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer") == MHD_YES))
        ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The token of a request: the bearer header, else ?token=. NULL if neither. */
static const char *request_token(struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    static const char bearer[] = "Bearer ";
    if (auth != NULL && strncasecmp(auth, bearer, sizeof(bearer) - 1) == 0)
        return auth + sizeof(bearer) - 1;
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
}

/* The resume point: the Last-Event-ID header (EventSource's reconnect),
 * else ?last_event_id=. Returns 0 with *out (0 when neither), or -1 when
 * the value is not a positive decimal event id. */
static int request_last_event_id(struct MHD_Connection *conn, int64_t *out)
{
    *out = 0;
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, LAST_EVENT_ID_HEADER);
    if (v == NULL || v[0] == '\0')
        v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "last_event_id");
    if (v == NULL || v[0] == '\0')
        return 0;
    if (strlen(v) > 18)
        return -1;
    for (const char *p = v; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return -1;
    *out = strtoll(v, NULL, 10);
    return 0;
}

static enum MHD_Result serve_events(struct zl_live *l, struct MHD_Connection *conn)
{
    const char *token = request_token(conn);
    char user[ZL_LIVE_USER_BYTES_MAX + 1];
    const char *why = "no token (Authorization: Bearer, or ?token=)";
    if (token == NULL ||
        zl_live_token_check(l->secret, token, (int64_t)time(NULL), user, sizeof(user), &why) != 0) {
        char body[128];
        snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", why);
        return respond_text(conn, MHD_HTTP_UNAUTHORIZED, "application/json", body);
    }
    int64_t last_event_id;
    if (request_last_event_id(conn, &last_event_id) != 0)
        return respond_text(conn, MHD_HTTP_BAD_REQUEST, "application/json",
                            "{\"error\":\"Last-Event-ID is not an event id\"}\n");
    bool full;
    struct live_client *c = add_client(l, user, last_event_id, &full);
    if (c == NULL)
        return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                            full ? "{\"error\":\"too many live clients; retry later\"}\n"
                                 : "{\"error\":\"out of memory\"}\n");
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK_BYTES, stream_read, c, stream_free);
    if (r == NULL) {
        stream_free(c);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") == MHD_YES &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
        /* nginx and the like must pass events on as they come */
        MHD_add_response_header(r, "X-Accel-Buffering", "no") == MHD_YES)
        ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r); /* the connection holds it; stream_free runs when it is done */
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    struct zl_live *l = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 || *upload_data_size != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                            "{\"error\":\"only GET\"}\n");
    if (strcmp(url, PATH_PAGE) == 0)
        return respond_text(conn, MHD_HTTP_OK, "text/html; charset=utf-8", live_page_html);
    if (strcmp(url, PATH_EVENTS) == 0)
        return serve_events(l, conn);
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "application/json", "{\"error\":\"not found\"}\n");
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    zl_log(ZL_LOG_WARN, NULL, "live: libmicrohttpd: %s", line);
}

/* ---- start and stop --------------------------------------------------------- */

static void free_server(struct zl_live *l)
{
    if (l->secret != NULL) {
        explicit_bzero(l->secret, strlen(l->secret));
        free(l->secret);
    }
    free(l->pg_dsn);
    pthread_cond_destroy(&l->poll_cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* Returns 0, ZL_LIVE_REFUSED (a bad address) or -1 (cannot listen). */
static int start_daemon(struct zl_live *l, char *errstr, size_t errstr_size)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)l->cfg.port);
    if (inet_pton(AF_INET, l->cfg.addr, &addr.sin_addr) != 1) {
        snprintf(errstr, errstr_size, "ZL_LIVE_ADDR: \"%s\" is not an IPv4 address", l->cfg.addr);
        return ZL_LIVE_REFUSED;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG;
    l->daemon = MHD_start_daemon(flags, (uint16_t)l->cfg.port, NULL, NULL, on_request, l,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, l,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned int)(l->cfg.clients_max + EXTRA_CONNECTIONS),
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
                                 MHD_OPTION_THREAD_STACK_SIZE, (size_t)STREAM_THREAD_STACK_BYTES,
                                 MHD_OPTION_END);
    if (l->daemon == NULL) {
        snprintf(errstr, errstr_size, "live server: cannot listen on %s:%" PRId64 " (%s): is the port taken?",
                 l->cfg.addr, l->cfg.port, strerror(errno));
        return -1;
    }
    return 0;
}

int zl_live_start(const struct zl_live_config *cfg, const char *pg_dsn, int64_t pg_connect_timeout_ms,
                  struct zl_live **out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (cfg->port == 0)
        return 0;
    if (cfg->token_secret.value == NULL || cfg->token_secret.value[0] == '\0') {
        snprintf(errstr, errstr_size,
                 "ZL_LIVE_TOKEN_SECRET_FILE is required with ZL_LIVE_PORT=%" PRId64 ": users' tokens are "
                 "checked with it",
                 cfg->port);
        return ZL_LIVE_REFUSED;
    }
    struct zl_live *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(errstr, errstr_size, "live server: out of memory");
        return -1;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->poll_cv, NULL);
    l->cfg = *cfg;
    l->cfg.token_secret.value = NULL; /* the server keeps its own copy */
    l->secret = strdup(cfg->token_secret.value);
    l->pg_dsn = strdup(pg_dsn);
    l->pg_connect_timeout_ms = pg_connect_timeout_ms;
    if (l->secret == NULL || l->pg_dsn == NULL) {
        snprintf(errstr, errstr_size, "live server: out of memory");
        free_server(l);
        return -1;
    }
    int rc = start_daemon(l, errstr, errstr_size);
    if (rc != 0) {
        free_server(l);
        return rc;
    }
    rc = pthread_create(&l->poller, NULL, live_poll_main, l);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "live server: cannot start the poller: %s", strerror(rc));
        MHD_stop_daemon(l->daemon);
        free_server(l);
        return -1;
    }
    l->poller_started = true;
    zl_log(ZL_LOG_INFO, NULL, "live server on %s:%" PRId64 ": page /, stream /events (clients max %" PRId64 ")",
           l->cfg.addr, l->cfg.port, l->cfg.clients_max);
    /* The caller's strings are not kept past the start. */
    l->cfg.addr = NULL;
    l->cfg.token_secret.path = NULL;
    *out = l;
    return 0;
}

uint16_t zl_live_port(const struct zl_live *l)
{
    return l == NULL ? 0 : (uint16_t)l->cfg.port;
}

void zl_live_stop(struct zl_live *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_broadcast(&l->poll_cv);
    for (struct live_client *c = l->clients; c != NULL; c = c->next)
        pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->poller_started)
        pthread_join(l->poller, NULL);
    /* Every stream's callback sees `stopping` and ends; this waits for the
     * connection threads, and their responses free the clients. */
    MHD_stop_daemon(l->daemon);
    free_server(l);
}
