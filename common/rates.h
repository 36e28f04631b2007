/* rates.h: the eggs-per-token rate the credit stage applies, with fallbacks
 * (seeds 002/003/004: primary source -> stale cache -> static).
 *
 * A rate is a decimal string (eggs per whole token), never a double. Each
 * lookup for a token goes, in order:
 *   1. the cache, while its value is younger than ttl_ms: the value's own
 *      source ("db" or "http") is reported;
 *   2. the primary source (a fetch function: the credit_rates table, or an
 *      HTTP price source guarded by a circuit breaker); a good answer is
 *      cached;
 *   3. when the primary is unavailable (down, breaker open, bad answer):
 *      the cached value while younger than stale_max_ms ("stale_cache");
 *   4. then the static rate, when one is configured ("static");
 *   5. else the primary's failure class: ZL_OUTAGE (pause, never DLQ).
 * A primary that answers "no rate for this token" (an empty rate) is not an
 * outage: the lookup fails with ZL_PERMANENT at once, without fallbacks, so a
 * token nobody priced is dead-lettered with the reason instead of being
 * credited at a guess. A primary's own ZL_PERMANENT (it refused the query)
 * also fails at once, with that class.
 *
 * Ownership: struct zl_rates is caller-owned storage; zl_rates_init copies
 * the options (the static rate and name strings too). The fetch opaque and
 * breaker are borrowed and must outlive it.
 * @locality one thread at a time (the stage's main thread).
 */
#ifndef ZL_RATES_H
#define ZL_RATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "envelope.h"
#include "hex.h"
#include "pg.h"
#include "zl.h"

/* Bytes of a rate with its NUL: the event's rate field. */
#define ZL_RATE_SIZE 48
/* Fraction digits a rate may have: finer than 10^-18 eggs per token is
 * noise, and a bound keeps products small. */
#define ZL_RATE_FRAC_DIGITS_MAX 18
/* Tokens whose rate is cached; the oldest entry is replaced when full. One
 * deployment credits one or a few tokens. */
#define ZL_RATES_CACHE_MAX 64
/* Largest body accepted from the HTTP price source. */
#define ZL_RATES_HTTP_BODY_BYTES_MAX (64 * 1024)

typedef enum zl_rate_source {
    ZL_RATE_SRC_DB = 0,          /* credit_rates table */
    ZL_RATE_SRC_HTTP = 1,        /* HTTP price source */
    ZL_RATE_SRC_STALE_CACHE = 2, /* primary down: cached value past its TTL */
    ZL_RATE_SRC_STATIC = 3,      /* primary down, cache too old: static rate */
} zl_rate_source;
#define ZL_RATE_SRC_COUNT 4

/* "db", "http", "stale_cache", "static" (the ledger's rate_source and the
 * metric label); "unknown" outside the enum. */
const char *zl_rate_source_name(zl_rate_source s);

/* Normalizes a rate: digits with at most one '.', leading zeros of the
 * integer part and trailing zeros of the fraction removed ("007.50" ->
 * "7.5", "3.0" -> "3", ".5" is refused). Refuses zero, more than
 * ZL_RATE_FRAC_DIGITS_MAX fraction digits, and results that do not fit
 * ZL_RATE_SIZE. Returns 0 with out set (it then passes zl_valid_rate), or -1
 * (out is ""). out_size >= ZL_RATE_SIZE. */
int zl_rate_normalize(const char *in, char *out, size_t out_size);

/* A primary source: writes the rate for token (lower-case 0x address) into
 * rate (ZL_RATE_SIZE bytes, need not be normalized) and returns ZL_OK. The
 * answer "no rate for this token" is ZL_OK with rate "" (errstr may say what
 * to do). ZL_PERMANENT: the source refused the query itself; ZL_OUTAGE or
 * ZL_TRANSIENT: the source is unavailable (errstr says why). The class is
 * the source's (pg.h's for the table) and is passed on unchanged. */
