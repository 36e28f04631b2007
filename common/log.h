/* log.h: structured logs, one JSON object per line, on stderr.
 *
 * Every line is a complete JSON object ended by "\n":
 *   {"ts":"2026-11-23T09:20:00.123Z","level":"info","stage":"verify",
 *    "msg":"...","deposit_id":"...","topic":"...","partition":3,
 *    "offset":42,"trace_id":"...", <extra string fields from zl_log_kv>}
 * Fields that are unknown (NULL string, negative partition/offset) are left
 * out rather than written as null, so `jq 'select(.deposit_id)'` works.
 *
 * A line is always valid JSON, whatever the caller passes: quotes, backslashes
 * and control characters are escaped, invalid UTF-8 is replaced by U+FFFD, and
 * every string has a byte limit after which it is cut (at a character
 * boundary) and ends with ZL_LOG_TRUNCATED_MARKER. Log lines must survive
 * hostile input because messages quote what came from the chain, Kafka and
 * HTTP peers.
 *
 * Each line leaves the process in one write(2) (a loop only when the kernel
 * accepts part of it), under a process-wide mutex, so lines from several
 * threads never interleave, even past PIPE_BUF.
 *
 * Nothing here allocates; a line is built in a stack buffer of
 * ZL_LOG_LINE_BYTES_MAX bytes. Logging never fails from the caller's point of
 * view: if the output cannot be written, the line is lost, and errno is left
 * as the caller had it.
 *
 * Not async-signal-safe (it takes a mutex): never log from a signal handler;
 * set a flag there and log from the loop.
 */
#ifndef ZL_LOG_H
#define ZL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Raw bytes of a formatted message kept; the rest is cut and the line gets
 * "msg_bytes": <original length> so the reader knows how much was lost. 4 KiB
 * holds any error we write ourselves, plus a quoted server reply. */
#define ZL_LOG_MSG_BYTES_MAX 4096
/* Raw bytes kept of every other string (context fields, extra keys and
 * values): a deposit id is ~80 bytes, a trace id 55. */
#define ZL_LOG_FIELD_BYTES_MAX 512
/* Raw bytes kept of the stage name given to zl_log_init(). */
#define ZL_LOG_STAGE_BYTES_MAX 64
/* Extra key/value pairs taken from one zl_log_kv() call; more are dropped
 * and the line gets "line_truncated":true. */
#define ZL_LOG_KV_FIELDS_MAX 16
/* Size of one line including the final "\n". Escaping can grow a string six
 * times (\u001f), so a hostile message may fill this before its byte limit;
 * the line then still closes properly, marked "line_truncated":true. */
#define ZL_LOG_LINE_BYTES_MAX 16384
/* Appended inside a string that was cut. */
#define ZL_LOG_TRUNCATED_MARKER "...[truncated]"

typedef enum zl_log_level {
    ZL_LOG_DEBUG = 0,
    ZL_LOG_INFO = 1,
    ZL_LOG_WARN = 2,
    ZL_LOG_ERROR = 3,
} zl_log_level;

/* Where a line comes from in the pipeline. Every field is optional: NULL
 * strings and negative numbers mean "unknown" and are omitted. Strings are
 * borrowed for the duration of the call only. */
struct zl_log_ctx {
    const char *deposit_id; /* <chain_id>:<tx_hash>:<log_index> */
    const char *topic;      /* Kafka topic the message came from */
    int32_t partition;      /* -1 unknown */
    int64_t offset;         /* -1 unknown */
    const char *trace_id;   /* W3C trace id (from traceparent) */
};

/* Initialiser for a context with nothing known:
 *     struct zl_log_ctx ctx = ZL_LOG_CTX_NONE;
 *     ctx.deposit_id = id; */
#define ZL_LOG_CTX_NONE                                                        \
    {                                                                          \
        .deposit_id = NULL, .topic = NULL, .partition = -1, .offset = -1,      \
        .trace_id = NULL                                                       \
    }

/* Sets the "stage" field of every line (copied, at most
 * ZL_LOG_STAGE_BYTES_MAX bytes; NULL leaves the field out) and the lowest
 * level written. Before any call, there is no stage and the level is info.
 * @locality main thread, before other threads start (the stage is not
 * protected against concurrent readers). */
void zl_log_init(const char *stage, zl_log_level min_level);

/* Changes the lowest level written.
 * @locality any thread (atomic). */
void zl_log_set_level(zl_log_level min_level);

/* True when a line at this level would be written: lets a caller skip
 * expensive formatting.
 * @locality any thread. */
bool zl_log_enabled(zl_log_level level);

/* Sends lines to fd instead of stderr (2), e.g. a pipe in tests. The fd stays
 * owned by the caller, who must keep it open until it sets another one.
 * Returns the previous fd.
 * @locality any thread; @locks the write mutex, so no line is split between
 * two fds. */
int zl_log_set_fd(int fd);

/* The level names in enum order, ended by NULL: the choices of the
 * ZL_LOG_LEVEL setting (config.h's ZL_CFG_ENUM), whose index is the level. */
extern const char *const zl_log_level_names[];

/* Parses "debug", "info", "warn" (or "warning"), "error", in any case.
 * Returns 0 and sets *out, or -1 (and leaves *out alone) for anything else. */
int zl_log_level_parse(const char *s, zl_log_level *out);

/* "debug", "info", "warn", "error"; "unknown" outside the enum. */
const char *zl_log_level_name(zl_log_level level);

/* Writes one line with a printf-formatted message. ctx may be NULL.
 * @locality any thread (including librdkafka and libmicrohttpd threads).
 * @locks the write mutex, briefly, around write(2). */
void zl_log(zl_log_level level, const struct zl_log_ctx *ctx, const char *fmt,
            ...) __attribute__((format(printf, 3, 4)));

/* zl_log() with a va_list, for wrappers (e.g. librdkafka's log callback). */
void zl_vlog(zl_log_level level, const struct zl_log_ctx *ctx, const char *fmt,
             va_list ap) __attribute__((format(printf, 3, 0)));

/* Writes one line whose msg is taken literally (no formatting), followed by
 * extra string fields given as key, value pairs and ended by a NULL key:
 *     zl_log_kv(ZL_LOG_WARN, &ctx, "rpc failed", "endpoint", url,
 *               "error", reason, NULL);
 * A NULL value is written as JSON null. Keys should not repeat the standard
 * field names (ts, level, stage, msg, ...): JSON readers keep only one.
 * At most ZL_LOG_KV_FIELDS_MAX pairs are written.
 * @locality any thread. @locks as zl_log(). */
void zl_log_kv(zl_log_level level, const struct zl_log_ctx *ctx,
               const char *msg, ...) __attribute__((sentinel));

/* The escaper behind every line, shared with other writers of JSON text
 * (config dump): writes src (src_len bytes, need not be NUL-terminated nor
 * valid UTF-8) as the body of a JSON string, without the quotes, into dst.
 * Control characters, '"' and '\\' are escaped; each byte that is not part of
 * a valid UTF-8 sequence (overlong forms and surrogates included) becomes
 * U+FFFD. Writes only whole characters, stopping before one that does not
 * fit; dst is always NUL-terminated when dst_size > 0.
 * Returns how many bytes of src were consumed (src_len when all fit) and sets
 * *dst_len to the bytes written, excluding the NUL.
 * @locality any thread (pure function). */
size_t zl_log_escape_json(char *dst, size_t dst_size, const char *src,
                          size_t src_len, size_t *dst_len);

#endif /* ZL_LOG_H */
