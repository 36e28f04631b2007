/* tokens.h: the deposit tokens of a chain, one list shared by detect, verify,
 * credit, zl-audit and zl-admin (ZL_TOKENS).
 *
 * An operator may take several ERC-20 tokens on one chain (USDT and USDC on
 * BSC). Each has its own contract, its own decimals and its own minimum; its
 * rate is looked up by its address (rates.h). The list is one setting:
 *
 *   ZL_TOKENS=SYMBOL:ADDRESS:DECIMALS[:MIN_AMOUNT],...
 *   ZL_TOKENS=USDT:0x55d398326f99059ff775485246999027b3197955:18:1000000000000000000,
 *             USDC:0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d:18:1000000000000000000
 *
 * DECIMALS is what the operator believes decimals() returns; detect reads the
 * chain's value at start and refuses to start when they differ, and credit
 * computes eggs with it (checked against what detect recorded), so a wrong
 * value never credits. MIN_AMOUNT is in the token's smallest unit (a token
 * with 6 decimals needs a minimum 10^12 smaller than one with 18); without it
 * the stage's default applies (verify: ZL_MIN_AMOUNT).
 *
 * The older single-token settings still work: ZL_TOKEN_ADDRESS alone is a
 * list of one token named "TOKEN" whose decimals are not configured (-1:
 * recorded from the chain, not checked, as before ZL_TOKENS). Setting both is
 * refused: which one counts would be a guess.
 *
 * Ownership: struct zl_tokens is plain caller-owned storage (no pointers);
 * nothing here allocates. @locality any thread (pure functions).
 */
#ifndef ZL_TOKENS_H
#define ZL_TOKENS_H

#include <stddef.h>

#include "hex.h"
#include "zl.h"

/* Tokens per chain at most: each is one eth_getLogs per detect step. */
#define ZL_TOKENS_MAX 16
/* Bytes of a symbol with its NUL: [A-Za-z0-9._-], 1 to 15 characters. */
#define ZL_TOKEN_SYMBOL_SIZE 16
/* Bytes of a ZL_TOKENS value at most (16 entries of ~150 bytes). */
#define ZL_TOKENS_SPEC_MAX 4096
/* decimals when only ZL_TOKEN_ADDRESS names the token. */
#define ZL_TOKEN_DECIMALS_UNSET (-1)

/* The ZL_TOKENS entry of a binary's settings table (config.h: ZL_CFG_STR,
 * default ""), one text for every binary that reads the list; `use` says
 * what this binary does with it. */
#define ZL_TOKENS_SETTING(use, offset)                                                                          \
    {"ZL_TOKENS", ZL_CFG_STR, "",                                                                              \
     "deposit tokens, SYMBOL:ADDRESS:DECIMALS[:MIN_AMOUNT] comma-separated, the same value for every binary: " use, \
     offset, 0, 0}

struct zl_token {
    char symbol[ZL_TOKEN_SYMBOL_SIZE];
    char address[ZL_ADDRESS_HEX_SIZE];    /* lower-case 0x + 40 hex */
    int decimals;                         /* 0..255, or ZL_TOKEN_DECIMALS_UNSET */
    char min_amount[ZL_UINT256_DEC_SIZE]; /* canonical decimal, smallest unit */
};

struct zl_tokens {
    struct zl_token t[ZL_TOKENS_MAX];
    size_t n;
};

/* The list a stage runs with. spec is ZL_TOKENS ("" or NULL: unset),
 * legacy_address ZL_TOKEN_ADDRESS ("" or NULL: unset); default_min fills
 * entries without a MIN_AMOUNT (NULL: "1"). Neither set gives an empty list
 * (n = 0; the caller decides whether it may run without one). Returns 0, or
 * -1 with errstr naming the entry and what is wrong with it (bad symbol,
 * address, decimals or minimum, a repeated symbol or address, more than
 * ZL_TOKENS_MAX, both settings given); *out is then unspecified. */
int zl_tokens_load(struct zl_tokens *out, const char *spec, const char *legacy_address, const char *default_min,
                   char *errstr, size_t errstr_size);

/* The entry for address (any case), or NULL when it is not in the list. */
const struct zl_token *zl_tokens_find(const struct zl_tokens *ts, const char *address);

/* "USDT (0x55d3...7955)" for messages: writes at most out_size bytes. */
void zl_token_label(const struct zl_token *t, char *out, size_t out_size);

#endif /* ZL_TOKENS_H */