typedef zl_class (*zl_rate_fetch_fn)(void *opaque, const char *token, char *rate, size_t rate_size, char *errstr,
                                     size_t errstr_size);

struct zl_rates_opts {
    zl_rate_source primary;   /* ZL_RATE_SRC_DB or ZL_RATE_SRC_HTTP */
    zl_rate_fetch_fn fetch;   /* required */
    void *opaque;             /* passed to fetch; borrowed */
    struct zl_breaker *breaker; /* optional, borrowed: guards fetch */
    int64_t ttl_ms;           /* cache freshness; >= 0 (0: no fresh hits) */
    int64_t stale_max_ms;     /* oldest cached value used when the primary is down; >= ttl_ms */
    const char *static_rate;  /* "" or NULL: none; else a rate (copied, normalized) */
};

struct zl_rates_entry {
    char token[ZL_EVENT_ADDR_SIZE]; /* lower-case EVM address, or a Solana mint as given */
    char rate[ZL_RATE_SIZE];
    zl_rate_source source; /* where the value came from: DB or HTTP */
    int64_t fetched_ms;    /* monotonic time of the answer */
    bool used;
};

struct zl_rates {
    struct zl_rates_opts opts;
    char static_rate[ZL_RATE_SIZE];
    struct zl_rates_entry cache[ZL_RATES_CACHE_MAX];
    char last_token[ZL_EVENT_ADDR_SIZE]; /* for zl_rates_probe */
};

/* One answer. */
struct zl_rate {
    char value[ZL_RATE_SIZE]; /* normalized */
    zl_rate_source source;
    int64_t age_ms;           /* how old the value is (0 for a fresh fetch and static) */
};

/* Validates o and sets r up with an empty cache. Returns 0, or -1 with
 * errstr naming the bad option (static rate, ttl_ms, stale_max_ms). */
int zl_rates_init(struct zl_rates *r, const struct zl_rates_opts *o, char *errstr, size_t errstr_size);

/* The rate for token (any case; looked up lower-case) at now_ms (monotonic)
 * by the order above. Returns ZL_OK with *out filled, ZL_PERMANENT (no rate
 * for the token, or a malformed token), or the primary's failure class
 * (ZL_OUTAGE or ZL_TRANSIENT) when it is down and no fallback applies. */
zl_class zl_rates_get(struct zl_rates *r, const char *token, int64_t now_ms, struct zl_rate *out, char *errstr,
                      size_t errstr_size);

/* During an outage: ZL_OK when the primary answers for the last token
 * asked (through the breaker), a rate or "no rate" alike, else the class it
 * returned. With no token asked yet there is nothing to probe: ZL_OK. */
zl_class zl_rates_probe(struct zl_rates *r, int64_t now_ms, char *errstr, size_t errstr_size);

/* The credit_rates table as a primary source. Register its statement with
 * zl_rates_db_prepare() on the zl_pg passed as the fetch opaque. */
int zl_rates_db_prepare(struct zl_pg *p);
zl_class zl_rates_db_fetch(void *opaque /* struct zl_pg * */, const char *token, char *rate, size_t rate_size,
                           char *errstr, size_t errstr_size);

/* The HTTP price source: GET url_template with "{token}" replaced by the
 * token, expecting 200 and a JSON object whose "rate" member is a decimal
 * string ({"rate":"1000.5"}; a JSON number is refused: it may have passed
 * through a double). Any other answer is "unavailable". */
struct zl_rates_http {
    const char *url_template; /* borrowed */
    int64_t timeout_ms;
};
zl_class zl_rates_http_fetch(void *opaque /* struct zl_rates_http * */, const char *token, char *rate,
                             size_t rate_size, char *errstr, size_t errstr_size);

/* Parses a price source's body (len bytes, not NUL-terminated) into rate.
 * Returns 0, or -1 with errstr. Exposed for tests and the fuzz target. */
int zl_rates_parse_http_body(const char *body, size_t len, char *rate, size_t rate_size, char *errstr,
                             size_t errstr_size);

#endif /* ZL_RATES_H */
