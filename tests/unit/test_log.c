/* test_log.c: every log line is one valid JSON object with the right fields,
 * whatever the input, and lines from several threads never interleave. */
#include "log.h"
#include "zltest.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Captured output of one test; big enough for a few full lines. */
#define CAPTURE_BYTES_MAX (4 * ZL_LOG_LINE_BYTES_MAX)

struct capture {
    int read_fd;
    int write_fd;
    int previous_fd;
    char buf[CAPTURE_BYTES_MAX + 1];
    size_t len;
};

static bool capture_begin(struct capture *c)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    /* Non-blocking read end: reading drains what was logged, then stops. */
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    c->read_fd = fds[0];
    c->write_fd = fds[1];
    c->len = 0;
    c->previous_fd = zl_log_set_fd(c->write_fd);
    return true;
}

/* Reads everything logged so far (appending to c->buf). */
static size_t capture_read(struct capture *c)
{
    for (int i = 0; i < 1000 && c->len < CAPTURE_BYTES_MAX; i++) {
        ssize_t n = read(c->read_fd, c->buf + c->len, CAPTURE_BYTES_MAX - c->len);
        if (n <= 0)
            break;
        c->len += (size_t)n;
    }
    c->buf[c->len] = '\0';
    return c->len;
}

static void capture_end(struct capture *c)
{
    zl_log_set_fd(c->previous_fd);
    close(c->read_fd);
    close(c->write_fd);
}

static size_t count_newlines(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

/* Parses the capture as exactly one line; NULL (after a failed check) when
 * it is not one line of valid JSON. */
static json_t *capture_one_line(struct capture *c, size_t flags)
{
    capture_read(c);
    ZT_EQ_INT(1, count_newlines(c->buf, c->len));
    if (c->len == 0 || c->buf[c->len - 1] != '\n')
        return NULL;
    json_error_t err;
    json_t *j = json_loadb(c->buf, c->len - 1, flags, &err);
    if (j == NULL)
        fprintf(stderr, "  not JSON (%s): %s\n", err.text, c->buf);
    ZT_CHECK(j != NULL && json_is_object(j));
    return j;
}

static const char *str_field(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

ZT_TEST(test_log_line_has_ts_level_stage_msg_and_omits_unknown_context)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    zl_log(ZL_LOG_INFO, NULL, "hello %d", 42);
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR("info", str_field(j, "level"));
        ZT_EQ_STR("verify", str_field(j, "stage"));
        ZT_EQ_STR("hello 42", str_field(j, "msg"));
        const char *ts = str_field(j, "ts");
        /* RFC 3339 UTC with milliseconds: 2026-11-23T09:20:00.123Z */
        ZT_REQUIRE(ts != NULL);
        ZT_EQ_INT(24, strlen(ts));
        ZT_CHECK(ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
        ZT_EQ_INT(4, json_object_size(j)); /* nothing unknown written */
        json_decref(j);
    }

    struct zl_log_ctx none = ZL_LOG_CTX_NONE;
    zl_log_init(NULL, ZL_LOG_INFO);
    c.len = 0;
    zl_log(ZL_LOG_ERROR, &none, "x");
    j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR("error", str_field(j, "level"));
        ZT_CHECK(json_object_get(j, "stage") == NULL);
        ZT_CHECK(json_object_get(j, "partition") == NULL);
        ZT_CHECK(json_object_get(j, "offset") == NULL);
        ZT_EQ_INT(3, json_object_size(j));
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_context_fields_written_when_known_including_zero)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("mint", ZL_LOG_DEBUG);
    struct zl_log_ctx ctx = ZL_LOG_CTX_NONE;
    ctx.deposit_id = "1:0xabc:7";
    ctx.topic = "zl.nft.pinned";
    ctx.partition = 0;
    ctx.offset = 9007199254740993LL; /* beyond a double's exact range */
    ctx.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    zl_log(ZL_LOG_DEBUG, &ctx, "minting");
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR("debug", str_field(j, "level"));
        ZT_EQ_STR("1:0xabc:7", str_field(j, "deposit_id"));
        ZT_EQ_STR("zl.nft.pinned", str_field(j, "topic"));
        ZT_CHECK(json_is_integer(json_object_get(j, "partition")));
        ZT_EQ_INT(0, json_integer_value(json_object_get(j, "partition")));
        ZT_EQ_INT(9007199254740993LL, json_integer_value(json_object_get(j, "offset")));
        ZT_EQ_STR("4bf92f3577b34da6a3ce929d0e0e4736", str_field(j, "trace_id"));
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_escapes_quotes_backslashes_and_control_characters)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    /* A message trying to end the line and start a forged one. */
    const char *hostile = "a\"b\\c\n{\"level\":\"error\"}\r\t\b\f\x01\x1f\x7f"
                          " caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E";
    zl_log(ZL_LOG_INFO, NULL, "%s", hostile);
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR(hostile, str_field(j, "msg")); /* round-trips exactly */
        json_decref(j);
    }
    for (size_t i = 0; i + 1 < c.len; i++)
        ZT_CHECK((unsigned char)c.buf[i] >= 0x20);
    capture_end(&c);
}

