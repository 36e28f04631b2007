/* canned_http.h: TEST CODE. A one-thread HTTP server on a free loopback
 * port that answers every request with a canned status and body, or with
 * what a callback makes of the request's body, then closes the connection.
 * For unit tests of clients (ipfs, chain reads) that need no real service.
 * Header-only (static inline): each test program includes it once.
 *
 * Failure: a test that cannot listen on loopback aborts (nothing can run).
 */
#ifndef ZL_TEST_CANNED_HTTP_H
#define ZL_TEST_CANNED_HTTP_H

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

/* Bytes of one request a canned server reads (a document is ~600 bytes, a
 * batch of 100 receipt calls ~10 KiB). */
#define CANNED_REQUEST_BYTES_MAX 65536
/* Bytes of one answer. */
#define CANNED_BODY_BYTES_MAX 65536
/* How often a canned server looks at its stop flag. */
#define CANNED_POLL_MS 50

/* Makes the answer to one request body: sets *status and writes body. */
typedef void (*canned_answer_fn)(void *opaque, const char *request_body, int *status, char *body, size_t body_size);

struct canned {
    int fd;
    int port;
    int status;                 /* the answer when answer is NULL */
    char body[512];
    canned_answer_fn answer;    /* optional */
    void *opaque;
    atomic_int requests;        /* served so far */
    atomic_int stop;
    pthread_t th;
};

/* Reads the request up to its end (headers, then Content-Length bytes), so
 * the client never sees its upload cut off. Returns the body (malloc'd,
 * NUL-terminated; "" when there is none), or NULL when out of memory. */
static inline char *canned_read_request(int c)
{
    char *buf = malloc(CANNED_REQUEST_BYTES_MAX + 1);
    if (buf == NULL)
        return NULL;
    size_t got = 0;
    long want = -1;
    char *end = NULL;
    buf[0] = '\0';
    while (got < CANNED_REQUEST_BYTES_MAX) {
        ssize_t n = recv(c, buf + got, CANNED_REQUEST_BYTES_MAX - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        if (want < 0) {
            const char *cl = strstr(buf, "Content-Length:");
            want = (long)(end + 4 - buf) + (cl != NULL && cl < end ? strtol(cl + 15, NULL, 10) : 0);
        }
        if ((long)got >= want)
            break;
    }
    if (end != NULL)
        memmove(buf, end + 4, strlen(end + 4) + 1);
    return buf;
}

static inline void *canned_serve(void *arg)
{
    struct canned *s = arg;
    char *body = malloc(CANNED_BODY_BYTES_MAX);
    while (body != NULL && !atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, CANNED_POLL_MS) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char *req = canned_read_request(c);
        int status = s->status;
        snprintf(body, CANNED_BODY_BYTES_MAX, "%s", s->body);
        if (s->answer != NULL && req != NULL)
            s->answer(s->opaque, req, &status, body, CANNED_BODY_BYTES_MAX);
        free(req);
        /* Counted before the answer goes out: a client that has its answer
         * must already see its request counted (counting after close raced
         * the test's check). */
        atomic_fetch_add(&s->requests, 1);
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         status, strlen(body));
        if (send(c, head, (size_t)n, MSG_NOSIGNAL) >= 0)
            (void)send(c, body, strlen(body), MSG_NOSIGNAL);
        close(c);
    }
    free(body);
    return NULL;
}

/* A listening socket on a free loopback port; its port in *port. Aborts
 * when there is none. */
static inline int canned_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        fprintf(stderr, "canned_http: cannot listen on loopback\n");
        abort();
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Starts s answering status and body (answer, when not NULL, may change
 * both per request). */
static inline void canned_start(struct canned *s, int status, const char *body, canned_answer_fn answer,
                                void *opaque)
{
    memset(s, 0, sizeof(*s));
    s->status = status;
    snprintf(s->body, sizeof(s->body), "%s", body);
    s->answer = answer;
    s->opaque = opaque;
    s->fd = canned_listen(&s->port);
    if (pthread_create(&s->th, NULL, canned_serve, s) != 0)
        abort();
}

static inline void canned_stop(struct canned *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->fd);
}

/* A port nothing listens on: connections are refused. */
static inline int canned_dead_port(void)
{
    int port = 0;
    close(canned_listen(&port));
    return port;
}

#endif /* ZL_TEST_CANNED_HTTP_H */
