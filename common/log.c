/* log.c: JSON log lines (see log.h for the contract). */
#include "log.h"

#include "zl.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Written at the end of a line that lost a field for lack of room. Room for
 * it and for the closing "}\n" is kept aside from the start, so a full line
 * still closes as valid JSON. */
#define LINE_TRUNCATED_FIELD ",\"line_truncated\":true"
#define LINE_TAIL_RESERVE_BYTES (sizeof(LINE_TRUNCATED_FIELD) - 1 + 2)

/* Longest escape one source character can produce: "\u001f". */
#define ESCAPE_BYTES_MAX 6

static char log_stage[ZL_LOG_STAGE_BYTES_MAX + 1];
static bool log_stage_set;
static atomic_int log_min_level = ZL_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
/* Serialises write(2) calls so that a line longer than PIPE_BUF, or one the
 * kernel takes in two pieces, is never interleaved with another thread's. */
static pthread_mutex_t log_write_lock = PTHREAD_MUTEX_INITIALIZER;

const char *const zl_log_level_names[] = {
    [ZL_LOG_DEBUG] = "debug",
    [ZL_LOG_INFO] = "info",
    [ZL_LOG_WARN] = "warn",
    [ZL_LOG_ERROR] = "error",
    NULL,
};
/* The levels, without the NULL that ends the list. */
#define LEVELS_COUNT (sizeof(zl_log_level_names) / sizeof(zl_log_level_names[0]) - 1)

const char *zl_log_level_name(zl_log_level level)
{
    if ((unsigned)level >= LEVELS_COUNT)
        return "unknown";
    return zl_log_level_names[level];
}

int zl_log_level_parse(const char *s, zl_log_level *out)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < LEVELS_COUNT; i++) {
        if (strcasecmp(s, zl_log_level_names[i]) == 0) {
            *out = (zl_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = ZL_LOG_WARN;
        return 0;
    }
    return -1;
}

void zl_log_init(const char *stage, zl_log_level min_level)
{
    if (stage == NULL) {
        log_stage_set = false;
        log_stage[0] = '\0';
    } else {
        size_t n = strnlen(stage, ZL_LOG_STAGE_BYTES_MAX);
        memcpy(log_stage, stage, n);
        log_stage[n] = '\0';
        log_stage_set = true;
    }
    zl_log_set_level(min_level);
}

void zl_log_set_level(zl_log_level min_level)
{
    atomic_store(&log_min_level, (int)min_level);
}

bool zl_log_enabled(zl_log_level level)
{
    return (int)level >= atomic_load(&log_min_level);
}

int zl_log_set_fd(int fd)
{
    pthread_mutex_lock(&log_write_lock);
    int previous = atomic_exchange(&log_fd, fd);
    pthread_mutex_unlock(&log_write_lock);
    return previous;
}

/* ---- escaping ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when the
 * bytes there are not one (stray continuation, overlong form, surrogate,
 * beyond U+10FFFF, or cut short). Follows the table of RFC 3629 section 4. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */

    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    return len;
}

size_t zl_log_escape_json(char *dst, size_t dst_size, const char *src,
                          size_t src_len, size_t *dst_len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t in = 0, out = 0;
    /* One byte of dst stays for the NUL. */
    size_t cap = dst_size > 0 ? dst_size - 1 : 0;

    while (in < src_len) {
        char esc[ESCAPE_BYTES_MAX];
        const char *piece = esc;
        size_t piece_len, consumed;
        unsigned char b = s[in];

        if (b == '"' || b == '\\') {
            esc[0] = '\\';
            esc[1] = (char)b;
            piece_len = 2;
            consumed = 1;
        } else if (b < 0x20) {
            esc[0] = '\\';
            piece_len = 2;
            consumed = 1;
            switch (b) {
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[b >> 4];
                esc[5] = hex[b & 0x0F];
                piece_len = 6;
                break;
            }
        } else if (b < 0x80) {
            piece = (const char *)s + in;
            piece_len = 1;
            consumed = 1;
        } else {
            size_t len = utf8_valid_len(s + in, src_len - in);
            if (len == 0) {
                /* One U+FFFD per bad byte: simple, and the reader still
                 * sees how much was garbled. */
                piece = "\xEF\xBF\xBD";
                piece_len = 3;
                consumed = 1;
            } else {
                piece = (const char *)s + in;
                piece_len = len;
                consumed = len;
            }
        }
        if (piece_len > cap - out)
            break;
        memcpy(dst + out, piece, piece_len);
        out += piece_len;
        in += consumed;
    }
    if (dst_size > 0)
        dst[out] = '\0';
    if (dst_len != NULL)
        *dst_len = out;
    return in;
}

