/* health.c: see health.h for the endpoints and the threading contract. */
#include "health.h"

#include "log.h"
#include "metrics.h"
#include "zl.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PATH_LIVE "/health/live"
#define PATH_READY "/health/ready"
#define PATH_METRICS "/metrics"
/* Paths under it act on the worker: they need the admin bearer token. */
#define PATH_ADMIN_PREFIX "/admin/"

#define CONTENT_JSON "application/json"
#define CONTENT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define ALLOWED_METHODS "GET, HEAD"

/* RFC 3339 with milliseconds is 24 characters. */
#define TIMESTAMP_SIZE 32

/* Longest libmicrohttpd log line kept; longer is cut. */
#define LOG_LINE_SIZE 512

struct dep {
    char name[ZL_HEALTH_NAME_SIZE];
    bool ok;
    char state[ZL_HEALTH_STATE_SIZE];
    char detail[ZL_HEALTH_DETAIL_SIZE];
    char updated_at[TIMESTAMP_SIZE]; /* RFC 3339 UTC */
};

struct zl_health {
    char stage[ZL_HEALTH_NAME_SIZE];
    int64_t liveness_timeout_ms;
    _Atomic int64_t heartbeat_ms; /* zl_now_ms() of the last heartbeat */
    struct zl_metrics *metrics;   /* borrowed; NULL = no /metrics */
    zl_health_route_fn route;
    void *route_opaque;
    /* sha256 of each admin token (the tokens themselves are not kept);
     * none, or the route authenticates itself: unused. */
    uint8_t admin_token_digests[ZL_HEALTH_ADMIN_TOKENS_MAX][SHA256_DIGEST_SIZE];
    size_t admin_tokens_n;
    bool admin_route_authenticates;
    size_t body_max_bytes;
    uint16_t port;
    struct MHD_Daemon *daemon;

    pthread_mutex_t mu; /* guards everything below */
    bool paused;
    char pause_reason[ZL_HEALTH_DETAIL_SIZE];
    bool draining;
    size_t deps_n;
    struct dep deps[ZL_HEALTH_DEPS_MAX];
    /* While zl_health_start() runs: where libmicrohttpd's first error goes,
     * so the caller learns why the daemon would not start. NULL after. */
    char *start_err;
    size_t start_err_size;
};

/* A hook request's body, read across access handler calls. */
struct upload {
    char *buf;
    size_t len;
    size_t cap;
    bool too_large; /* more than body_max_bytes arrived; the rest is dropped */
};

/* ---- JSON helpers --------------------------------------------------------- */

/* A JSON string for text that may not be valid UTF-8 (a server's error
 * message, a detail cut mid-character): jansson refuses such text, so fall
 * back to an ASCII copy with '?' for every other byte. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    size_t n = strlen(s);
    char *ascii = malloc(n + 1);
    if (ascii == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        ascii[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    ascii[n] = '\0';
    j = json_string(ascii);
    free(ascii);
    return j;
}

/* Serialises j (and releases it) into a malloc()ed, newline-terminated
 * buffer of our own, so libmicrohttpd can free() it whatever allocator
 * jansson was given. NULL when memory runs out. */
static char *json_take_text(json_t *j, size_t *len)
{
    *len = 0;
    if (j == NULL)
        return NULL;
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    char *buf = n > 0 ? malloc(n + 2) : NULL;
    if (buf != NULL && json_dumpb(j, buf, n, JSON_COMPACT) == n) {
        buf[n] = '\n';
        buf[n + 1] = '\0';
        *len = n + 1;
    } else {
        free(buf);
        buf = NULL;
    }
    json_decref(j);
    return buf;
}

/* ---- responses ------------------------------------------------------------ */

/* Queues body (malloc()ed, always consumed) with status. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *content_type, char *body,
                               size_t len, const char *allow)
{
    struct MHD_Response *r;
    if (body == NULL) {
        r = MHD_create_response_from_buffer(0, (void *)"",
                                            MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (r == NULL)
            free(body);
    }
    if (r == NULL)
        return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type) == MHD_YES &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-store") == MHD_YES &&
        (allow == NULL ||
         MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES))
        ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *conn,
                                    unsigned status, json_t *j,
                                    const char *allow)
{
    size_t len;
    char *body = json_take_text(j, &len);
    if (body == NULL)
        return MHD_NO;
    return respond(conn, status, CONTENT_JSON, body, len, allow);
}

static enum MHD_Result respond_error(struct MHD_Connection *conn,
                                     unsigned status, const char *error,
                                     const char *what_key, const char *what,
                                     const char *allow)
{
    json_t *j = json_object();
    if (j == NULL)
        return MHD_NO;
    json_object_set_new(j, "error", json_text(error));
    if (what_key != NULL)
        json_object_set_new(j, what_key, json_text(what));
    return respond_json(conn, status, j, allow);
}

/* ---- the three endpoints ---------------------------------------------------- */

