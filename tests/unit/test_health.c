/* Unit tests for common/health: a real server on an ephemeral local port,
 * queried with libcurl. */
#include "health.h"
#include "metrics.h"
#include "zl.h"
#include "zltest.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

/* Longest response body a test reads; enough for any page here. */
#define BODY_SIZE 16384

struct http_reply {
    long status;
    char body[BODY_SIZE];
    size_t len;
    bool truncated;
    char content_type[128];
    char allow[64];
    int curl_rc;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *p)
{
    struct http_reply *r = p;
    size_t n = size * nmemb;
    if (r->len + n >= sizeof(r->body)) {
        r->truncated = true;
        n = sizeof(r->body) - 1 - r->len;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return size * nmemb;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *p)
{
    struct http_reply *r = p;
    size_t n = size * nmemb;
    static const char allow[] = "Allow: ";
    size_t prefix = sizeof(allow) - 1;
    if (n > prefix && strncasecmp(data, allow, prefix) == 0) {
        const char *value = data + prefix;
        size_t v = n - prefix;
        while (v > 0 && (value[v - 1] == '\n' || value[v - 1] == '\r'))
            v--;
        if (v >= sizeof(r->allow))
            v = sizeof(r->allow) - 1;
        memcpy(r->allow, value, v);
        r->allow[v] = '\0';
    }
    return n;
}

static void curl_init_once(void)
{
    static bool done = false;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        atexit(curl_global_cleanup);
        done = true;
    }
}

/* Sends method path (with body when not NULL) to 127.0.0.1:port; fills r.
 * Returns 0 when a response arrived, else the curl error code. */
static int http(uint16_t port, const char *method, const char *path,
                const char *body, struct http_reply *r)
{
    curl_init_once();
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    r->curl_rc = (int)rc;
    if (rc == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (ct != NULL)
            snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
    }
    curl_easy_cleanup(c);
    return (int)rc;
}

/* admin_token: NULL with admin_route_authenticates (the hook checks the
 * token, as zl-admin's does), else the token /admin/... needs ("" = none). */
static struct zl_health *start_admin(zl_health_route_fn route, void *opaque,
                                     const char *admin_token)
{
    struct zl_health_opts opts = {
        .stage = "verify",
        .route = route,
        .route_opaque = opaque,
        .body_max_bytes = 64,
        .admin_token = admin_token,
        .admin_route_authenticates = admin_token == NULL,
    };
    char err[ZL_ERRSTR_SIZE];
    struct zl_health *h = NULL;
    if (zl_health_start(&h, &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "  zl_health_start: %s\n", err);
        return NULL;
    }
    return h;
}

static struct zl_health *start(int64_t liveness_timeout_ms,
                               struct zl_metrics *metrics,
                               zl_health_route_fn route, void *opaque)
{
    struct zl_health_opts opts = {
        .admin_route_authenticates = true, /* the hooks below stand for zl-admin's */
        .stage = "verify",
        .port = 0,
        .liveness_timeout_ms = liveness_timeout_ms,
        .metrics = metrics,
        .route = route,
        .route_opaque = opaque,
        .body_max_bytes = 64,
    };
    char err[ZL_ERRSTR_SIZE];
    struct zl_health *h = NULL;
    if (zl_health_start(&h, &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "  zl_health_start: %s\n", err);
        return NULL;
    }
    return h;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Parses r's body as JSON; NULL when it is not. */
static json_t *body_json(const struct http_reply *r)
{
    json_error_t e;
    return json_loads(r->body, 0, &e);
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2 != NULL)
        v = json_object_get(v, path2);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

ZT_TEST(test_port_zero_listens_on_an_ephemeral_port_it_reports)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    ZT_CHECK(zl_health_port(h) != 0);
    struct http_reply r;
    ZT_EQ_INT(0, http(zl_health_port(h), "GET", "/health/live", NULL, &r));
    ZT_EQ_INT(200, r.status);
    zl_health_stop(h);
}

