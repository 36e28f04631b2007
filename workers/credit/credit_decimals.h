/* credit_decimals.h: the decimals the credit stage computes eggs with, per
 * token, and their check against the decimals detect read from the chain
 * (token_decimals, ledger.h).
 *
 * With ZL_TOKENS each token has its own configured decimals, and a deposit
 * of a token not in the list is refused (permanent: verify should have
 * dead-lettered it; the row says which token it is). Without ZL_TOKENS every
 * token is credited with ZL_TOKEN_DECIMALS, as before the list existed.
 *
 * @locality the stage's main thread (the runtime's connection is used).
 */
#ifndef ZL_CREDIT_DECIMALS_H
#define ZL_CREDIT_DECIMALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "facts.h"
#include "ledger.h"
#include "pg.h"
#include "runtime.h"
#include "tokens.h"

/* Tokens whose recorded decimals matched the setting: not looked up again.
 * When full, further tokens are looked up at every deposit (slower, never
 * unchecked). */
#define CREDIT_TOKENS_CHECKED_MAX 64

struct credit_checked_token {
    uint64_t chain_id;
    char token[ZL_LEDGER_TOKEN_SIZE];
};

/* Zero-initialised, then `configured` set from ZL_TOKEN_DECIMALS and
 * `tokens` from ZL_TOKENS (n = 0 when unset). */
struct credit_decimals {
    int configured;
    struct zl_tokens tokens;
    struct credit_checked_token checked[CREDIT_TOKENS_CHECKED_MAX];
    size_t nchecked;
    /* The token whose difference paused the stage, probed until it matches. */
    bool held;
    uint64_t held_chain_id;
    char held_token[ZL_LEDGER_TOKEN_SIZE];
};

/* At start, on a short connection of its own (the runtime's is made after
 * init): returns ZL_RUNTIME_INIT_REFUSED with errstr naming the token, the configured and the
 * chain's value when a recorded token differs (every recorded token without
 * ZL_TOKENS; each listed token with it), so the stage refuses to start; -1
 * when its statements cannot be registered; 0 otherwise. A database that does not answer is logged and left to
 * credit_decimals_check. */
int credit_decimals_at_start(const struct credit_decimals *d, const struct zl_runtime_env *env, char *errstr,
                             size_t errstr_size);

/* The deposit's token against the setting, until it has matched once.
 * Returns ZL_OK with *decimals set to credit with (also when detect has not
 * recorded the token yet: logged, looked up again next time), ZL_PERMANENT
 * for a token ZL_TOKENS does not list, ZL_OUTAGE with errstr naming the
 * token and both values on a difference (pause: nothing is credited with a
 * wrong value, nothing goes to the DLQ), or a database failure's class. */
zl_class credit_decimals_check(struct credit_decimals *d, struct zl_pg *pg, const struct zl_facts *f, int *decimals,
                               char *errstr, size_t errstr_size);

/* During an outage: ZL_OUTAGE with errstr while the token that paused the
 * stage still differs (so the pause holds instead of flapping), ZL_OK once
 * it matches or when no token paused it; a database failure's class. */
zl_class credit_decimals_probe(struct credit_decimals *d, struct zl_pg *pg, char *errstr, size_t errstr_size);

#endif