static enum MHD_Result serve_live(struct zl_health *h,
                                  struct MHD_Connection *conn)
{
    int64_t age_ms = zl_now_ms() - atomic_load(&h->heartbeat_ms);
    bool live = age_ms <= h->liveness_timeout_ms;
    json_t *j = json_object();
    if (j == NULL)
        return MHD_NO;
    json_object_set_new(j, "status", json_string(live ? "live" : "stalled"));
    json_object_set_new(j, "stage", json_text(h->stage));
    json_object_set_new(j, "heartbeat_age_ms", json_integer(age_ms));
    json_object_set_new(j, "liveness_timeout_ms",
                        json_integer(h->liveness_timeout_ms));
    return respond_json(conn, live ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                        j, NULL);
}

/* Readiness and why not, from the state under h->mu. */
struct readiness {
    bool ready;
    const char *reason;       /* pause reason or "draining"; NULL otherwise */
    const struct dep *failed; /* first failing dependency, if that is why */
};

/* @locks h->mu held */
static struct readiness readiness_locked(const struct zl_health *h)
{
    struct readiness r = {.ready = false, .reason = NULL, .failed = NULL};
    if (h->paused) {
        r.reason = h->pause_reason[0] != '\0' ? h->pause_reason : "paused";
        return r;
    }
    if (h->draining) {
        r.reason = "draining";
        return r;
    }
    for (size_t i = 0; i < h->deps_n; i++) {
        if (!h->deps[i].ok) {
            r.failed = &h->deps[i];
            return r;
        }
    }
    r.ready = true;
    return r;
}

/* @locks h->mu held */
static json_t *ready_body_locked(const struct zl_health *h,
                                 const struct readiness *r)
{
    json_t *j = json_object();
    json_t *deps = json_object();
    if (j == NULL || deps == NULL) {
        json_decref(j);
        json_decref(deps);
        return NULL;
    }
    json_object_set_new(j, "ready", json_boolean(r->ready));
    json_object_set_new(j, "stage", json_text(h->stage));
    json_object_set_new(j, "paused", json_boolean(h->paused));
    json_object_set_new(j, "draining", json_boolean(h->draining));
    if (r->failed != NULL) {
        /* Name the dependency and its state: "dependency rpc is open". */
        char text[ZL_HEALTH_NAME_SIZE + ZL_HEALTH_STATE_SIZE + 32];
        snprintf(text, sizeof(text), "dependency %s is %s", r->failed->name,
                 r->failed->state);
        json_object_set_new(j, "reason", json_text(text));
    } else if (r->reason != NULL) {
        json_object_set_new(j, "reason", json_text(r->reason));
    } else {
        json_object_set_new(j, "reason", json_null());
    }
    for (size_t i = 0; i < h->deps_n; i++) {
        const struct dep *d = &h->deps[i];
        json_t *o = json_object();
        if (o == NULL)
            break;
        json_object_set_new(o, "ok", json_boolean(d->ok));
        json_object_set_new(o, "state", json_text(d->state));
        json_object_set_new(o, "detail", json_text(d->detail));
        json_object_set_new(o, "updated_at", json_string(d->updated_at));
        json_object_set_new(deps, d->name, o);
    }
    json_object_set_new(j, "dependencies", deps);
    return j;
}

static enum MHD_Result serve_ready(struct zl_health *h,
                                   struct MHD_Connection *conn)
{
    pthread_mutex_lock(&h->mu);
    struct readiness r = readiness_locked(h);
    json_t *j = ready_body_locked(h, &r);
    pthread_mutex_unlock(&h->mu);
    if (j == NULL)
        return MHD_NO;
    return respond_json(conn,
                        r.ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                        j, NULL);
}

