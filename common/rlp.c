#include "rlp.h"

#include <stdio.h>
#include <string.h>

void zl_rlp_init(struct zl_rlp *r, uint8_t *buf, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->buf = buf;
    r->cap = cap;
}

static void put(struct zl_rlp *r, const void *data, size_t len)
{
    if (r->overflow)
        return;
    if (len > r->cap - r->len) {
        r->overflow = true;
        return;
    }
    if (len > 0)
        memcpy(r->buf + r->len, data, len);
    r->len += len;
}

/* Writes a header (offset 0x80 for strings, 0xc0 for lists) into hdr;
 * returns its length (1..9). */
static size_t header(uint8_t hdr[9], uint8_t offset, size_t len)
{
    if (len < 56) {
        hdr[0] = (uint8_t)(offset + len);
        return 1;
    }
    uint8_t be[8];
    size_t n = 0;
    for (size_t v = len; v > 0; v >>= 8)
        n++;
    for (size_t i = 0; i < n; i++)
        be[i] = (uint8_t)(len >> (8 * (n - 1 - i)));
    hdr[0] = (uint8_t)(offset + 55 + n);
    memcpy(hdr + 1, be, n);
    return 1 + n;
}

void zl_rlp_bytes(struct zl_rlp *r, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len == 1 && p[0] < 0x80) {
        put(r, p, 1);
        return;
    }
    uint8_t hdr[9];
    size_t h = header(hdr, 0x80, len);
    put(r, hdr, h);
    put(r, data, len);
}

void zl_rlp_uint(struct zl_rlp *r, uint64_t v)
{
    uint8_t be[8];
    size_t n = 0;
    for (uint64_t t = v; t > 0; t >>= 8)
        n++;
    for (size_t i = 0; i < n; i++)
        be[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    zl_rlp_bytes(r, be, n);
}

void zl_rlp_u256(struct zl_rlp *r, const uint8_t be[32])
{
    size_t skip = 0;
    while (skip < 32 && be[skip] == 0)
        skip++;
    zl_rlp_bytes(r, be + skip, 32 - skip);
}

void zl_rlp_list_begin(struct zl_rlp *r)
{
    if (r->overflow)
        return;
    if (r->nopen == ZL_RLP_OPEN_LISTS_MAX) {
        r->overflow = true;
        return;
    }
    r->open[r->nopen++] = r->len;
}

void zl_rlp_list_end(struct zl_rlp *r)
{
    if (r->overflow)
        return;
    if (r->nopen == 0) {
        r->overflow = true;
        return;
    }
    size_t start = r->open[--r->nopen];
    size_t payload = r->len - start;
    uint8_t hdr[9];
    size_t h = header(hdr, 0xc0, payload);
    if (h > r->cap - r->len) {
        r->overflow = true;
        return;
    }
    memmove(r->buf + start + h, r->buf + start, payload);
    memcpy(r->buf + start, hdr, h);
    r->len += h;
}

int zl_rlp_finish(const struct zl_rlp *r, size_t *len_out)
{
    if (r->overflow || r->nopen != 0)
        return -1;
    *len_out = r->len;
    return 0;
}

int zl_rlp_decode(const uint8_t *data, size_t len, struct zl_rlp_item *out, char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    if (len == 0) {
        snprintf(errstr, errstr_size, "rlp: empty input");
        return -1;
    }
    uint8_t b = data[0];
    if (b < 0x80) {
        out->payload = data;
        out->payload_len = 1;
        out->total_len = 1;
        return 0;
    }
    bool is_list = b >= 0xc0;
    uint8_t base = is_list ? 0xc0 : 0x80;
    size_t hdr = 1, plen;
    if (b - base < 56) {
        plen = (size_t)(b - base);
    } else {
        size_t n = (size_t)(b - base - 55); /* 1..8 length bytes */
        if (n > len - 1) {
            snprintf(errstr, errstr_size, "rlp: length of length %zu runs past the end", n);
            return -1;
        }
        if (data[1] == 0) {
            snprintf(errstr, errstr_size, "rlp: length with a leading zero byte");
            return -1;
        }
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v = (v << 8) | data[1 + i];
        if (v < 56) {
            snprintf(errstr, errstr_size, "rlp: long form used for a %llu-byte payload", (unsigned long long)v);
            return -1;
        }
        if (v > SIZE_MAX - 16) {
            snprintf(errstr, errstr_size, "rlp: payload length %llu too large", (unsigned long long)v);
            return -1;
        }
        plen = (size_t)v;
        hdr = 1 + n;
    }
    if (plen > len - hdr) {
        snprintf(errstr, errstr_size, "rlp: %zu-byte payload runs past the end of %zu bytes", plen, len);
        return -1;
    }
    if (!is_list && plen == 1 && data[hdr] < 0x80) {
        snprintf(errstr, errstr_size, "rlp: single byte 0x%02x wrapped in a string header", data[hdr]);
        return -1;
    }
    out->is_list = is_list;
    out->payload = data + hdr;
    out->payload_len = plen;
    out->total_len = hdr + plen;
    return 0;
}

int zl_rlp_list_next(const struct zl_rlp_item *list, size_t *pos, struct zl_rlp_item *out, char *errstr,
                     size_t errstr_size)
{
    if (!list->is_list) {
        snprintf(errstr, errstr_size, "rlp: expected a list");
        return -1;
    }
    if (*pos >= list->payload_len)
        return 0;
    if (zl_rlp_decode(list->payload + *pos, list->payload_len - *pos, out, errstr, errstr_size) != 0)
        return -1;
    *pos += out->total_len;
    return 1;
}

static int validate_item(const struct zl_rlp_item *it, int depth, char *errstr, size_t errstr_size)
{
    if (!it->is_list)
        return 0;
    if (depth >= ZL_RLP_DEPTH_MAX) {
        snprintf(errstr, errstr_size, "rlp: lists nested deeper than %d", ZL_RLP_DEPTH_MAX);
        return -1;
    }
    size_t pos = 0;
    struct zl_rlp_item child;
    int rc;
    while ((rc = zl_rlp_list_next(it, &pos, &child, errstr, errstr_size)) == 1) {
        if (validate_item(&child, depth + 1, errstr, errstr_size) != 0)
            return -1;
    }
    return rc;
}

int zl_rlp_validate(const uint8_t *data, size_t len, char *errstr, size_t errstr_size)
{
    struct zl_rlp_item it;
    if (zl_rlp_decode(data, len, &it, errstr, errstr_size) != 0)
        return -1;
    if (it.total_len != len) {
        snprintf(errstr, errstr_size, "rlp: %zu trailing bytes after the item", len - it.total_len);
        return -1;
    }
    return validate_item(&it, 0, errstr, errstr_size);
}

int zl_rlp_item_uint(const struct zl_rlp_item *it, uint64_t *out)
{
    if (it->is_list || it->payload_len > 8 || (it->payload_len > 0 && it->payload[0] == 0))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < it->payload_len; i++)
        v = (v << 8) | it->payload[i];
    *out = v;
    return 0;
}
