/* test_rpc_client.c: the JSON-RPC client against tiny in-process HTTP
 * servers that misbehave on purpose (429, 500, garbage, stalls, -32005),
 * proving failover, hedging, batch, quorum and outage classification without
 * any external service. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc.h"
#include "zltest.h"

enum srv_mode { SRV_OK, SRV_429, SRV_500, SRV_GARBAGE, SRV_STALL, SRV_32005, SRV_REVERT, SRV_OTHER_RESULT, SRV_BIG_INT };

/* Requests a test server serves before it stops. */
#define SRV_REQUESTS_MAX 1000
/* Bytes of one request we read. */
#define SRV_REQUEST_BYTES_MAX 65536
/* How long a stalling server sleeps before answering. */
#define SRV_STALL_MS 1500

struct srv {
    int fd;
    int port;
    enum srv_mode mode;
    atomic_int hits;
    atomic_int stop;
    pthread_t th;
};

static void srv_reply(int c, int status, const char *extra_headers, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n", status,
                     strlen(body), extra_headers);
    if (send(c, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(c, body, strlen(body), MSG_NOSIGNAL) < 0)
        return;
}

/* Answers with result "0x10" for every call (an array for a batch). */
static void srv_answer(struct srv *s, int c, const char *req_body)
{
    char body[8192];
    switch (s->mode) {
    case SRV_429:
        srv_reply(c, 429, "Retry-After: 1\r\n", "{}");
        return;
    case SRV_500:
        srv_reply(c, 500, "", "oops");
        return;
    case SRV_GARBAGE:
        srv_reply(c, 200, "", "<html>not json");
        return;
    case SRV_STALL:
        usleep(SRV_STALL_MS * 1000);
        break;
    case SRV_32005:
        srv_reply(c, 200, "", "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32005,\"message\":\"limit exceeded\"}}");
        return;
    case SRV_REVERT:
        srv_reply(c, 200, "",
                  "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":3,\"message\":\"execution reverted\",\"data\":\"0x08c379a0\"}}");
        return;
    case SRV_BIG_INT: /* a Solana node's getAccountInfo: rentEpoch is u64::MAX */
        srv_reply(c, 200, "",
                  "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"context\":{\"slot\":7},\"value\":{\"lamports\":1,"
                  "\"rentEpoch\":18446744073709551615,\"owner\":\"say \\\"18446744073709551615\\\"\"}}}");
        return;
    default:
        break;
    }
    const char *result = s->mode == SRV_OTHER_RESULT ? "\"0x11\"" : "\"0x10\"";
    if (req_body[0] == '[') {
        /* batch: ids are consecutive from the first "id": */
        const char *p = strstr(req_body, "\"id\":");
        long first = p != NULL ? strtol(p + 5, NULL, 10) : 0;
        int count = 0;
        for (const char *q = req_body; (q = strstr(q, "\"method\"")) != NULL; q++)
            count++;
        size_t off = 0;
        off += (size_t)snprintf(body + off, sizeof(body) - off, "[");
        for (int i = count - 1; i >= 0; i--) /* reversed: order must not matter */
            off += (size_t)snprintf(body + off, sizeof(body) - off, "%s{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":%s}",
                                    i == count - 1 ? "" : ",", first + i, result);
        snprintf(body + off, sizeof(body) - off, "]");
    } else {
        snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":%s}", result);
    }
    srv_reply(c, 200, "", body);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    char *buf = malloc(SRV_REQUEST_BYTES_MAX);
    while (!atomic_load(&s->stop)) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        /* keep-alive: serve requests on this connection until it closes */
        for (int served = 0; served < SRV_REQUESTS_MAX; served++) {
            size_t len = 0;
            char *hdr_end = NULL;
            while (hdr_end == NULL && len < SRV_REQUEST_BYTES_MAX - 1) {
                ssize_t k = read(c, buf + len, SRV_REQUEST_BYTES_MAX - 1 - len);
                if (k <= 0)
                    goto next_conn;
                len += (size_t)k;
                buf[len] = '\0';
                hdr_end = strstr(buf, "\r\n\r\n");
            }
            if (hdr_end == NULL)
                goto next_conn;
            const char *cl = strstr(buf, "Content-Length:");
            long want = cl != NULL ? strtol(cl + 15, NULL, 10) : 0;
            size_t body_off = (size_t)(hdr_end + 4 - buf);
            while (len - body_off < (size_t)want && len < SRV_REQUEST_BYTES_MAX - 1) {
                ssize_t k = read(c, buf + len, SRV_REQUEST_BYTES_MAX - 1 - len);
                if (k <= 0)
                    goto next_conn;
                len += (size_t)k;
                buf[len] = '\0';
            }
            atomic_fetch_add(&s->hits, 1);
            srv_answer(s, c, buf + body_off);
        }
    next_conn:
        close(c);
    }
    free(buf);
    return NULL;
}