static enum MHD_Result serve_metrics(struct zl_health *h,
                                     struct MHD_Connection *conn)
{
    if (h->metrics == NULL)
        return respond_error(conn, MHD_HTTP_NOT_FOUND,
                             "no metrics registry configured", "path",
                             PATH_METRICS, NULL);
    char *text = NULL;
    size_t len = 0;
    if (zl_metrics_render(h->metrics, &text, &len) != 0)
        return respond_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "out of memory rendering metrics", NULL, NULL,
                             NULL);
    return respond(conn, MHD_HTTP_OK, CONTENT_METRICS, text, len, NULL);
}

/* ---- route hook ------------------------------------------------------------- */

const char *zl_health_request_header(const struct zl_health_request *req,
                                     const char *name)
{
    ZL_ASSERT(req != NULL && name != NULL);
    return MHD_lookup_connection_value(req->conn_, MHD_HEADER_KIND, name);
}

const char *zl_health_request_arg(const struct zl_health_request *req,
                                  const char *key)
{
    ZL_ASSERT(req != NULL && key != NULL);
    return MHD_lookup_connection_value(req->conn_, MHD_GET_ARGUMENT_KIND, key);
}

void zl_health_request_peer(const struct zl_health_request *req, char *out,
                            size_t out_size)
{
    ZL_ASSERT(req != NULL && out != NULL && out_size > 0);
    snprintf(out, out_size, "unknown");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
        req->conn_, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    char ip[INET6_ADDRSTRLEN];
    const void *src = sa->sa_family == AF_INET6
                          ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                          : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if ((sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
        inet_ntop(sa->sa_family, src, ip, sizeof(ip)) != NULL)
        snprintf(out, out_size, "%s", ip);
}

static void sha256_of(const char *s, uint8_t out[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, strlen(s), (const uint8_t *)s);
    sha256_digest(&c, SHA256_DIGEST_SIZE, out);
}

/* The given Authorization value against a token's digest: the given token
 * is hashed too, so the time depends on neither value's length or content;
 * then every byte's difference is folded. */
static bool bearer_matches(const char *authorization,
                           const uint8_t expected[SHA256_DIGEST_SIZE])
{
    static const char prefix[] = "Bearer ";
    bool has_prefix = authorization != NULL &&
                      strncmp(authorization, prefix, sizeof(prefix) - 1) == 0;
    uint8_t given[SHA256_DIGEST_SIZE];
    sha256_of(has_prefix ? authorization + sizeof(prefix) - 1 : "", given);
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
        diff |= (uint8_t)(given[i] ^ expected[i]);
    return has_prefix && diff == 0;
}

/* True when authorization carries one of h's admin tokens; every one is
 * compared, so the time does not say which matched. */
static bool admin_token_matches(const struct zl_health *h,
                                const char *authorization)
{
    bool ok = false;
    for (size_t i = 0; i < h->admin_tokens_n; i++)
        ok |= bearer_matches(authorization, h->admin_token_digests[i]);
    return ok;
}

/* Keeps the digest of each non-blank line of text (one token per line, as
 * in zl-admin's token file; surrounding blanks and CR dropped), at most
 * ZL_HEALTH_ADMIN_TOKENS_MAX; later ones are ignored. */
static void keep_admin_tokens(struct zl_health *h, const char *text)
{
    const char *p = text != NULL ? text : "";
    while (*p != '\0' && h->admin_tokens_n < ZL_HEALTH_ADMIN_TOKENS_MAX) {
        size_t len = strcspn(p, "\n");
        size_t skip = strspn(p, " \t"), n = len;
        while (n > skip && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > skip) {
            struct sha256_ctx c;
            sha256_init(&c);
            sha256_update(&c, n - skip, (const uint8_t *)p + skip);
            sha256_digest(&c, SHA256_DIGEST_SIZE,
                          h->admin_token_digests[h->admin_tokens_n++]);
        }
        p += len + (p[len] == '\n');
    }
}

bool zl_health_bearer_ok(const char *authorization, const char *expected)
{
    ZL_ASSERT(expected != NULL);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_of(expected, d);
    return bearer_matches(authorization, d) && expected[0] != '\0';
}

void zl_health_token_fingerprint(const char *token,
                                 char out[ZL_HEALTH_TOKEN_FPR_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_of(token != NULL ? token : "", d);
    for (size_t i = 0; i < (ZL_HEALTH_TOKEN_FPR_SIZE - 1) / 2; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 0xf];
    }
    out[ZL_HEALTH_TOKEN_FPR_SIZE - 1] = '\0';
}

/* Keeps up to body_max_bytes of the body; beyond that, remembers it was too
 * large and drops the rest (the client gets 413 once it is all read). */
static bool upload_append(struct upload *u, const char *data, size_t n,
                          size_t body_max_bytes)
{
    if (u->too_large)
        return true;
    if (n > body_max_bytes - u->len) {
        u->too_large = true;
        return true;
    }
    if (u->len + n + 1 > u->cap) {
        size_t cap = u->cap == 0 ? 1024 : u->cap;
        while (cap < u->len + n + 1)
            cap *= 2;
        if (cap > body_max_bytes + 1)
            cap = body_max_bytes + 1;
        char *buf = realloc(u->buf, cap);
        if (buf == NULL)
            return false;
        u->buf = buf;
        u->cap = cap;
    }
    memcpy(u->buf + u->len, data, n);
    u->len += n;
    u->buf[u->len] = '\0';
    return true;
}

static enum MHD_Result serve_hook(struct zl_health *h,
                                  struct MHD_Connection *conn, const char *url,
                                  const char *method, struct upload *u)
{
    if (u->too_large) {
        char limit[64];
        snprintf(limit, sizeof(limit), "%zu bytes", h->body_max_bytes);
        return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                             "request body too large", "limit", limit, NULL);
    }
    struct zl_health_request req = {
        .method = method,
        .path = url,
        .body = u->buf != NULL ? u->buf : "",
        .body_len = u->len,
        .conn_ = conn,
    };
    struct zl_health_response resp = {0};
    if (h->route(h->route_opaque, &req, &resp) != 0) {
        free(resp.body); /* a hook that declines owns nothing, but be safe */
        return respond_error(conn, MHD_HTTP_NOT_FOUND, "not found", "path",
                             url, NULL);
    }
    if (resp.status < 100 || resp.status > 599) {
        free(resp.body);
        return respond_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "route hook returned an invalid HTTP status",
                             "path", url, NULL);
    }
    return respond(conn, (unsigned)resp.status,
                   resp.content_type != NULL ? resp.content_type : CONTENT_JSON,
                   resp.body, resp.body != NULL ? resp.body_len : 0, NULL);
}

