/* solana_transfers.h: the USDT transfers into deposit token accounts that one
 * Solana transaction made, read from an RPC node's getTransaction answer
 * (encoding jsonParsed): what detect on Solana records as deposits
 * (docs/architecture.md, "Solana").
 *
 * Which instructions count: an instruction, top level or inner (a program
 * calling the token program), whose programId is SPL Token or Token-2022
 * (the "program" label is not trusted alone) and whose parsed type is
 * "transfer" or "transferChecked", into an account the caller's is_deposit
 * accepts, of the configured mint. transferChecked names its mint; a plain
 * transfer's mint is the destination's, from the answer's token balances.
 * A failed transaction (meta.err not null) moved nothing: no transfers.
 *
 * deposit_id = "<cluster>:<signature>:<instruction>", instruction being the
 * top-level index ("2") or, for an inner one, "<top-level index>.<inner
 * index>" ("2.0"). The same transfer read twice gets the same id.
 *
 * The answer is untrusted: every field is checked for type, size and
 * characters (keys base58 of 32 bytes, the signature of 64, amounts decimal
 * u64); a transaction with more matching transfers than the caller's room
 * is an error, never a truncation. Fuzzed (tests/fuzz/fuzz_solana_transfers.c).
 *
 * Ownership: out is the caller's; nothing is kept. @locality any thread.
 */
#ifndef ZL_SOLANA_TRANSFERS_H
#define ZL_SOLANA_TRANSFERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base58.h"

/* Characters of a cluster name ("mainnet-beta", "localnet"), NUL included. */
#define ZL_SOL_CLUSTER_SIZE 32
/* Characters of an instruction's place: "255.255" and a NUL, with room. */
#define ZL_SOL_IX_PLACE_SIZE 16
#define ZL_SOL_DEPOSIT_ID_SIZE (ZL_SOL_CLUSTER_SIZE + ZL_B58_TEXT_MAX + ZL_SOL_IX_PLACE_SIZE + 2)
/* Characters of a u64 in decimal, NUL included. */
#define ZL_SOL_AMOUNT_SIZE 21
/* Transfers one transaction may hold into one account: a transaction is at
 * most 1232 bytes, which holds fewer top-level transfers than this. The
 * room scan and verify keep for one transaction's. */
#define ZL_SOL_TX_TRANSFERS_MAX 64
/* Bytes of a getTransaction answer the parser reads. */
#define ZL_SOL_TX_ANSWER_MAX_BYTES (1024 * 1024)

struct zl_sol_transfer {
    char deposit_id[ZL_SOL_DEPOSIT_ID_SIZE];
    char signature[ZL_B58_TEXT_MAX];
    char place[ZL_SOL_IX_PLACE_SIZE];
    char program[ZL_B58_TEXT_MAX];     /* the token program's id */
    char source[ZL_B58_TEXT_MAX];      /* token accounts */
    char destination[ZL_B58_TEXT_MAX];
    char authority[ZL_B58_TEXT_MAX];   /* who signed the transfer ("" when not given) */
    char mint[ZL_B58_TEXT_MAX];
    char amount[ZL_SOL_AMOUNT_SIZE];   /* base units, decimal */
    int decimals;                      /* -1 when the answer does not say */
    uint64_t slot;
    int64_t block_time;                /* unix seconds, -1 when null */
};

/* Whether token_account (base58) is a registered deposit account. */
typedef bool (*zl_sol_is_deposit_fn)(void *ctx, const char *token_account);

enum zl_sol_tx_read {
    ZL_SOL_TX_READ = 0,    /* parsed: *n transfers (0 for a failed transaction) */
    ZL_SOL_TX_ABSENT = 1,  /* result null: the node does not have it (yet) */
    ZL_SOL_TX_INVALID = -1 /* not a getTransaction answer we accept: err says why */
};

enum zl_sol_tx_read zl_sol_parse_transfers(const char *body, size_t len, const char *cluster, const char *mint,
                                           zl_sol_is_deposit_fn is_deposit, void *ctx, struct zl_sol_transfer *out,
                                           size_t max, size_t *n, char *err, size_t err_size);

/* zl_sol_parse_transfers on an answer already decoded: res is its "result"
 * member (borrowed; NULL is invalid, JSON null is ZL_SOL_TX_ABSENT). What
 * zl_rpc_call hands a caller. */
enum zl_sol_tx_read zl_sol_read_transfers(const json_t *res, const char *cluster, const char *mint,
                                          zl_sol_is_deposit_fn is_deposit, void *ctx, struct zl_sol_transfer *out,
                                          size_t max, size_t *n, char *err, size_t err_size);

/* The signature a getTransaction result is for (its first), or NULL: a
 * caller checks it is the one it asked for (a node could answer another). */
const char *zl_sol_answer_signature(const json_t *res);

/* One entry of a getSignaturesForAddress answer: a transaction that touched
 * the address, newest first in the answer. */
struct zl_sol_sig {
    char signature[ZL_B58_TEXT_MAX];
    uint64_t slot;
    bool failed;       /* err not null: it moved nothing, but is still seen */
    bool finalized;    /* confirmationStatus "finalized" */
};

/* Reads a getSignaturesForAddress answer into out[0..*n), in the answer's
 * order. Every signature must be base58 of 64 bytes and every slot a
 * non-negative integer; the slots must not rise from one entry to the next
 * (the node's order is newest first: anything else is a node to distrust).
 * More entries than max is an error (ask with limit <= max). Returns 0, or
 * -1 with err and *n = 0. Fuzzed (tests/fuzz/fuzz_solana_transfers.c). */
int zl_sol_parse_signatures(const char *body, size_t len, struct zl_sol_sig *out, size_t max, size_t *n, char *err,
                            size_t err_size);

/* zl_sol_parse_signatures on the decoded "result" member (borrowed). */
int zl_sol_read_signatures(const json_t *res, struct zl_sol_sig *out, size_t max, size_t *n, char *err,
                           size_t err_size);

#endif /* ZL_SOLANA_TRANSFERS_H */