static int srv_start(struct srv *s, enum srv_mode mode)
{
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 16) != 0)
        return -1;
    socklen_t al = sizeof(a);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, 1);
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->th, NULL);
}

/* A loopback port nobody listens on: bound, never listened, then closed. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

static void opts_init(struct zl_rpc_opts *o, const char *urls)
{
    memset(o, 0, sizeof(*o));
    o->urls = urls;
    o->timeout_ms = 800;
    o->hedge_after_ms = 0;
    o->quorum = 1;
    o->breaker_failure_ratio = 0.5;
    o->breaker_sampling_ms = 10000;
    o->breaker_min_throughput = 2;
    o->breaker_break_ms = 5000;
    o->name = "rpc";
}

static zl_class call_block_number(struct zl_rpc *r, uint64_t *v)
{
    char err[ZL_ERRSTR_SIZE];
    json_t *res = NULL;
    json_t *params = json_array();
    zl_class c = zl_rpc_call(r, "eth_blockNumber", params, &res, NULL, err, sizeof(err));
    json_decref(params);
    if (c == ZL_OK && zl_rpc_parse_quantity(res, v) != 0)
        c = ZL_TRANSIENT;
    json_decref(res);
    return c;
}

ZT_TEST(test_rpc_parse_quantity_accepts_hex_and_refuses_the_rest)
{
    uint64_t v = 0;
    json_t *j = json_string("0x1a");
    ZT_EQ_INT(0, zl_rpc_parse_quantity(j, &v));
    ZT_EQ_INT(26, (long long)v);
    json_decref(j);
    j = json_string("0xffffffffffffffff");
    ZT_EQ_INT(0, zl_rpc_parse_quantity(j, &v));
    ZT_CHECK(v == UINT64_MAX);
    json_decref(j);
    const char *bad[] = {"0x", "1a", "0x1g", "0x10000000000000000", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = json_string(bad[i]);
        ZT_EQ_INT(-1, zl_rpc_parse_quantity(j, &v));
        json_decref(j);
    }
    j = json_integer(5);
    ZT_EQ_INT(-1, zl_rpc_parse_quantity(j, &v));
    json_decref(j);
}

ZT_TEST(test_rpc_new_refuses_bad_urls_and_quorum)
{
    struct zl_rpc_opts o;
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    opts_init(&o, "ftp://x");
    ZT_EQ_INT(-1, zl_rpc_new(&r, &o, err, sizeof(err)));
    ZT_CHECK(strstr(err, "http") != NULL);
    opts_init(&o, "");
    ZT_EQ_INT(-1, zl_rpc_new(&r, &o, err, sizeof(err)));
    opts_init(&o, "http://127.0.0.1:1,http://127.0.0.1:2");
    o.quorum = 3;
    ZT_EQ_INT(-1, zl_rpc_new(&r, &o, err, sizeof(err)));
    ZT_CHECK(strstr(err, "quorum") != NULL);
    ZT_CHECK(r == NULL);
}

/* Plain http to a host that is not this machine is refused unless allowed:
 * the answers decide what is credited, and without TLS anyone on the path
 * could change them. The message names the endpoint and the setting. */
