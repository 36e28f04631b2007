/* test_ipfs_classes.c: the class common/ipfs gives each provider and gateway
 * outcome (ipfs.h), decided at the source, against one-answer HTTP servers
 * in this process: a provider down is an outage, an error answer or a busy
 * provider is transient, another CID is permanent, and the aggregate over
 * several providers follows pin_k. No external service needed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cid.h"
#include "ipfs.h"
#include "zltest.h"

/* Bytes of one request a canned server reads (a document is ~600 bytes). */
#define CANNED_REQUEST_BYTES_MAX 65536
/* How often a canned server looks at its stop flag. */
#define CANNED_POLL_MS 50

static const char DOC[] = "{\"name\":\"zeroloss deposit receipt\"}";
static const char DOC_NAME[] = "doc.json";

/* A server that gives every request the same answer, then closes. */
struct canned {
    int fd;
    int port;
    int status;
    char body[512];
    atomic_int stop;
    pthread_t th;
};

/* Reads the request up to its end (headers, then Content-Length bytes), so
 * the client never sees its upload cut off. */
static void read_request(int c)
{
    char *buf = malloc(CANNED_REQUEST_BYTES_MAX + 1);
    if (buf == NULL)
        return;
    size_t got = 0;
    long want = -1;
    while (got < CANNED_REQUEST_BYTES_MAX) {
        ssize_t n = recv(c, buf + got, CANNED_REQUEST_BYTES_MAX - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        if (want < 0) {
            const char *cl = strstr(buf, "Content-Length:");
            want = (long)(end + 4 - buf) + (cl != NULL && cl < end ? strtol(cl + 15, NULL, 10) : 0);
        }
        if ((long)got >= want)
            break;
    }
    free(buf);
}

static void *canned_serve(void *arg)
{
    struct canned *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, CANNED_POLL_MS) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        read_request(c);
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         s->status, strlen(s->body));
        if (send(c, head, (size_t)n, MSG_NOSIGNAL) >= 0)
            (void)send(c, s->body, strlen(s->body), MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

/* A listening socket on a free loopback port; its port in *port. */
static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void canned_start(struct canned *s, int status, const char *body)
{
    memset(s, 0, sizeof(*s));
    s->status = status;
    snprintf(s->body, sizeof(s->body), "%s", body);
    s->fd = listen_any(&s->port);
    ZT_REQUIRE(s->fd >= 0);
    ZT_REQUIRE(pthread_create(&s->th, NULL, canned_serve, s) == 0);
}

static void canned_stop(struct canned *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->fd);
}

/* A port nothing listens on: connections are refused. */
static int dead_port(void)
{
    int port = 0;
    int fd = listen_any(&port);
    if (fd < 0)
        abort(); /* no loopback socket: nothing here can run */
    close(fd);
    return port;
}

static void doc_cid(char *cid, size_t cid_size)
{
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_cid_raw_v1(DOC, strlen(DOC), cid, cid_size, err, sizeof(err)) == 0);
}

/* Kubo's add answer for DOC_NAME under cid. */
static void kubo_answer(char *out, size_t out_size, const char *cid)
{
    snprintf(out, out_size, "{\"Name\":\"%s\",\"Hash\":\"%s\",\"Size\":\"%zu\"}\n", DOC_NAME, cid, strlen(DOC));
}

static struct zl_ipfs *client(const char *providers, int pin_k, const char *gateways)
{
    struct zl_ipfs_opts o = {
        .providers = providers,
        .gateways = gateways,
        .pin_k = pin_k,
        .verify_retrieval = gateways[0] != '\0',
        .timeout_ms = 3000,
        .connect_timeout_ms = 1000,
        .gateway_timeout_ms = 3000,
        .psa_poll_timeout_ms = 1000,
        .psa_poll_interval_ms = 10,
        .stage = "test",
    };
    zl_breaker_opts_default(&o.breaker);
    struct zl_ipfs *c = NULL;
    char err[ZL_ERRSTR_SIZE];
    if (zl_ipfs_new(&c, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl_ipfs_new: %s\n", err);
        abort();
    }
    return c;
}

/* The class zl_ipfs_pin gives DOC with one Kubo provider answering status
 * and body. */
static zl_class pin_against(int status, const char *body)
{
    struct canned s;
    canned_start(&s, status, body);
    char providers[64], cid[ZL_CID_SIZE], err[ZL_ERRSTR_SIZE];
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d", s.port);
    struct zl_ipfs *c = client(providers, 1, "");
    doc_cid(cid, sizeof(cid));
    zl_class got = zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err));
    zl_ipfs_free(c);
    canned_stop(&s);
    return got;
}