/* Length of s[0..len) without a multi-byte character cut short at its end,
 * so a string cut at a byte limit does not end in a U+FFFD of our making.
 * Only the last 3 bytes can belong to an unfinished (at most 4-byte)
 * sequence. */
static size_t utf8_trim_partial(const char *s, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char b = (unsigned char)s[len - back];
        if ((b & 0xC0) == 0x80)
            continue; /* continuation byte: look further back */
        if (b < 0xC0)
            return len; /* ASCII: nothing unfinished */
        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        return need > back ? len - back : len;
    }
    return len;
}

/* ---- line building ----------------------------------------------------- */

struct line {
    char buf[ZL_LOG_LINE_BYTES_MAX];
    size_t len;
    bool truncated; /* a field was dropped or cut for lack of room */
};

/* Bytes still free for fields, keeping the tail reserve. */
static size_t line_room(const struct line *l)
{
    size_t usable = sizeof(l->buf) - LINE_TAIL_RESERVE_BYTES;
    return l->len < usable ? usable - l->len : 0;
}

static bool line_put(struct line *l, const char *s, size_t n)
{
    if (n > line_room(l)) {
        l->truncated = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

/* Appends a quoted JSON string holding at most max_raw bytes of s (avail
 * bytes present, of an original total_len). When less than total_len is
 * written, the string ends with ZL_LOG_TRUNCATED_MARKER. Returns false, with
 * the line unchanged, when not even the quotes and the marker fit. */
static bool line_put_string(struct line *l, const char *s, size_t avail,
                            size_t total_len, size_t max_raw)
{
    static const char marker[] = ZL_LOG_TRUNCATED_MARKER;
    size_t marker_len = sizeof(marker) - 1;
    size_t start = l->len;

    if (line_room(l) < 2 + marker_len) {
        l->truncated = true;
        return false;
    }
    size_t take = avail < max_raw ? avail : max_raw;
    if (take < total_len)
        take = utf8_trim_partial(s, take);
    l->buf[l->len++] = '"';
    /* Room for the body, keeping the marker and the closing quote. */
    size_t body_room = line_room(l) - marker_len - 1;
    size_t written = 0;
    size_t used = zl_log_escape_json(l->buf + l->len, body_room + 1, s, take,
                                     &written);
    l->len += written;
    if (used < total_len) {
        memcpy(l->buf + l->len, marker, marker_len);
        l->len += marker_len;
        if (used < take)
            l->truncated = true; /* cut by the line, not the field limit */
    }
    l->buf[l->len++] = '"';
    ZL_ASSERT(l->len > start);
    return true;
}

/* Appends ,"key":"value" (value may be NULL: null). Keys are escaped too:
 * zl_log_kv() takes them from the caller. Drops the whole field when there
 * is no room for it. */
static void line_put_field(struct line *l, const char *key, const char *value,
                           size_t value_max)
{
    size_t start = l->len;
    size_t key_len = strlen(key);

    if (!line_put(l, ",", 1))
        return;
    if (!line_put_string(l, key, key_len, key_len, ZL_LOG_FIELD_BYTES_MAX) ||
        !line_put(l, ":", 1))
        goto out_drop;
    if (value == NULL) {
        if (!line_put(l, "null", 4))
            goto out_drop;
        return;
    }
    size_t value_len = strlen(value);
    if (!line_put_string(l, value, value_len, value_len, value_max))
        goto out_drop;
    return;

out_drop:
    l->len = start;
    l->truncated = true;
}

static void line_put_int(struct line *l, const char *key, int64_t v)
{
    char num[64];
    int n = snprintf(num, sizeof(num), ",\"%s\":%" PRId64, key, v);
    if (n > 0 && (size_t)n < sizeof(num))
        line_put(l, num, (size_t)n);
}

static void line_put_ctx(struct line *l, const struct zl_log_ctx *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->deposit_id != NULL)
        line_put_field(l, "deposit_id", ctx->deposit_id, ZL_LOG_FIELD_BYTES_MAX);
    if (ctx->topic != NULL)
        line_put_field(l, "topic", ctx->topic, ZL_LOG_FIELD_BYTES_MAX);
    if (ctx->partition >= 0)
        line_put_int(l, "partition", ctx->partition);
    if (ctx->offset >= 0)
        line_put_int(l, "offset", ctx->offset);
    if (ctx->trace_id != NULL)
        line_put_field(l, "trace_id", ctx->trace_id, ZL_LOG_FIELD_BYTES_MAX);
}

/* Starts a line with ts, level, stage and msg. */
static void line_begin(struct line *l, zl_log_level level, const char *msg,
                       size_t msg_avail, size_t msg_total)
{
    char ts[32];
    l->len = 0;
    l->truncated = false;
    line_put(l, "{\"ts\":\"", 7);
    zl_rfc3339_now(ts, sizeof(ts));
    line_put(l, ts, strlen(ts));
    line_put(l, "\",\"level\":\"", 11);
    const char *lv = zl_log_level_name(level);
    line_put(l, lv, strlen(lv));
    line_put(l, "\"", 1);
    if (log_stage_set)
        line_put_field(l, "stage", log_stage, ZL_LOG_STAGE_BYTES_MAX);
    line_put(l, ",\"msg\":", 7);
    line_put_string(l, msg, msg_avail, msg_total, ZL_LOG_MSG_BYTES_MAX);
    if (msg_total > ZL_LOG_MSG_BYTES_MAX)
        line_put_int(l, "msg_bytes", (int64_t)msg_total);
}

/* Closes the line (the tail reserve guarantees room) and writes it. */
static void line_end_and_write(struct line *l)
{
    if (l->truncated) {
        memcpy(l->buf + l->len, LINE_TRUNCATED_FIELD,
               sizeof(LINE_TRUNCATED_FIELD) - 1);
        l->len += sizeof(LINE_TRUNCATED_FIELD) - 1;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ZL_ASSERT(l->len <= sizeof(l->buf));

    pthread_mutex_lock(&log_write_lock);
    int fd = atomic_load(&log_fd);
    size_t off = 0;
    /* Normally one write(2); loop only for a partial write or a signal. A
     * failed write loses the line: there is nowhere else to report it. */
    while (off < l->len) {
        ssize_t w = write(fd, l->buf + off, l->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)w;
    }
    pthread_mutex_unlock(&log_write_lock);
}

void zl_vlog(zl_log_level level, const struct zl_log_ctx *ctx, const char *fmt,
             va_list ap)
{
    if (!zl_log_enabled(level))
        return;
    int saved_errno = errno; /* %m and the caller both need it intact */
    char msg[ZL_LOG_MSG_BYTES_MAX + 1];
    size_t avail, total;
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) {
        static const char bad[] = "(unformattable log message)";
        memcpy(msg, bad, sizeof(bad));
        avail = total = sizeof(bad) - 1;
    } else {
        total = (size_t)n;
        avail = total < sizeof(msg) - 1 ? total : sizeof(msg) - 1;
    }
    struct line l;
    line_begin(&l, level, msg, avail, total);
    line_put_ctx(&l, ctx);
    line_end_and_write(&l);
    errno = saved_errno;
}

void zl_log(zl_log_level level, const struct zl_log_ctx *ctx, const char *fmt,
            ...)
{
    va_list ap;
    va_start(ap, fmt);
    zl_vlog(level, ctx, fmt, ap);
    va_end(ap);
}

void zl_log_kv(zl_log_level level, const struct zl_log_ctx *ctx,
               const char *msg, ...)
{
    if (!zl_log_enabled(level))
        return;
    int saved_errno = errno;
    if (msg == NULL)
        msg = "";
    size_t msg_len = strlen(msg);
    struct line l;
    line_begin(&l, level, msg, msg_len, msg_len);
    line_put_ctx(&l, ctx);

    va_list ap;
    va_start(ap, msg);
    for (int i = 0;; i++) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        if (i >= ZL_LOG_KV_FIELDS_MAX) {
            l.truncated = true;
            break;
        }
        line_put_field(&l, key, value, ZL_LOG_FIELD_BYTES_MAX);
    }
    va_end(ap);

    line_end_and_write(&l);
    errno = saved_errno;
}