ZT_TEST(test_rpc_new_refuses_plain_http_off_loopback_unless_allowed)
{
    struct zl_rpc_opts o;
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    const char *refused[] = {"http://rpc.example.com:8545", "http://10.0.0.7:8545/key123", "http://anvil:8545",
                             "http://127.0.0.1.evil.example:8545", "http://[::2]:8545", "http://localhostx:1"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        opts_init(&o, refused[i]);
        ZT_EQ_INT(-1, zl_rpc_new(&r, &o, err, sizeof(err)));
        ZT_CHECK(r == NULL);
        ZT_CHECK(strstr(err, "ZL_RPC_ALLOW_HTTP") != NULL);
    }
    opts_init(&o, "https://127.0.0.1:1,http://rpc.example.com:8545/secretkey");
    ZT_EQ_INT(-1, zl_rpc_new(&r, &o, err, sizeof(err)));
    ZT_CHECK(strstr(err, "http://rpc.example.com:8545") != NULL);
    ZT_CHECK(strstr(err, "secretkey") == NULL); /* the label only: a path may hold an API key */
    /* allowed explicitly */
    opts_init(&o, "http://rpc.example.com:8545,http://anvil:8545");
    o.allow_http = true;
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    zl_rpc_free(r);
    r = NULL;
    /* loopback and https need no allowance */
    const char *fine[] = {"http://127.0.0.1:8545", "http://127.4.5.6", "http://localhost:8545/x",
                          "http://LOCALHOST", "http://[::1]:8545", "https://rpc.example.com/key",
                          "http://user:pw@127.0.0.1:8545"};
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        opts_init(&o, fine[i]);
        ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
        zl_rpc_free(r);
        r = NULL;
    }
}

ZT_TEST(test_rpc_fails_over_past_dead_429_500_garbage_and_32005)
{
    struct srv s429, s500, sgar, s32005, sok;
    ZT_REQUIRE(srv_start(&s429, SRV_429) == 0);
    ZT_REQUIRE(srv_start(&s500, SRV_500) == 0);
    ZT_REQUIRE(srv_start(&sgar, SRV_GARBAGE) == 0);
    ZT_REQUIRE(srv_start(&s32005, SRV_32005) == 0);
    ZT_REQUIRE(srv_start(&sok, SRV_OK) == 0);
    char urls[512];
    snprintf(urls, sizeof(urls),
             "http://127.0.0.1:%d/key/secret,http://127.0.0.1:%d,http://127.0.0.1:%d,http://127.0.0.1:%d,"
             "http://127.0.0.1:%d,http://127.0.0.1:%d",
             dead_port(), s429.port, s500.port, sgar.port, s32005.port, sok.port);
    struct zl_rpc_opts o;
    opts_init(&o, urls);
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    for (int i = 0; i < 20; i++) {
        uint64_t v = 0;
        ZT_EQ_INT(ZL_OK, call_block_number(r, &v));
        ZT_EQ_INT(16, (long long)v);
    }
    /* ranking: after the first calls the good endpoint is asked first, so
     * the bad ones see few of the 20 calls */
    ZT_CHECK(atomic_load(&sok.hits) == 20);
    ZT_CHECK(atomic_load(&s500.hits) < 10);
    ZT_CHECK(zl_rpc_any_healthy(r));
    zl_rpc_free(r);
    srv_stop(&s429);
    srv_stop(&s500);
    srv_stop(&sgar);
    srv_stop(&s32005);
    srv_stop(&sok);
}

ZT_TEST(test_rpc_outage_only_when_every_endpoint_is_down)
{
    char urls[256];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://127.0.0.1:%d", dead_port(), dead_port());
    struct zl_rpc_opts o;
    opts_init(&o, urls);
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    uint64_t v;
    ZT_EQ_INT(ZL_OUTAGE, call_block_number(r, &v));
    ZT_EQ_INT(ZL_OUTAGE, call_block_number(r, &v));
    /* the breakers are open now (2 failures >= min throughput): still outage */
    ZT_EQ_INT(ZL_OUTAGE, call_block_number(r, &v));
    ZT_CHECK(!zl_rpc_any_healthy(r));
    zl_rpc_reset_breakers(r);
    ZT_CHECK(zl_rpc_any_healthy(r));
    zl_rpc_free(r);

    /* garbage from the only live endpoint is not an outage: transient */
    struct srv sgar;
    ZT_REQUIRE(srv_start(&sgar, SRV_GARBAGE) == 0);
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://127.0.0.1:%d", dead_port(), sgar.port);
    opts_init(&o, urls);
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    ZT_EQ_INT(ZL_TRANSIENT, call_block_number(r, &v));
    /* ...and not an error answer either: answered stays false */
    struct zl_rpc_error re;
    memset(&re, 0xff, sizeof(re));
    json_t *res = NULL;
    ZT_EQ_INT(ZL_TRANSIENT, zl_rpc_call(r, "eth_blockNumber", NULL, &res, &re, err, sizeof(err)));
    ZT_CHECK(!re.answered);
    zl_rpc_free(r);
    srv_stop(&sgar);
}