ZT_TEST(test_log_replaces_each_invalid_utf8_byte_with_replacement_char)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    /* stray continuation; overlong '/'; surrogate; beyond U+10FFFF; byte
     * 0xFF; a sequence cut short at the end. */
    zl_log(ZL_LOG_INFO, NULL, "%s",
           "a\x80" "b\xC0\xAF" "c\xED\xA0\x80" "d\xF4\x90\x80\x80" "e\xFF" "f\xE2\x82");
#define R "\xEF\xBF\xBD"
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR("a" R "b" R R "c" R R R "d" R R R R "e" R "f" R R, str_field(j, "msg"));
        json_decref(j);
    }
#undef R
    capture_end(&c);
}

ZT_TEST(test_log_nul_in_formatted_message_is_escaped_not_cut)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    zl_log(ZL_LOG_INFO, NULL, "a%cb", 0);
    ZT_CHECK(strstr((capture_read(&c), c.buf), "\"a\\u0000b\"") != NULL);
    c.len = 0;
    zl_log(ZL_LOG_INFO, NULL, "a%cb", 0);
    json_t *j = capture_one_line(&c, JSON_ALLOW_NUL);
    if (j != NULL) {
        ZT_EQ_INT(3, json_string_length(json_object_get(j, "msg")));
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_hostile_context_and_kv_strings_stay_valid_json)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("credit", ZL_LOG_INFO);
    struct zl_log_ctx ctx = ZL_LOG_CTX_NONE;
    ctx.deposit_id = "\"},{\"x\":\"\n";
    ctx.topic = "t\xFF";
    ctx.trace_id = "\\";
    zl_log_kv(ZL_LOG_WARN, &ctx, "rpc \"failed\"", "endpoint", "http://a/\x01",
              "k\"ey", "v", "absent", NULL, NULL);
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR("warn", str_field(j, "level"));
        ZT_EQ_STR("rpc \"failed\"", str_field(j, "msg"));
        ZT_EQ_STR("\"},{\"x\":\"\n", str_field(j, "deposit_id"));
        ZT_EQ_STR("t\xEF\xBF\xBD", str_field(j, "topic"));
        ZT_EQ_STR("\\", str_field(j, "trace_id"));
        ZT_EQ_STR("http://a/\x01", str_field(j, "endpoint"));
        ZT_EQ_STR("v", str_field(j, "k\"ey"));
        ZT_CHECK(json_is_null(json_object_get(j, "absent")));
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_level_filter_drops_lines_below_minimum)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("detect", ZL_LOG_WARN);
    ZT_CHECK(!zl_log_enabled(ZL_LOG_INFO));
    ZT_CHECK(zl_log_enabled(ZL_LOG_WARN));
    zl_log(ZL_LOG_DEBUG, NULL, "debug");
    zl_log(ZL_LOG_INFO, NULL, "info");
    zl_log_kv(ZL_LOG_INFO, NULL, "info kv", NULL);
    ZT_EQ_INT(0, capture_read(&c));
    zl_log(ZL_LOG_WARN, NULL, "warn");
    zl_log(ZL_LOG_ERROR, NULL, "error");
    capture_read(&c);
    ZT_EQ_INT(2, count_newlines(c.buf, c.len));
    ZT_CHECK(strstr(c.buf, "\"msg\":\"warn\"") != NULL);
    ZT_CHECK(strstr(c.buf, "\"msg\":\"error\"") != NULL);

    zl_log_set_level(ZL_LOG_DEBUG);
    c.len = 0;
    zl_log(ZL_LOG_DEBUG, NULL, "now visible");
    ZT_CHECK(capture_read(&c) > 0);
    capture_end(&c);
    zl_log_init("detect", ZL_LOG_INFO);
}