/* ---- dispatch --------------------------------------------------------------- */

static bool is_builtin(const char *url)
{
    return strcmp(url, PATH_LIVE) == 0 || strcmp(url, PATH_READY) == 0 ||
           strcmp(url, PATH_METRICS) == 0;
}

/* libmicrohttpd's access handler: called once when the headers are in, then
 * once per chunk of body, then once more with no data.
 * @locality a libmicrohttpd connection thread */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct zl_health *h = cls;
    (void)version;

    if (is_builtin(url)) {
        /* No body to wait for: answer at once. Should the client send one
         * anyway, libmicrohttpd closes the connection after the answer. */
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
            strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                 "method not allowed", "method", method,
                                 ALLOWED_METHODS);
        if (strcmp(url, PATH_LIVE) == 0)
            return serve_live(h, conn);
        if (strcmp(url, PATH_READY) == 0)
            return serve_ready(h, conn);
        return serve_metrics(h, conn);
    }
    if (h->route == NULL)
        return respond_error(conn, MHD_HTTP_NOT_FOUND, "not found", "path", url,
                             NULL);

    struct upload *u = *con_cls;
    if (u == NULL) {
        /* The token is checked before any body is read: a caller without
         * it costs one hash, never a buffered upload or a hook call. */
        if (strncmp(url, PATH_ADMIN_PREFIX, sizeof(PATH_ADMIN_PREFIX) - 1) == 0 &&
            !h->admin_route_authenticates) {
            if (h->admin_tokens_n == 0)
                return respond_error(conn, MHD_HTTP_FORBIDDEN,
                                     "admin endpoints are off: no admin token "
                                     "is configured (ZL_ADMIN_TOKEN_FILE)",
                                     "path", url, NULL);
            const char *auth = MHD_lookup_connection_value(
                conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
            if (!admin_token_matches(h, auth))
                return respond_error(conn, MHD_HTTP_UNAUTHORIZED,
                                     "missing or wrong bearer token "
                                     "(Authorization: Bearer <token>)",
                                     "path", url, NULL);
        }
        u = calloc(1, sizeof(*u));
        if (u == NULL)
            return MHD_NO;
        *con_cls = u; /* now owned, and freed, by on_completed */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!upload_append(u, upload_data, *upload_data_size,
                           h->body_max_bytes))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    return serve_hook(h, conn, url, method, u);
}

