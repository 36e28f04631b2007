/* zl.h: the few types every common/ module shares.
 *
 * Errors are values. A function that can fail returns an int status (0 = ok,
 * -1 = failed) or a zl_class, and writes a human-readable reason into a
 * caller-owned buffer (errstr, errstr_size), like rd_kafka_conf_set(). The
 * reason says what was wrong, where, and what to do. Nothing in common/ calls
 * exit() or abort() on bad input; only main() picks an exit code.
 */
#ifndef ZL_H
#define ZL_H

#include <stddef.h>
#include <stdint.h>

/* Size of an error buffer on the stack. Long enough for a URL, a setting
 * name and a server's message. */
#define ZL_ERRSTR_SIZE 512

/* Integers as decimal text, NUL included. A 64-bit integer has at most 20
 * digits and a sign: 24 leaves room (SQL parameters, log values). A uint256
 * (token amounts, NFT token ids) has at most 78 digits: 80 with the NUL. */
#define ZL_INT64_DEC_SIZE 24
#define ZL_UINT256_DEC_DIGITS_MAX 78
#define ZL_UINT256_DEC_SIZE 80

/* Failure classes (docs/architecture.md §6): where a failed message goes. */
typedef enum zl_class {
    ZL_OK = 0,        /* done: publish the output and store the offset */
    ZL_TRANSIENT = 1, /* retry in place, then the delay tiers, then the DLQ */
    ZL_DEFER = 2,     /* not yet (e.g. confirmations): delay tiers, not a failure */
    ZL_PERMANENT = 3, /* will never succeed: DLQ at once */
    ZL_POISON = 4,    /* undecodable or invalid: DLQ at once */
    ZL_OUTAGE = 5,    /* a dependency is down: pause and retry, never DLQ */
} zl_class;

/* Returns the lower-case name used in logs, metrics and DLQ headers
 * ("transient", ...); "unknown" for a value outside the enum. */
const char *zl_class_name(zl_class c);

/* Parses a class name; returns -1 when the name is not a class. */
int zl_class_parse(const char *name, zl_class *out);

/* Milliseconds on the monotonic clock: for timeouts and breakers. */
int64_t zl_now_ms(void);

/* Milliseconds since the Unix epoch: for timestamps that leave the process. */
int64_t zl_wall_ms(void);

/* "2026-11-23T09:20:00.123Z" and its NUL. */
#define ZL_RFC3339_MS_SIZE 25

/* Writes now as RFC 3339 UTC with milliseconds ("2026-11-23T09:20:00.123Z")
 * into buf; returns buf. buf_size must be >= ZL_RFC3339_MS_SIZE. */
char *zl_rfc3339_now(char *buf, size_t buf_size);

/* Invariant check that is never compiled out (Redis's serverAssert): for
 * programmer errors only, never for bad input. Prints the expression and
 * location, then aborts, so a core dump shows where. */
#define ZL_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            zl_assert_fail(#cond, __FILE__, __LINE__);                         \
    } while (0)
void zl_assert_fail(const char *expr, const char *file, int line);

#endif /* ZL_H */