ZT_TEST(test_a_provider_answering_the_content_cid_pins)
{
    char cid[ZL_CID_SIZE], answer[512];
    doc_cid(cid, sizeof(cid));
    kubo_answer(answer, sizeof(answer), cid);
    ZT_EQ_INT(ZL_OK, pin_against(200, answer));
}

ZT_TEST(test_another_cid_is_permanent)
{
    char answer[512];
    kubo_answer(answer, sizeof(answer), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    ZT_EQ_INT(ZL_PERMANENT, pin_against(200, answer));
}

ZT_TEST(test_a_provider_down_is_an_outage)
{
    ZT_EQ_INT(ZL_OUTAGE, pin_against(500, "internal error"));
    ZT_EQ_INT(ZL_OUTAGE, pin_against(401, "{\"error\":\"bad token\"}"));
    char providers[64], cid[ZL_CID_SIZE], err[ZL_ERRSTR_SIZE];
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d", dead_port());
    struct zl_ipfs *c = client(providers, 1, "");
    doc_cid(cid, sizeof(cid));
    ZT_EQ_INT(ZL_OUTAGE, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);
}

ZT_TEST(test_an_error_answer_or_a_busy_provider_is_transient)
{
    ZT_EQ_INT(ZL_TRANSIENT, pin_against(400, "{\"Message\":\"bad request\"}"));
    ZT_EQ_INT(ZL_TRANSIENT, pin_against(429, "{}"));
    ZT_EQ_INT(ZL_TRANSIENT, pin_against(200, "<html>not an add answer"));
}

ZT_TEST(test_the_aggregate_is_an_outage_only_when_too_few_providers_are_up)
{
    char cid[ZL_CID_SIZE], answer[512], providers[128], err[ZL_ERRSTR_SIZE];
    doc_cid(cid, sizeof(cid));
    kubo_answer(answer, sizeof(answer), cid);
    struct canned ok, bad;
    canned_start(&ok, 200, answer);
    canned_start(&bad, 400, "{\"Message\":\"bad request\"}");
    int dead = dead_port();

    /* one down, one answering with an error, pin_k 1: a retry may pin it */
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d,kubo=http://127.0.0.1:%d", dead, bad.port);
    struct zl_ipfs *c = client(providers, 1, "");
    ZT_EQ_INT(ZL_TRANSIENT, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);

    /* one pins, one down, pin_k 2: fewer than pin_k are up */
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d,kubo=http://127.0.0.1:%d", ok.port, dead);
    c = client(providers, 2, "");
    ZT_EQ_INT(ZL_OUTAGE, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);

    /* the first down, the second pins, pin_k 1: pinned */
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d,kubo=http://127.0.0.1:%d", dead, ok.port);
    c = client(providers, 1, "");
    ZT_EQ_INT(ZL_OK, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);
    canned_stop(&ok);
    canned_stop(&bad);
}

ZT_TEST(test_gateways_down_are_an_outage_and_wrong_bytes_are_transient)
{
    char cid[ZL_CID_SIZE], answer[512], gateways[128], err[ZL_ERRSTR_SIZE];
    doc_cid(cid, sizeof(cid));
    kubo_answer(answer, sizeof(answer), cid);
    struct canned wrong;
    canned_start(&wrong, 200, "other bytes");
    int dead = dead_port();

    snprintf(gateways, sizeof(gateways), "http://127.0.0.1:%d", dead);
    struct zl_ipfs *c = client("kubo=http://127.0.0.1:1", 1, gateways);
    ZT_EQ_INT(ZL_OUTAGE, zl_ipfs_verify(c, DOC, strlen(DOC), cid, err, sizeof(err)));
    zl_ipfs_free(c);

    /* a gateway serving other bytes is the gateway's fault, not the pin's */
    snprintf(gateways, sizeof(gateways), "http://127.0.0.1:%d,http://127.0.0.1:%d", dead, wrong.port);
    c = client("kubo=http://127.0.0.1:1", 1, gateways);
    ZT_EQ_INT(ZL_TRANSIENT, zl_ipfs_verify(c, DOC, strlen(DOC), cid, err, sizeof(err)));
    zl_ipfs_free(c);
    canned_stop(&wrong);
}

ZT_MAIN(test_a_provider_answering_the_content_cid_pins, test_another_cid_is_permanent,
        test_a_provider_down_is_an_outage, test_an_error_answer_or_a_busy_provider_is_transient,
        test_the_aggregate_is_an_outage_only_when_too_few_providers_are_up,
        test_gateways_down_are_an_outage_and_wrong_bytes_are_transient)