/* @locality a libmicrohttpd connection thread */
static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct upload *u = *con_cls;
    if (u != NULL) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

/* libmicrohttpd's messages. During zl_health_start() the first one becomes
 * the caller's error; afterwards they are logged (common/log.h) as warnings
 * with "component":"http".
 * @locality any libmicrohttpd thread, or the starting thread */
__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct zl_health *h = cls;
    char line[LOG_LINE_SIZE];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';

    pthread_mutex_lock(&h->mu);
    if (h->start_err != NULL) {
        if (h->start_err[0] == '\0')
            snprintf(h->start_err, h->start_err_size, "%s", line);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    pthread_mutex_unlock(&h->mu);
    zl_log_kv(ZL_LOG_WARN, NULL, line, "component", "http", NULL);
}

/* ---- start / stop ------------------------------------------------------------ */

static bool valid_dep_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= ZL_HEALTH_NAME_SIZE)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
                  c == '/' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Fills addr from an IP literal and the port; false when it is not one. */
static bool parse_bind_addr(const char *text, uint16_t port,
                            struct sockaddr_storage *addr, bool *ipv6)
{
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *ipv6 = false;
        return true;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *ipv6 = true;
        return true;
    }
    return false;
}

static int check_opts(const struct zl_health_opts *opts, char *errstr,
                      size_t errstr_size)
{
    if (opts == NULL || opts->stage == NULL || !valid_dep_name(opts->stage)) {
        snprintf(errstr, errstr_size,
                 "health: stage name missing or invalid (1..%d characters of "
                 "[A-Za-z0-9_.:/-]); set opts.stage to the worker's stage, "
                 "e.g. \"verify\"",
                 ZL_HEALTH_NAME_SIZE - 1);
        return -1;
    }
    if (opts->liveness_timeout_ms < 0) {
        snprintf(errstr, errstr_size,
                 "health: liveness_timeout_ms is %lld; use a positive value "
                 "in milliseconds, or 0 for the default %d",
                 (long long)opts->liveness_timeout_ms,
                 ZL_HEALTH_LIVENESS_TIMEOUT_MS_DEFAULT);
        return -1;
    }
    return 0;
}

int zl_health_start(struct zl_health **out, const struct zl_health_opts *opts,
                    char *errstr, size_t errstr_size)
{
    ZL_ASSERT(out != NULL && errstr != NULL && errstr_size > 0);
    *out = NULL;
    errstr[0] = '\0';
    if (check_opts(opts, errstr, errstr_size) != 0)
        return -1;

    const char *bind_addr = opts->bind_addr != NULL && opts->bind_addr[0] != '\0'
                                ? opts->bind_addr
                                : ZL_HEALTH_BIND_ADDR_DEFAULT;
    struct sockaddr_storage addr;
    bool ipv6 = false;
    if (!parse_bind_addr(bind_addr, opts->port, &addr, &ipv6)) {
        snprintf(errstr, errstr_size,
                 "health: bind address \"%s\" is not an IPv4 or IPv6 literal "
                 "(host names are not resolved); use e.g. 127.0.0.1, 0.0.0.0 "
                 "or ::1",
                 bind_addr);
        return -1;
    }

    struct zl_health *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(errstr, errstr_size, "health: out of memory");
        return -1;
    }
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        snprintf(errstr, errstr_size, "health: pthread_mutex_init failed");
        return -1;
    }
    snprintf(h->stage, sizeof(h->stage), "%s", opts->stage);
    h->liveness_timeout_ms = opts->liveness_timeout_ms > 0
                                 ? opts->liveness_timeout_ms
                                 : ZL_HEALTH_LIVENESS_TIMEOUT_MS_DEFAULT;
    atomic_init(&h->heartbeat_ms, zl_now_ms());
    h->metrics = opts->metrics;
    h->route = opts->route;
    h->route_opaque = opts->route_opaque;
    h->admin_route_authenticates = opts->admin_route_authenticates;
    keep_admin_tokens(h, opts->admin_token);
    h->body_max_bytes = opts->body_max_bytes > 0
                            ? opts->body_max_bytes
                            : ZL_HEALTH_BODY_MAX_BYTES_DEFAULT;
    unsigned connections_max = opts->connections_max > 0
                                   ? opts->connections_max
                                   : ZL_HEALTH_CONNECTIONS_MAX_DEFAULT;

    char mhd_err[ZL_ERRSTR_SIZE] = "";
    h->start_err = mhd_err;
    h->start_err_size = sizeof(mhd_err);

    /* One thread per connection: a slow route hook (a database query for
     * the admin API) must not delay liveness probes on other connections. */
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD |
                         MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, opts->port, NULL, NULL, on_request, h,
        /* first, so startup errors reach on_mhd_log too */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, connections_max,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)ZL_HEALTH_CONNECTION_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_END);

    pthread_mutex_lock(&h->mu);
    h->start_err = NULL;
    pthread_mutex_unlock(&h->mu);

    if (h->daemon == NULL) {
        snprintf(errstr, errstr_size,
                 "health: cannot serve HTTP on %s port %u: %s; check that the "
                 "port is free and the address belongs to this host",
                 bind_addr, (unsigned)opts->port,
                 mhd_err[0] != '\0' ? mhd_err : "libmicrohttpd refused to start");
        goto out_free;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        snprintf(errstr, errstr_size,
                 "health: listening on %s but libmicrohttpd does not report "
                 "the port (needs libmicrohttpd >= 0.9.71)",
                 bind_addr);
        MHD_stop_daemon(h->daemon);
        goto out_free;
    }
    h->port = info->port;
    *out = h;
    return 0;

