/* httpbuf.h: a bounded, growable buffer for an HTTP response body, and the
 * libcurl write callback that fills it. Every curl transfer in zeroloss
 * that reads a body (JSON-RPC, admin calls, price sources, IPFS) collects it
 * here, so "how much may an endpoint send us" is decided in one place: past
 * max_bytes the callback refuses the bytes, which makes curl abort the
 * transfer with CURLE_WRITE_ERROR, and too_big tells the caller why.
 *
 * Usage:
 *     struct zl_httpbuf b;
 *     zl_httpbuf_init(&b, BODY_BYTES_MAX);
 *     curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, zl_httpbuf_write_cb);
 *     curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
 *     ... curl_easy_perform(h); read b.data / b.len ...
 *     zl_httpbuf_free(&b);
 *
 * Ownership: the buffer owns data until zl_httpbuf_free() or
 * zl_httpbuf_take(). @locality one thread at a time, like the easy handle
 * it is attached to.
 */
#ifndef ZL_HTTPBUF_H
#define ZL_HTTPBUF_H

#include <stdbool.h>
#include <stddef.h>

struct zl_httpbuf {
    char *data;       /* malloc'd, NUL-terminated after the first byte; NULL before */
    size_t len;       /* body bytes in data, the NUL not counted */
    size_t cap;       /* bytes allocated for data */
    size_t max_bytes; /* body bytes accepted; one more aborts the transfer */
    bool too_big;     /* the body went past max_bytes: the transfer was aborted */
    bool no_memory;   /* growing failed: the transfer was aborted */
};

/* An empty buffer that accepts up to max_bytes body bytes. Allocates
 * nothing: the first byte does. */
void zl_httpbuf_init(struct zl_httpbuf *b, size_t max_bytes);

/* Empties the buffer for the next transfer (len 0, flags cleared, data ""
 * when allocated) and keeps its memory, so a reused easy handle does not
 * reallocate per request. */
void zl_httpbuf_reset(struct zl_httpbuf *b);

/* Appends n bytes and keeps data NUL-terminated. Returns 0; or -1 with
 * too_big (the body would pass max_bytes) or no_memory set, and the buffer
 * as it was. */
int zl_httpbuf_append(struct zl_httpbuf *b, const void *p, size_t n);

/* CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA = a struct zl_httpbuf *:
 * appends and returns size * nmemb, or returns 0 (curl then aborts the
 * transfer with CURLE_WRITE_ERROR) when zl_httpbuf_append refused. */
size_t zl_httpbuf_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);

/* The body as a string: data, or "" when nothing arrived. Borrowed: valid
 * until the buffer changes. */
const char *zl_httpbuf_str(const struct zl_httpbuf *b);

/* Hands data (NULL when nothing arrived) to the caller, who free()s it, and
 * leaves the buffer empty with no memory, max_bytes kept. */
char *zl_httpbuf_take(struct zl_httpbuf *b);

/* Frees data and leaves the buffer empty (max_bytes kept); safe to call
 * twice. */
void zl_httpbuf_free(struct zl_httpbuf *b);

#endif /* ZL_HTTPBUF_H */