/* An endpoint's error answer is transient, decided in rpc.c: the caller
 * reads *rpc_err (answered) to give it a meaning, never rewrites the class. */
ZT_TEST(test_rpc_revert_is_transient_with_the_error_filled)
{
    struct srv s;
    ZT_REQUIRE(srv_start(&s, SRV_REVERT) == 0);
    char urls[128];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", s.port);
    struct zl_rpc_opts o;
    opts_init(&o, urls);
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    struct zl_rpc_error re;
    json_t *res = NULL;
    ZT_EQ_INT(ZL_TRANSIENT, zl_rpc_call(r, "eth_call", NULL, &res, &re, err, sizeof(err)));
    ZT_CHECK(re.answered);
    ZT_CHECK(res == NULL);
    ZT_EQ_INT(3, re.code);
    ZT_EQ_STR("execution reverted", re.message);
    ZT_EQ_STR("0x08c379a0", re.data);
    zl_rpc_free(r);
    srv_stop(&s);
}

ZT_TEST(test_rpc_hedges_past_a_stalling_endpoint)
{
    struct srv stall, ok;
    ZT_REQUIRE(srv_start(&stall, SRV_STALL) == 0);
    ZT_REQUIRE(srv_start(&ok, SRV_OK) == 0);
    char urls[256];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://127.0.0.1:%d", stall.port, ok.port);
    struct zl_rpc_opts o;
    opts_init(&o, urls);
    o.timeout_ms = 5000;
    o.hedge_after_ms = 100;
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    int64_t t0 = zl_now_ms();
    uint64_t v = 0;
    ZT_EQ_INT(ZL_OK, call_block_number(r, &v));
    int64_t took = zl_now_ms() - t0;
    ZT_CHECK(took < SRV_STALL_MS); /* did not wait for the stalled endpoint */
    ZT_EQ_INT(1, atomic_load(&ok.hits));
    zl_rpc_free(r);
    srv_stop(&stall);
    srv_stop(&ok);
}

ZT_TEST(test_rpc_batch_matches_results_by_id)
{
    struct srv s;
    ZT_REQUIRE(srv_start(&s, SRV_OK) == 0);
    char urls[128];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", s.port);
    struct zl_rpc_opts o;
    opts_init(&o, urls);
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    const char *methods[3] = {"eth_blockNumber", "eth_chainId", "eth_gasPrice"};
    json_t *params[3] = {NULL, NULL, NULL};
    json_t *results[3];
    struct zl_rpc_error errs[3];
    ZT_EQ_INT(ZL_OK, zl_rpc_batch(r, 3, methods, params, results, errs, err, sizeof(err)));
    for (int i = 0; i < 3; i++) {
        ZT_CHECK(results[i] != NULL && strcmp(json_string_value(results[i]), "0x10") == 0);
        json_decref(results[i]);
    }
    ZT_EQ_INT(1, atomic_load(&s.hits)); /* one HTTP request */
    zl_rpc_free(r);
    srv_stop(&s);
}

/* A client over urls that needs 2 equal answers; NULL when it cannot be made. */
static struct zl_rpc *quorum2_client(const char *urls)
{
    struct zl_rpc_opts o;
    opts_init(&o, urls);
    o.quorum = 2;
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    return zl_rpc_new(&r, &o, err, sizeof(err)) == 0 ? r : NULL;
}