out_free:
    pthread_mutex_destroy(&h->mu);
    free(h);
    return -1;
}

uint16_t zl_health_port(const struct zl_health *h)
{
    ZL_ASSERT(h != NULL);
    return h->port;
}

void zl_health_stop(struct zl_health *h)
{
    if (h == NULL)
        return;
    /* Joins every connection thread, so no handler touches h after this. */
    MHD_stop_daemon(h->daemon);
    h->daemon = NULL;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ---- state ---------------------------------------------------------------- */

int zl_health_set_dep(struct zl_health *h, const char *name, bool ok,
                      const char *state, const char *detail)
{
    ZL_ASSERT(h != NULL);
    if (name == NULL || !valid_dep_name(name))
        return -1;
    if (state == NULL)
        state = ok ? "up" : "down";
    if (detail == NULL)
        detail = "";
    char now[TIMESTAMP_SIZE];
    zl_rfc3339_now(now, sizeof(now));

    int rc = -1;
    pthread_mutex_lock(&h->mu);
    struct dep *d = NULL;
    for (size_t i = 0; i < h->deps_n && d == NULL; i++) {
        if (strcmp(h->deps[i].name, name) == 0)
            d = &h->deps[i];
    }
    if (d == NULL && h->deps_n < ZL_HEALTH_DEPS_MAX) {
        d = &h->deps[h->deps_n++];
        snprintf(d->name, sizeof(d->name), "%s", name);
    }
    if (d != NULL) {
        d->ok = ok;
        snprintf(d->state, sizeof(d->state), "%s", state);
        snprintf(d->detail, sizeof(d->detail), "%s", detail);
        snprintf(d->updated_at, sizeof(d->updated_at), "%s", now);
        rc = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void zl_health_set_paused(struct zl_health *h, bool paused, const char *reason)
{
    ZL_ASSERT(h != NULL);
    pthread_mutex_lock(&h->mu);
    h->paused = paused;
    snprintf(h->pause_reason, sizeof(h->pause_reason), "%s",
             paused && reason != NULL ? reason : "");
    pthread_mutex_unlock(&h->mu);
}

void zl_health_set_draining(struct zl_health *h)
{
    ZL_ASSERT(h != NULL);
    pthread_mutex_lock(&h->mu);
    h->draining = true;
    pthread_mutex_unlock(&h->mu);
}

void zl_health_heartbeat(struct zl_health *h)
{
    ZL_ASSERT(h != NULL);
    atomic_store_explicit(&h->heartbeat_ms, zl_now_ms(), memory_order_relaxed);
}

bool zl_health_ready(struct zl_health *h)
{
    ZL_ASSERT(h != NULL);
    pthread_mutex_lock(&h->mu);
    bool ready = readiness_locked(h).ready;
    pthread_mutex_unlock(&h->mu);
    return ready;
}

int zl_health_write_port_file(const struct zl_health *h, const char *path)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%u\n", (unsigned)zl_health_port(h));
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}