ZT_TEST(test_log_level_parse_accepts_names_and_rejects_others)
{
    zl_log_level lv = ZL_LOG_ERROR;
    ZT_EQ_INT(0, zl_log_level_parse("debug", &lv));
    ZT_EQ_INT(ZL_LOG_DEBUG, lv);
    ZT_EQ_INT(0, zl_log_level_parse("INFO", &lv));
    ZT_EQ_INT(ZL_LOG_INFO, lv);
    ZT_EQ_INT(0, zl_log_level_parse("warning", &lv));
    ZT_EQ_INT(ZL_LOG_WARN, lv);
    ZT_EQ_INT(0, zl_log_level_parse("error", &lv));
    ZT_EQ_INT(ZL_LOG_ERROR, lv);
    ZT_EQ_INT(-1, zl_log_level_parse("verbose", &lv));
    ZT_EQ_INT(-1, zl_log_level_parse("", &lv));
    ZT_EQ_INT(-1, zl_log_level_parse(NULL, &lv));
    ZT_EQ_INT(ZL_LOG_ERROR, lv); /* unchanged on failure */
    ZT_EQ_STR("warn", zl_log_level_name(ZL_LOG_WARN));
    ZT_EQ_STR("unknown", zl_log_level_name((zl_log_level)42));
}

