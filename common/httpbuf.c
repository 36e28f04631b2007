/* httpbuf.c: the bounded HTTP body buffer behind httpbuf.h. */
#include "httpbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* First allocation: most answers (a JSON-RPC result, a health document)
 * fit, and doubling from here reaches 64 MiB in 14 steps. */
#define HTTPBUF_FIRST_CAP_BYTES 4096u

void zl_httpbuf_init(struct zl_httpbuf *b, size_t max_bytes)
{
    memset(b, 0, sizeof(*b));
    b->max_bytes = max_bytes;
}

void zl_httpbuf_reset(struct zl_httpbuf *b)
{
    b->len = 0;
    b->too_big = false;
    b->no_memory = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int zl_httpbuf_append(struct zl_httpbuf *b, const void *p, size_t n)
{
    /* n > max - len, not len + n > max: no overflow on a huge n. */
    if (b->len > b->max_bytes || n > b->max_bytes - b->len) {
        b->too_big = true;
        return -1;
    }
    size_t need = b->len + n + 1; /* the NUL */
    if (need > b->cap) {
        size_t cap = b->cap == 0 ? HTTPBUF_FIRST_CAP_BYTES : b->cap;
        while (cap < need)
            cap *= 2;
        if (b->max_bytes < SIZE_MAX && cap > b->max_bytes + 1)
            cap = b->max_bytes + 1; /* never more than the bound needs */
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->no_memory = true;
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

size_t zl_httpbuf_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    size_t n = size * nmemb; /* curl documents size as always 1 */
    return zl_httpbuf_append(userdata, ptr, n) == 0 ? n : 0;
}

const char *zl_httpbuf_str(const struct zl_httpbuf *b) { return b->data != NULL ? b->data : ""; }

char *zl_httpbuf_take(struct zl_httpbuf *b)
{
    char *d = b->data;
    zl_httpbuf_init(b, b->max_bytes);
    return d;
}

void zl_httpbuf_free(struct zl_httpbuf *b) { free(zl_httpbuf_take(b)); }
