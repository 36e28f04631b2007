/* mint.h: the mint stage's own parts, shared by its files (main.c: settings
 * and the stage table; single.c: one mint tx per deposit; batch.c: mintBatch
 * under backlog; verdict.c: what a mined tx means for each deposit).
 * Transactions themselves (fees, signing, broadcast, receipts, bumps,
 * fillers) are common/txmgr.h's.
 *
 * @locality the stage's main thread (process / process_batch).
 */
#ifndef ZL_MINT_H
#define ZL_MINT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "hex.h"
#include "nonce.h"
#include "pg.h"
#include "rpc.h"
#include "runtime.h"
#include "secp.h"
#include "txmgr.h"

struct mint_config {
    char *rpc_urls;
    int64_t rpc_timeout_ms;
    int64_t rpc_hedge_after_ms;
    bool rpc_allow_http;
    int64_t chain_id;
    char *nft_address;
    struct zl_secret signer_key;
    int tx_type;            /* index in tx_types: a zl_tx_fee_mode */
    int64_t confirmations;
    int64_t receipt_wait_ms;
    int64_t receipt_poll_ms;
    int64_t stuck_ms;
    int64_t fee_bump_pct;
    int64_t max_fee_gwei;
    int64_t max_priority_fee_gwei;
    int64_t min_priority_fee_mwei;
    int64_t gas_margin_pct;
    int64_t gas_limit;
    int64_t nft_from_block;
    int64_t janitor_ms;
    int64_t batch_max;
    int64_t inflight_max;      /* ZL_MINT_INFLIGHT_MAX: the signer's window */
    int64_t bump_after_blocks; /* ZL_MINT_BUMP_AFTER_BLOCKS */
    int64_t head_poll_ms;      /* ZL_MINT_HEAD_POLL_MS */
};

struct mint {
    struct mint_config cfg;
    struct zl_pg pg;                   /* own connection: the nonce transaction commits before broadcast */
    bool pg_inited;
    struct zl_secp_key key;
    uint64_t chain_id;
    uint8_t nft[20];
    char nft_hex[ZL_ADDRESS_HEX_SIZE]; /* lowercase */
    struct zl_rpc *rpc;                /* owned: zl_rpc_new in init, zl_rpc_free in fini */
    struct zl_txmgr tx;                /* the signer's transactions; borrows pg, key and rpc */
    /* An EVM step met an outage since the last probe that passed: only then
     * does the probe wait for the EVM endpoints (a Solana outage waits for
     * Solana's; a database outage for the database alone). */
    bool evm_outage;
    /* The head watch (mint_between): read the head until then, at most
     * every cfg.head_poll_ms (zl_now_ms() times; 0: not watching). */
    int64_t head_watch_until_ms;
    int64_t head_next_read_ms;
};

/* The stage's process(): one deposit, one mint tx (single.c). */
zl_class mint_process(void *ctx, struct zl_work *w);

/* The stage's process_batch(): mintBatch per ZL_MINT_BATCH_MAX fresh
 * deposits, stored txs driven once for all their deposits (batch.c). */
void mint_process_batch(void *ctx, struct zl_work *const *ws, size_t n);

/* The stage's between(): while deposits wait for a block, reads the head
 * every ZL_MINT_HEAD_POLL_MS, so the txmgr's block clock knows when each
 * head came and a re-check is due with the next block, not a block after
 * the defer (batch.c). */
void mint_between(void *ctx, int64_t now_ms);

/* True when the depositor address cannot receive an NFT (w->error set). */
bool mint_bad_depositor(struct zl_work *w);

/* Gas limit of a call of k mints whose estimate is `estimate`: the fixed
 * ZL_MINT_GAS_LIMIT per mint, or the estimate plus ZL_GAS_MARGIN_PCT. */
uint64_t mint_gas_limit(const struct mint *m, uint64_t estimate, size_t k);

/* Why a call would revert, as the contracts' ABIs name it (revert.h):
 * "AccessControlUnauthorizedAccount(0xf39f..., MINTER_ROLE)". When the
 * node gave no hex revert data, its own words (node_text: the estimate's
 * error) instead. */
void mint_revert_reason(const struct zl_rpc_error *re, const char *node_text, char *out, size_t out_size);

/* --- verdict.c --- */

/* The token already exists (a revert said so, or a batch skipped it):
 * ZL_OK with hash (the tx whose Transfer minted it) when the depositor owns
 * it; ZL_PERMANENT when someone else does; ZL_TRANSIENT with *none when no
 * token exists; else a read's class. w->error says why. */
zl_class mint_already_minted(struct mint *m, struct zl_work *w, const uint8_t id[32], char hash[ZL_HASH_HEX_SIZE],
                             bool *none);

/* The deposit's fate once its tx's receipt counts (see verdict.c). */
zl_class mint_verdict(struct mint *m, struct zl_work *w, const struct zl_nonce_tx *slot, const struct zl_tx_receipt *r,
                      char hash[ZL_HASH_HEX_SIZE]);

/* What a refused (nonce-filled) tx means for one of its deposits: a single
 * mint the node will never take is permanent; a batch may have been refused
 * for its size or one member, so its deposits are minted again (transient:
 * the tiers bound it). */
zl_class mint_refused_class(const struct zl_nonce_tx *slot);

/* w->out as the minted event, with the mint's hash. */
void mint_fill_out(const struct mint *m, struct zl_work *w, const char *hash);

/* Logs the mint and fills w->out. */
void mint_done(const struct mint *m, struct zl_work *w, const char *hash);

/* signer.c: the signer pool the copy leases its key from, its settings as
 * a config section for zl_runtime_main, and the start: loads the keys,
 * leases one (waiting, not ready, while every key of a pool is taken) and
 * gives m its own copy of it. Returns 0, ZL_RUNTIME_INIT_REFUSED for a wrong
 * setting, or -1 with errstr; on failure the pool is stopped. */
struct zl_signer_pool *mint_pool(void);
struct zl_config_section mint_signer_section(void);
int mint_signer_start(struct mint *m, const struct zl_runtime_env *env, char *errstr, size_t errstr_size);

/* solana.c: Solana deposits (issue 22), each driven by common/solana_mint.h.
 * Its two config sections (the shared Solana chain settings and the
 * receipt's), init (0 when Solana is not configured, ZL_RUNTIME_INIT_REFUSED
 * for a wrong setting, -1 with errstr), fini, and one deposit's step, which
 * sets w->result (and w->out when minted). */
struct zl_config_section mint_solana_chain_section(void);
struct zl_config_section mint_solana_section(void);
bool mint_solana_enabled(void);
int mint_solana_init(struct mint *m, const struct zl_runtime_env *env, char *errstr, size_t errstr_size);
void mint_solana_fini(void);
void mint_solana_process(struct mint *m, struct zl_work *w);

/* During an outage: ZL_OK when no Solana step had one since the last
 * probe that passed, or when the Solana endpoints answer again (the payer's
 * balance is read); else the read's class, errstr saying why. */
zl_class mint_solana_probe(char *errstr, size_t errstr_size);

#endif /* ZL_MINT_H */