ZT_TEST(test_log_message_cut_at_msg_bytes_max_with_marker_and_length)
{
    enum { LONG_BYTES = 5000 };
    static char big[LONG_BYTES + 1];
    memset(big, 'a', LONG_BYTES);
    big[LONG_BYTES] = '\0';
    static char want[ZL_LOG_MSG_BYTES_MAX + sizeof(ZL_LOG_TRUNCATED_MARKER)];
    memset(want, 'a', ZL_LOG_MSG_BYTES_MAX);
    memcpy(want + ZL_LOG_MSG_BYTES_MAX, ZL_LOG_TRUNCATED_MARKER,
           sizeof(ZL_LOG_TRUNCATED_MARKER));

    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    zl_log(ZL_LOG_INFO, NULL, "%s", big);
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR(want, str_field(j, "msg"));
        ZT_EQ_INT(LONG_BYTES, json_integer_value(json_object_get(j, "msg_bytes")));
        ZT_CHECK(json_object_get(j, "line_truncated") == NULL);
        json_decref(j);
    }
    /* The literal message of zl_log_kv has the same limit. */
    c.len = 0;
    zl_log_kv(ZL_LOG_INFO, NULL, big, NULL);
    j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR(want, str_field(j, "msg"));
        json_decref(j);
    }
    /* Exactly at the limit: nothing is cut. */
    big[ZL_LOG_MSG_BYTES_MAX] = '\0';
    c.len = 0;
    zl_log(ZL_LOG_INFO, NULL, "%s", big);
    j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR(big, str_field(j, "msg"));
        ZT_CHECK(json_object_get(j, "msg_bytes") == NULL);
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_cut_never_splits_a_utf8_character)
{
    /* 4095 'a' then a 2-byte 'é' straddling the 4096-byte limit. */
    static char big[ZL_LOG_MSG_BYTES_MAX + 16];
    memset(big, 'a', ZL_LOG_MSG_BYTES_MAX - 1);
    memcpy(big + ZL_LOG_MSG_BYTES_MAX - 1, "\xC3\xA9zzz", 6);
    static char want[ZL_LOG_MSG_BYTES_MAX + sizeof(ZL_LOG_TRUNCATED_MARKER)];
    memset(want, 'a', ZL_LOG_MSG_BYTES_MAX - 1);
    memcpy(want + ZL_LOG_MSG_BYTES_MAX - 1, ZL_LOG_TRUNCATED_MARKER,
           sizeof(ZL_LOG_TRUNCATED_MARKER));

    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    zl_log(ZL_LOG_INFO, NULL, "%s", big);
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR(want, str_field(j, "msg"));
        ZT_CHECK(strstr(str_field(j, "msg"), "\xEF\xBF\xBD") == NULL);
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_line_closes_as_valid_json_when_fields_exceed_line_size)
{
    /* Control characters escape to 6 bytes each: 16 such values of 512 bytes
     * need ~49 KiB, three times the line. */
    static char ctl[ZL_LOG_FIELD_BYTES_MAX + 1];
    memset(ctl, '\x01', ZL_LOG_FIELD_BYTES_MAX);
    static char msg[ZL_LOG_MSG_BYTES_MAX + 1];
    memset(msg, '\x02', ZL_LOG_MSG_BYTES_MAX);

    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    zl_log_kv(ZL_LOG_INFO, NULL, "m", "k0", ctl, "k1", ctl, "k2", ctl, "k3", ctl,
              "k4", ctl, "k5", ctl, "k6", ctl, "k7", ctl, "k8", ctl, "k9", ctl,
              "k10", ctl, "k11", ctl, "k12", ctl, "k13", ctl, "k14", ctl,
              "k15", ctl, NULL);
    json_t *j = capture_one_line(&c, 0);
    ZT_CHECK(c.len <= ZL_LOG_LINE_BYTES_MAX);
    if (j != NULL) {
        ZT_CHECK(json_is_true(json_object_get(j, "line_truncated")));
        ZT_EQ_STR("m", str_field(j, "msg"));
        ZT_CHECK(json_object_get(j, "k0") != NULL); /* early fields kept */
        json_decref(j);
    }

    /* A message alone that escapes past the line: cut, marked, closed. */
    c.len = 0;
    struct zl_log_ctx ctx = ZL_LOG_CTX_NONE;
    ctx.deposit_id = "1:0xabc:7";
    zl_log(ZL_LOG_INFO, &ctx, "%s", msg);
    j = capture_one_line(&c, 0);
    ZT_CHECK(c.len <= ZL_LOG_LINE_BYTES_MAX);
    if (j != NULL) {
        const char *m = str_field(j, "msg");
        size_t mlen = m ? strlen(m) : 0;
        size_t marker_len = strlen(ZL_LOG_TRUNCATED_MARKER);
        ZT_CHECK(mlen > marker_len && mlen < ZL_LOG_MSG_BYTES_MAX);
        ZT_CHECK(m && strcmp(m + mlen - marker_len, ZL_LOG_TRUNCATED_MARKER) == 0);
        ZT_CHECK(json_is_true(json_object_get(j, "line_truncated")));
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_kv_writes_at_most_kv_fields_max_pairs)
{
    struct capture c;
    ZT_REQUIRE(capture_begin(&c));
    zl_log_init("verify", ZL_LOG_INFO);
    zl_log_kv(ZL_LOG_INFO, NULL, "m", "k0", "0", "k1", "1", "k2", "2", "k3", "3",
              "k4", "4", "k5", "5", "k6", "6", "k7", "7", "k8", "8", "k9", "9",
              "k10", "10", "k11", "11", "k12", "12", "k13", "13", "k14", "14",
              "k15", "15", "k16", "16", NULL);
    json_t *j = capture_one_line(&c, 0);
    if (j != NULL) {
        ZT_EQ_STR("15", str_field(j, "k15"));
        ZT_CHECK(json_object_get(j, "k16") == NULL);
        ZT_CHECK(json_is_true(json_object_get(j, "line_truncated")));
        json_decref(j);
    }
    capture_end(&c);
}

ZT_TEST(test_log_keeps_callers_errno_and_set_fd_returns_previous)
{
    int devnull = open("/dev/null", O_WRONLY);
    ZT_REQUIRE(devnull >= 0);
    int previous = zl_log_set_fd(devnull);
    ZT_EQ_INT(2, previous); /* every test restored stderr */
    errno = ENOENT;
    zl_log(ZL_LOG_ERROR, NULL, "open failed");
    ZT_EQ_INT(ENOENT, errno);
    errno = EAGAIN;
    zl_log_kv(ZL_LOG_ERROR, NULL, "open failed", "path", "/x", NULL);
    ZT_EQ_INT(EAGAIN, errno);
    ZT_EQ_INT(devnull, zl_log_set_fd(previous));
    close(devnull);
}

ZT_TEST(test_log_escape_json_writes_only_whole_characters)
{
    char out[8];
    size_t n = 99;
    /* '"' needs 2 bytes; only 1 is left after "ab" in a 4-byte buffer. */
    ZT_EQ_INT(2, zl_log_escape_json(out, 4, "ab\"c", 4, &n));
    ZT_EQ_INT(2, n);
    ZT_EQ_STR("ab", out);
    /* A 2-byte character does not fit in 1 byte plus the NUL. */
    ZT_EQ_INT(0, zl_log_escape_json(out, 2, "\xC3\xA9", 2, &n));
    ZT_EQ_STR("", out);
    ZT_EQ_INT(2, zl_log_escape_json(out, sizeof(out), "\xC3\xA9", 2, &n));
    ZT_EQ_STR("\xC3\xA9", out);
    ZT_EQ_INT(1, zl_log_escape_json(out, sizeof(out), "\x1b", 1, &n));
    ZT_EQ_STR("\\u001b", out);
}

/* ---- threads ------------------------------------------------------------ */

enum {
    THREADS = 8,
    LINES_PER_THREAD = 100,
    THREAD_MSG_BYTES = 4000,
    THREAD_VALUE_BYTES = 500,
    /* 4000 + 4 x 500 bytes: lines of ~6 KiB, longer than PIPE_BUF (4096),
     * past which the kernel may split a write to a pipe and let another
     * writer in while it waits for room. Only the mutex keeps them whole. */
    THREAD_LINE_BYTES_MAX = 8192,
    CAPTURED_BYTES_MAX = THREADS * LINES_PER_THREAD * THREAD_LINE_BYTES_MAX,
};

static void *log_from_thread(void *arg)
{
    int index = (int)(intptr_t)arg;
    char id = (char)('A' + index);
    static char msgs[THREADS][THREAD_MSG_BYTES + 1];
    char *msg = msgs[index];
    memset(msg, id, THREAD_MSG_BYTES);
    msg[THREAD_MSG_BYTES] = '\0';
    const char *v = msg + THREAD_MSG_BYTES - THREAD_VALUE_BYTES;
    for (int i = 0; i < LINES_PER_THREAD; i++)
        zl_log_kv(ZL_LOG_INFO, NULL, msg, "a", v, "b", v, "c", v, "d", v, NULL);
    return NULL;
}

struct drain {
    int fd;
    char *buf;
    size_t len;
};

/* Empties the pipe as the writers fill it, until they are done (EOF). */
static void *drain_pipe(void *arg)
{
    struct drain *d = arg;
    while (d->len < CAPTURED_BYTES_MAX) {
        ssize_t n = read(d->fd, d->buf + d->len, CAPTURED_BYTES_MAX - d->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        d->len += (size_t)n;
    }
    return NULL;
}

static bool line_is_whole(json_t *j, int *thread_out)
{
    const char *m = json_string_value(json_object_get(j, "msg"));
    if (m == NULL || strlen(m) != THREAD_MSG_BYTES || m[0] < 'A' || m[0] >= 'A' + THREADS)
        return false;
    char only[2] = {m[0], '\0'};
    if (strspn(m, only) != THREAD_MSG_BYTES)
        return false;
    const char *keys[] = {"a", "b", "c", "d"};
    for (size_t k = 0; k < 4; k++) {
        const char *v = json_string_value(json_object_get(j, keys[k]));
        if (v == NULL || strlen(v) != THREAD_VALUE_BYTES || strspn(v, only) != THREAD_VALUE_BYTES)
            return false;
    }
    *thread_out = m[0] - 'A';
    return true;
}

ZT_TEST(test_log_lines_from_threads_never_interleave)
{
    int fds[2];
    ZT_REQUIRE(pipe(fds) == 0);
    struct drain d = {.fd = fds[0], .buf = malloc(CAPTURED_BYTES_MAX + 1), .len = 0};
    ZT_REQUIRE(d.buf != NULL);
    zl_log_init("verify", ZL_LOG_INFO);
    int previous = zl_log_set_fd(fds[1]);

    pthread_t reader;
    ZT_REQUIRE(pthread_create(&reader, NULL, drain_pipe, &d) == 0);
    pthread_t threads[THREADS];
    int started = 0;
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&threads[i], NULL, log_from_thread, (void *)(intptr_t)i) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    zl_log_set_fd(previous);
    close(fds[1]); /* EOF for the reader */
    pthread_join(reader, NULL);
    close(fds[0]);
    ZT_CHECK(started == THREADS);
    d.buf[d.len] = '\0';

    int lines = 0, whole = 0;
    int per_thread[THREADS] = {0};
    char *p = d.buf;
    char *nl;
    while ((nl = strchr(p, '\n')) != NULL) {
        lines++;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, NULL);
        int t;
        if (j != NULL && line_is_whole(j, &t)) {
            whole++;
            per_thread[t]++;
        }
        json_decref(j);
        p = nl + 1;
    }
    ZT_EQ_INT(THREADS * LINES_PER_THREAD, lines);
    ZT_EQ_INT(THREADS * LINES_PER_THREAD, whole);
    ZT_EQ_INT(0, strlen(p)); /* nothing after the last newline */
    for (int i = 0; i < THREADS; i++)
        ZT_EQ_INT(LINES_PER_THREAD, per_thread[i]);
    free(d.buf);
}

ZT_MAIN(test_log_line_has_ts_level_stage_msg_and_omits_unknown_context,
        test_log_context_fields_written_when_known_including_zero,
        test_log_escapes_quotes_backslashes_and_control_characters,
        test_log_replaces_each_invalid_utf8_byte_with_replacement_char,
        test_log_nul_in_formatted_message_is_escaped_not_cut,
        test_log_hostile_context_and_kv_strings_stay_valid_json,
        test_log_level_filter_drops_lines_below_minimum,
        test_log_level_parse_accepts_names_and_rejects_others,
        test_log_message_cut_at_msg_bytes_max_with_marker_and_length,
        test_log_cut_never_splits_a_utf8_character,
        test_log_line_closes_as_valid_json_when_fields_exceed_line_size,
        test_log_kv_writes_at_most_kv_fields_max_pairs,
        test_log_keeps_callers_errno_and_set_fd_returns_previous,
        test_log_escape_json_writes_only_whole_characters,
        test_log_lines_from_threads_never_interleave)