/* Three endpoints for the quorum tests: a and c agree, b answers otherwise. */
static int start_quorum_trio(struct srv *a, struct srv *b, struct srv *c, char *urls, size_t urls_size)
{
    if (srv_start(a, SRV_OK) != 0 || srv_start(b, SRV_OTHER_RESULT) != 0 || srv_start(c, SRV_OK) != 0)
        return -1;
    snprintf(urls, urls_size, "http://127.0.0.1:%d,http://127.0.0.1:%d,http://127.0.0.1:%d", a->port, b->port,
             c->port);
    return 0;
}

ZT_TEST(test_rpc_quorum_needs_k_equal_answers)
{
    struct srv a, b, c;
    char urls[256];
    ZT_REQUIRE(start_quorum_trio(&a, &b, &c, urls, sizeof(urls)) == 0);
    struct zl_rpc *r = quorum2_client(urls);
    ZT_REQUIRE(r != NULL);
    char err[ZL_ERRSTR_SIZE];
    json_t *res = NULL;
    ZT_EQ_INT(ZL_OK, zl_rpc_call_quorum(r, "eth_blockNumber", NULL, &res, NULL, err, sizeof(err)));
    ZT_CHECK(res != NULL && strcmp(json_string_value(res), "0x10") == 0);
    json_decref(res);
    zl_rpc_free(r);

    /* two endpoints that disagree: no quorum, transient */
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://127.0.0.1:%d", a.port, b.port);
    r = quorum2_client(urls);
    ZT_REQUIRE(r != NULL);
    res = NULL;
    ZT_EQ_INT(ZL_TRANSIENT, zl_rpc_call_quorum(r, "eth_blockNumber", NULL, &res, NULL, err, sizeof(err)));
    ZT_CHECK(res == NULL);
    ZT_CHECK(strstr(err, "quorum") != NULL);
    zl_rpc_free(r);
    srv_stop(&a);
    srv_stop(&b);
    srv_stop(&c);
}

ZT_TEST(test_rpc_batch_quorum_decides_each_call_by_k_equal_answers)
{
    struct srv a, b, c;
    char urls[256];
    ZT_REQUIRE(start_quorum_trio(&a, &b, &c, urls, sizeof(urls)) == 0);
    struct zl_rpc *r = quorum2_client(urls);
    ZT_REQUIRE(r != NULL);
    char err[ZL_ERRSTR_SIZE];
    const char *methods[3] = {"eth_blockNumber", "eth_chainId", "eth_gasPrice"};
    json_t *params[3] = {NULL, NULL, NULL};
    json_t *results[3];
    struct zl_rpc_error errs[3];
    ZT_EQ_INT(ZL_OK, zl_rpc_batch_quorum(r, 3, methods, params, results, errs, err, sizeof(err)));
    for (int i = 0; i < 3; i++) {
        ZT_CHECK(results[i] != NULL && strcmp(json_string_value(results[i]), "0x10") == 0);
        json_decref(results[i]);
    }
    /* one HTTP request per endpoint asked, never one per call */
    ZT_EQ_INT(1, atomic_load(&a.hits));
    ZT_EQ_INT(1, atomic_load(&c.hits));
    ZT_CHECK(atomic_load(&b.hits) <= 1);
    zl_rpc_free(r);

    /* two endpoints that disagree: every call short of a quorum, named so */
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://127.0.0.1:%d", a.port, b.port);
    r = quorum2_client(urls);
    ZT_REQUIRE(r != NULL);
    ZT_EQ_INT(ZL_OK, zl_rpc_batch_quorum(r, 3, methods, params, results, errs, err, sizeof(err)));
    for (int i = 0; i < 3; i++) {
        ZT_CHECK(results[i] == NULL);
        ZT_CHECK(strstr(errs[i].message, "quorum") != NULL);
        ZT_EQ_INT(0, (int)errs[i].code);
    }
    zl_rpc_free(r);
    srv_stop(&a);
    srv_stop(&b);
    srv_stop(&c);
}

/* Error answers are not votes: with quorum 2 and two reverting endpoints the
 * call fails transient, and the answer is there for the caller to read. */