ZT_TEST(test_ready_is_200_with_every_dependency_in_the_body_when_all_ok)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    ZT_EQ_INT(0, zl_health_set_dep(h, "postgres", true, "up", "pg:5432"));
    ZT_EQ_INT(0, zl_health_set_dep(h, "rpc", true, "closed", NULL));
    ZT_CHECK(zl_health_ready(h));
    struct http_reply r;
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/health/ready", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    ZT_EQ_STR("application/json", r.content_type);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_CHECK(json_is_true(json_object_get(j, "ready")));
    ZT_CHECK(json_is_false(json_object_get(j, "paused")));
    ZT_CHECK(json_is_null(json_object_get(j, "reason")));
    ZT_EQ_STR("verify", jstr(j, "stage", NULL));
    json_t *deps = json_object_get(j, "dependencies");
    ZT_EQ_INT(2, json_object_size(deps));
    json_t *pg = json_object_get(deps, "postgres");
    ZT_CHECK(json_is_true(json_object_get(pg, "ok")));
    ZT_EQ_STR("up", jstr(pg, "state", NULL));
    ZT_EQ_STR("pg:5432", jstr(pg, "detail", NULL));
    const char *at = jstr(pg, "updated_at", NULL);
    ZT_CHECK(at != NULL && strlen(at) == 24 && at[23] == 'Z');
    ZT_EQ_STR("closed", jstr(deps, "rpc", "state"));
    ZT_EQ_STR("", jstr(deps, "rpc", "detail"));
    json_decref(j);
    zl_health_stop(h);
}

ZT_TEST(test_ready_flips_to_503_when_a_dependency_fails_and_back_when_it_recovers)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    uint16_t port = zl_health_port(h);
    struct http_reply r;
    ZT_EQ_INT(0, zl_health_set_dep(h, "postgres", true, "up", ""));
    ZT_EQ_INT(0, zl_health_set_dep(h, "rpc", true, "closed", ""));

    ZT_EQ_INT(0, zl_health_set_dep(h, "rpc", false, "open",
                                   "5 of 8 calls failed"));
    ZT_CHECK(!zl_health_ready(h));
    ZT_REQUIRE(http(port, "GET", "/health/ready", NULL, &r) == 0);
    ZT_EQ_INT(503, r.status);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_CHECK(json_is_false(json_object_get(j, "ready")));
    ZT_EQ_STR("dependency rpc is open", jstr(j, "reason", NULL));
    ZT_EQ_STR("open", jstr(json_object_get(j, "dependencies"), "rpc", "state"));
    ZT_EQ_STR("5 of 8 calls failed",
              jstr(json_object_get(j, "dependencies"), "rpc", "detail"));
    ZT_CHECK(json_is_false(json_object_get(
        json_object_get(json_object_get(j, "dependencies"), "rpc"), "ok")));
    json_decref(j);

    ZT_EQ_INT(0, zl_health_set_dep(h, "rpc", true, "half_open", "probe ok"));
    ZT_REQUIRE(http(port, "GET", "/health/ready", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    zl_health_stop(h);
}

ZT_TEST(test_pause_makes_ready_503_with_its_reason_and_resume_restores_200)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    uint16_t port = zl_health_port(h);
    struct http_reply r;
    zl_health_set_paused(h, true, "outage: postgres unreachable");
    ZT_REQUIRE(http(port, "GET", "/health/ready", NULL, &r) == 0);
    ZT_EQ_INT(503, r.status);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_CHECK(json_is_true(json_object_get(j, "paused")));
    ZT_EQ_STR("outage: postgres unreachable", jstr(j, "reason", NULL));
    json_decref(j);
    /* Paused is not dead: liveness stays green. */
    ZT_REQUIRE(http(port, "GET", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);

    zl_health_set_paused(h, false, NULL);
    ZT_REQUIRE(http(port, "GET", "/health/ready", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    zl_health_stop(h);
}

ZT_TEST(test_draining_makes_ready_503_for_good)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    struct http_reply r;
    zl_health_set_draining(h);
    zl_health_set_paused(h, false, NULL); /* resuming does not undo draining */
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/health/ready", NULL, &r) == 0);
    ZT_EQ_INT(503, r.status);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_CHECK(json_is_true(json_object_get(j, "draining")));
    ZT_EQ_STR("draining", jstr(j, "reason", NULL));
    json_decref(j);
    zl_health_stop(h);
}

ZT_TEST(test_live_fails_when_the_heartbeat_is_older_than_the_timeout)
{
    struct zl_health *h = start(200 /* liveness_timeout_ms */, NULL, NULL,
                                NULL);
    ZT_REQUIRE(h != NULL);
    uint16_t port = zl_health_port(h);
    struct http_reply r;
    zl_health_heartbeat(h);
    ZT_REQUIRE(http(port, "GET", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_EQ_STR("live", jstr(j, "status", NULL));
    ZT_EQ_STR("verify", jstr(j, "stage", NULL));
    json_decref(j);

    sleep_ms(350); /* the loop "wedges": no heartbeat */
    ZT_REQUIRE(http(port, "GET", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(503, r.status);
    j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_EQ_STR("stalled", jstr(j, "status", NULL));
    ZT_CHECK(json_integer_value(json_object_get(j, "heartbeat_age_ms")) >= 350);
    json_decref(j);

    zl_health_heartbeat(h); /* the loop turns again */
    ZT_REQUIRE(http(port, "GET", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    zl_health_stop(h);
}

ZT_TEST(test_metrics_serves_the_registry_as_prometheus_text)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_describe(reg, "zl_messages_total",
                                     ZL_METRIC_COUNTER, "Messages."));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_messages_total",
                                        "stage=\"verify\",outcome=\"ok\"", 42));
    struct zl_health *h = start(0, reg, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    struct http_reply r;
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/metrics", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    ZT_CHECK(strncmp(r.content_type, "text/plain; version=0.0.4",
                     strlen("text/plain; version=0.0.4")) == 0);
    ZT_CHECK(strstr(r.body, "# TYPE zl_messages_total counter\n") != NULL);
    ZT_CHECK(strstr(r.body, "zl_messages_total{stage=\"verify\",outcome=\"ok\"} "
                            "42\n") != NULL);
    /* Live: a later increment shows on the next scrape. */
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_messages_total",
                                        "stage=\"verify\",outcome=\"ok\"", 1));
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/metrics", NULL, &r) == 0);
    ZT_CHECK(strstr(r.body, "outcome=\"ok\"} 43\n") != NULL);
    zl_health_stop(h);
    zl_metrics_destroy(reg);
}

ZT_TEST(test_metrics_without_a_registry_is_404)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    struct http_reply r;
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/metrics", NULL, &r) == 0);
    ZT_EQ_INT(404, r.status);
    zl_health_stop(h);
}