ZT_TEST(test_rpc_quorum_of_error_answers_is_transient_with_the_answer)
{
    struct srv a, b;
    ZT_REQUIRE(srv_start(&a, SRV_REVERT) == 0);
    ZT_REQUIRE(srv_start(&b, SRV_REVERT) == 0);
    char urls[256];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://127.0.0.1:%d", a.port, b.port);
    struct zl_rpc *r = quorum2_client(urls);
    ZT_REQUIRE(r != NULL);
    char err[ZL_ERRSTR_SIZE];
    struct zl_rpc_error re;
    json_t *res = NULL;
    ZT_EQ_INT(ZL_TRANSIENT, zl_rpc_call_quorum(r, "eth_call", NULL, &res, &re, err, sizeof(err)));
    ZT_CHECK(res == NULL);
    ZT_CHECK(re.answered);
    ZT_EQ_STR("execution reverted", re.message);
    zl_rpc_free(r);
    srv_stop(&a);
    srv_stop(&b);
}

/* Integers beyond an int64 become strings, outside strings only; the rest
 * of the text is unchanged. */
ZT_TEST(test_rpc_quote_big_ints_quotes_only_integers_beyond_int64)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{\"a\":18446744073709551615}", "{\"a\":\"18446744073709551615\"}"},
        {"[9223372036854775807,9223372036854775808]", "[9223372036854775807,\"9223372036854775808\"]"},
        {"[-9223372036854775808,-9223372036854775809]", "[-9223372036854775808,\"-9223372036854775809\"]"},
        {"[1e400,123456789012345678901.5]", "[1e400,123456789012345678901.5]"},
        {"{\"s\":\"99999999999999999999 \\\" 99999999999999999999\"}",
         "{\"s\":\"99999999999999999999 \\\" 99999999999999999999\"}"},
        {"[0,-1,42]", "[0,-1,42]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        char *got = zl_rpc_quote_big_ints(cases[i].in, strlen(cases[i].in), &n);
        ZT_REQUIRE(got != NULL);
        ZT_EQ_STR(cases[i].want, got);
        ZT_EQ_INT((long long)strlen(cases[i].want), (long long)n);
        free(got);
    }
}

/* A healthy Solana node's answer with rentEpoch = u64::MAX is an answer,
 * not garbage: the client reads it (the big integer as a string) and the
 * endpoint stays healthy. */
ZT_TEST(test_rpc_reads_an_answer_with_an_integer_beyond_int64)
{
    struct srv s;
    ZT_REQUIRE(srv_start(&s, SRV_BIG_INT) == 0);
    char urls[64];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d", s.port);
    struct zl_rpc_opts o;
    opts_init(&o, urls);
    struct zl_rpc *r = NULL;
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_rpc_new(&r, &o, err, sizeof(err)) == 0);
    json_t *res = NULL;
    json_t *params = json_array();
    ZT_EQ_INT(ZL_OK, zl_rpc_call(r, "getAccountInfo", params, &res, NULL, err, sizeof(err)));
    json_t *v = json_object_get(res, "value");
    ZT_EQ_STR("18446744073709551615", json_string_value(json_object_get(v, "rentEpoch")));
    ZT_EQ_STR("say \"18446744073709551615\"", json_string_value(json_object_get(v, "owner")));
    ZT_EQ_INT(1, (long long)json_integer_value(json_object_get(v, "lamports")));
    json_decref(res);
    json_decref(params);
    zl_rpc_free(r);
    srv_stop(&s);
}

ZT_MAIN(test_rpc_parse_quantity_accepts_hex_and_refuses_the_rest, test_rpc_new_refuses_bad_urls_and_quorum,
        test_rpc_new_refuses_plain_http_off_loopback_unless_allowed,
        test_rpc_fails_over_past_dead_429_500_garbage_and_32005, test_rpc_outage_only_when_every_endpoint_is_down,
        test_rpc_revert_is_transient_with_the_error_filled, test_rpc_hedges_past_a_stalling_endpoint,
        test_rpc_batch_matches_results_by_id, test_rpc_quorum_needs_k_equal_answers,
        test_rpc_batch_quorum_decides_each_call_by_k_equal_answers,
        test_rpc_quorum_of_error_answers_is_transient_with_the_answer,
        test_rpc_quote_big_ints_quotes_only_integers_beyond_int64, test_rpc_reads_an_answer_with_an_integer_beyond_int64)