ZT_TEST(test_unknown_path_is_404_json)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    struct http_reply r;
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/health/nope", NULL, &r) == 0);
    ZT_EQ_INT(404, r.status);
    ZT_EQ_STR("application/json", r.content_type);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_EQ_STR("not found", jstr(j, "error", NULL));
    ZT_EQ_STR("/health/nope", jstr(j, "path", NULL));
    json_decref(j);
    zl_health_stop(h);
}

ZT_TEST(test_methods_other_than_get_are_405_with_allow_header)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    uint16_t port = zl_health_port(h);
    struct http_reply r;
    ZT_REQUIRE(http(port, "POST", "/health/ready", "{}", &r) == 0);
    ZT_EQ_INT(405, r.status);
    ZT_EQ_STR("GET, HEAD", r.allow);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_EQ_STR("POST", jstr(j, "method", NULL));
    json_decref(j);
    ZT_REQUIRE(http(port, "DELETE", "/metrics", NULL, &r) == 0);
    ZT_EQ_INT(405, r.status);
    ZT_REQUIRE(http(port, "PUT", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(405, r.status);
    /* HEAD is GET without the body (RFC 9110 §9.3.2). */
    ZT_REQUIRE(http(port, "HEAD", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    ZT_EQ_INT(0, r.len);
    zl_health_stop(h);
}

/* A route hook like the admin API's: echoes POST /admin/echo, declines the
 * rest. */
static int echo_route(void *opaque, const struct zl_health_request *req,
                      struct zl_health_response *resp)
{
    int *calls = opaque;
    (*calls)++;
    if (strcmp(req->path, "/admin/echo") != 0)
        return -1;
    const char *auth = zl_health_request_header(req, "authorization");
    const char *who = zl_health_request_arg(req, "who");
    char text[256];
    int n = snprintf(text, sizeof(text), "%s %s auth=%s who=%s body=%s(%zu)",
                     req->method, req->path, auth ? auth : "-",
                     who ? who : "-", req->body, req->body_len);
    resp->status = 201;
    resp->content_type = "text/plain";
    resp->body = malloc((size_t)n + 1);
    if (resp->body == NULL)
        return -1;
    memcpy(resp->body, text, (size_t)n + 1);
    resp->body_len = (size_t)n;
    return 0;
}

ZT_TEST(test_route_hook_gets_other_paths_with_method_headers_args_and_body)
{
    int calls = 0;
    struct zl_health *h = start(0, NULL, echo_route, &calls);
    ZT_REQUIRE(h != NULL);
    uint16_t port = zl_health_port(h);
    struct http_reply r;

    curl_init_once();
    CURL *c = curl_easy_init();
    ZT_REQUIRE(c != NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/admin/echo?who=ops%%20team",
             (unsigned)port);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Authorization: Bearer t0k");
    memset(&r, 0, sizeof(r));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"id\":1}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    ZT_EQ_INT(CURLE_OK, curl_easy_perform(c));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    ZT_EQ_INT(201, r.status);
    ZT_EQ_STR("POST /admin/echo auth=Bearer t0k who=ops team body={\"id\":1}(8)",
              r.body);

    /* Declined by the hook: 404 JSON. */
    ZT_REQUIRE(http(port, "GET", "/admin/other", NULL, &r) == 0);
    ZT_EQ_INT(404, r.status);
    ZT_EQ_STR("application/json", r.content_type);
    ZT_EQ_INT(2, calls);
    /* Built-in paths never reach the hook. */
    ZT_REQUIRE(http(port, "GET", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(2, calls);
    zl_health_stop(h);
}

ZT_TEST(test_route_hook_body_over_the_limit_is_413_without_calling_the_hook)
{
    int calls = 0;
    struct zl_health *h = start(0, NULL, echo_route, &calls);
    ZT_REQUIRE(h != NULL);
    char big[200]; /* body_max_bytes is 64 in start() */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct http_reply r;
    ZT_REQUIRE(http(zl_health_port(h), "POST", "/admin/echo", big, &r) == 0);
    ZT_EQ_INT(413, r.status);
    ZT_EQ_INT(0, calls);
    /* Exactly at the limit is fine. */
    big[64] = '\0';
    ZT_REQUIRE(http(zl_health_port(h), "POST", "/admin/echo", big, &r) == 0);
    ZT_EQ_INT(201, r.status);
    ZT_CHECK(strstr(r.body, "(64)") != NULL);
    zl_health_stop(h);
}

/* POST with an Authorization header (NULL = none); returns the status. */
static long post_with_auth(uint16_t port, const char *path, const char *auth,
                           struct http_reply *r)
{
    curl_init_once();
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
    struct curl_slist *hdrs = auth != NULL ? curl_slist_append(NULL, auth) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return r->status;
}

ZT_TEST(test_admin_paths_without_a_configured_token_are_refused_403)
{
    int calls = 0;
    struct zl_health *h = start_admin(echo_route, &calls, "");
    ZT_REQUIRE(h != NULL);
    struct http_reply r;
    ZT_EQ_INT(403, post_with_auth(zl_health_port(h), "/admin/echo", NULL, &r));
    ZT_CHECK(strstr(r.body, "ZL_ADMIN_TOKEN_FILE") != NULL);
    /* Not even a guessed token opens them. */
    ZT_EQ_INT(403, post_with_auth(zl_health_port(h), "/admin/echo",
                                  "Authorization: Bearer ", &r));
    ZT_EQ_INT(0, calls);
    /* The health endpoints stay open. */
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/health/live", NULL, &r) == 0);
    ZT_EQ_INT(200, r.status);
    zl_health_stop(h);
}

ZT_TEST(test_admin_paths_need_the_bearer_token_before_the_hook_runs)
{
    int calls = 0;
    struct zl_health *h = start_admin(echo_route, &calls, "worker-token-0123456789");
    ZT_REQUIRE(h != NULL);
    uint16_t port = zl_health_port(h);
    struct http_reply r;
    ZT_EQ_INT(401, post_with_auth(port, "/admin/echo", NULL, &r));
    ZT_EQ_INT(401, post_with_auth(port, "/admin/echo", "Authorization: Bearer worker-token-012345678", &r));
    ZT_EQ_INT(401, post_with_auth(port, "/admin/echo", "Authorization: worker-token-0123456789", &r));
    ZT_EQ_INT(0, calls);
    ZT_EQ_INT(201, post_with_auth(port, "/admin/echo", "Authorization: Bearer worker-token-0123456789", &r));
    ZT_EQ_INT(1, calls);
    zl_health_stop(h);
}

ZT_TEST(test_admin_paths_take_any_token_of_a_file_with_one_per_line)
{
    int calls = 0;
    struct zl_health *h = start_admin(echo_route, &calls,
                                      "alice-token-0123456789\r\n\n  bob-token-0123456789  \n");
    ZT_REQUIRE(h != NULL);
    uint16_t port = zl_health_port(h);
    struct http_reply r;
    ZT_EQ_INT(201, post_with_auth(port, "/admin/echo", "Authorization: Bearer alice-token-0123456789", &r));
    ZT_EQ_INT(201, post_with_auth(port, "/admin/echo", "Authorization: Bearer bob-token-0123456789", &r));
    /* Blank lines are no token; the blanks around one are not part of it. */
    ZT_EQ_INT(401, post_with_auth(port, "/admin/echo", "Authorization: Bearer ", &r));
    ZT_EQ_INT(401, post_with_auth(port, "/admin/echo", "Authorization: Bearer   bob-token-0123456789", &r));
    ZT_EQ_INT(2, calls);
    zl_health_stop(h);
}

/* Answers the caller's peer address. */
static int peer_route(void *opaque, const struct zl_health_request *req,
                      struct zl_health_response *resp)
{
    (void)opaque;
    char peer[ZL_HEALTH_PEER_SIZE];
    zl_health_request_peer(req, peer, sizeof(peer));
    resp->status = 200;
    resp->content_type = "text/plain";
    resp->body = strdup(peer);
    resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
    return 0;
}

ZT_TEST(test_route_hook_sees_the_tcp_peer_address)
{
    struct zl_health *h = start_admin(peer_route, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    struct http_reply r;
    ZT_EQ_INT(200, post_with_auth(zl_health_port(h), "/admin/peer", "X-Forwarded-For: 10.9.9.9", &r));
    ZT_EQ_STR("127.0.0.1", r.body);
    zl_health_stop(h);
}

ZT_TEST(test_bearer_check_and_token_fingerprint)
{
    ZT_CHECK(zl_health_bearer_ok("Bearer s3cret-token", "s3cret-token"));
    ZT_CHECK(!zl_health_bearer_ok("Bearer s3cret-toke", "s3cret-token"));
    ZT_CHECK(!zl_health_bearer_ok("bearer s3cret-token", "s3cret-token"));
    ZT_CHECK(!zl_health_bearer_ok(NULL, "s3cret-token"));
    ZT_CHECK(!zl_health_bearer_ok("Bearer ", ""));
    char fpr[ZL_HEALTH_TOKEN_FPR_SIZE];
    /* sha256("abc") = ba7816bf8f01cfea 414140de5dae2223... */
    zl_health_token_fingerprint("abc", fpr);
    ZT_EQ_STR("ba7816bf8f01cfea", fpr);
}

ZT_TEST(test_dependency_table_is_bounded_and_rejects_bad_names)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    char name[32];
    int failures = 0;
    for (int i = 0; i < ZL_HEALTH_DEPS_MAX; i++) {
        snprintf(name, sizeof(name), "dep-%d", i);
        if (zl_health_set_dep(h, name, true, NULL, NULL) != 0)
            failures++;
    }
    ZT_EQ_INT(0, failures);
    ZT_EQ_INT(-1, zl_health_set_dep(h, "one-too-many", false, NULL, NULL));
    ZT_CHECK(zl_health_ready(h)); /* the refused one did not count */
    /* Updating a known one still works when the table is full. */
    ZT_EQ_INT(0, zl_health_set_dep(h, "dep-3", false, NULL, "gone"));
    ZT_CHECK(!zl_health_ready(h));
    ZT_EQ_INT(-1, zl_health_set_dep(h, "", true, NULL, NULL));
    ZT_EQ_INT(-1, zl_health_set_dep(h, "has space", true, NULL, NULL));
    ZT_EQ_INT(-1, zl_health_set_dep(h, "quote\"", true, NULL, NULL));

    struct http_reply r;
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/health/ready", NULL, &r) == 0);
    ZT_EQ_INT(503, r.status);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    json_t *deps = json_object_get(j, "dependencies");
    ZT_EQ_INT(ZL_HEALTH_DEPS_MAX, json_object_size(deps));
    ZT_EQ_STR("down", jstr(deps, "dep-3", "state"));
    ZT_EQ_STR("up", jstr(deps, "dep-4", "state"));
    json_decref(j);
    zl_health_stop(h);
}

ZT_TEST(test_detail_that_is_not_utf8_still_gives_valid_json)
{
    struct zl_health *h = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(h != NULL);
    ZT_EQ_INT(0, zl_health_set_dep(h, "ipfs", false, "down",
                                   "bad byte \xff here \"quoted\""));
    struct http_reply r;
    ZT_REQUIRE(http(zl_health_port(h), "GET", "/health/ready", NULL, &r) == 0);
    json_t *j = body_json(&r);
    ZT_REQUIRE(j != NULL);
    ZT_EQ_STR("bad byte ? here \"quoted\"",
              jstr(json_object_get(j, "dependencies"), "ipfs", "detail"));
    json_decref(j);
    zl_health_stop(h);
}

ZT_TEST(test_start_fails_with_a_reason_for_bad_address_busy_port_and_no_stage)
{
    char err[ZL_ERRSTR_SIZE];
    struct zl_health *h = (struct zl_health *)&err; /* must be reset to NULL */
    struct zl_health_opts opts = {.stage = "verify", .bind_addr = "localhost"};
    ZT_EQ_INT(-1, zl_health_start(&h, &opts, err, sizeof(err)));
    ZT_CHECK(h == NULL);
    ZT_CHECK(strstr(err, "\"localhost\" is not an IPv4 or IPv6 literal") != NULL);

    struct zl_health *first = start(0, NULL, NULL, NULL);
    ZT_REQUIRE(first != NULL);
    opts = (struct zl_health_opts){.stage = "verify",
                                   .port = zl_health_port(first)};
    ZT_EQ_INT(-1, zl_health_start(&h, &opts, err, sizeof(err)));
    ZT_CHECK(h == NULL);
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1 port %u",
             (unsigned)zl_health_port(first));
    ZT_CHECK(strstr(err, where) != NULL);
    zl_health_stop(first);

    opts = (struct zl_health_opts){.stage = NULL};
    ZT_EQ_INT(-1, zl_health_start(&h, &opts, err, sizeof(err)));
    ZT_CHECK(strstr(err, "stage") != NULL);
}

ZT_TEST(test_ipv6_loopback_bind_works)
{
    struct zl_health_opts opts = {.stage = "verify", .bind_addr = "::1"};
    char err[ZL_ERRSTR_SIZE];
    struct zl_health *h = NULL;
    if (zl_health_start(&h, &opts, err, sizeof(err)) != 0) {
        /* Hosts without IPv6 cannot bind ::1; say so rather than fail. */
        fprintf(stderr, "  skipped: %s\n", err);
        ZT_CHECK(strstr(err, "::1") != NULL);
        return;
    }
    ZT_CHECK(zl_health_port(h) != 0);
    zl_health_stop(h);
}

ZT_MAIN(test_port_zero_listens_on_an_ephemeral_port_it_reports,
        test_ready_is_200_with_every_dependency_in_the_body_when_all_ok,
        test_ready_flips_to_503_when_a_dependency_fails_and_back_when_it_recovers,
        test_pause_makes_ready_503_with_its_reason_and_resume_restores_200,
        test_draining_makes_ready_503_for_good,
        test_live_fails_when_the_heartbeat_is_older_than_the_timeout,
        test_metrics_serves_the_registry_as_prometheus_text,
        test_metrics_without_a_registry_is_404,
        test_unknown_path_is_404_json,
        test_methods_other_than_get_are_405_with_allow_header,
        test_route_hook_gets_other_paths_with_method_headers_args_and_body,
        test_route_hook_body_over_the_limit_is_413_without_calling_the_hook,
        test_admin_paths_without_a_configured_token_are_refused_403,
        test_admin_paths_need_the_bearer_token_before_the_hook_runs,
        test_admin_paths_take_any_token_of_a_file_with_one_per_line,
        test_route_hook_sees_the_tcp_peer_address,
        test_bearer_check_and_token_fingerprint,
        test_dependency_table_is_bounded_and_rejects_bad_names,
        test_detail_that_is_not_utf8_still_gives_valid_json,
        test_start_fails_with_a_reason_for_bad_address_busy_port_and_no_stage,
        test_ipv6_loopback_bind_works)
