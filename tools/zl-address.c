/* zl-address: registers deposit addresses and the users they credit.
 *
 * Usage:
 *   zl-address add ADDRESS USER_ID [--chain-id N] [--since-block N]
 *                                  add (or confirm) one address
 *   zl-address list [--chain-id N] print "address user_id" lines
 *   ZL_PG_DSN   the database (required); ZL_CHAIN_ID default chain (31337)
 *   ZL_ADDRESS_LOOKBACK_BLOCKS  blocks before the detector's cursor that a
 *               new address is scanned from without --since-block (10000)
 * Addresses are stored lower-case (deposit_addresses, migration 001). Adding
 * an address that already belongs to the same user is not an error (scripts
 * may re-run); one that belongs to another user is refused: moving an address
 * between users would credit the wrong account.
 *
 * Late registration (migration 008): an address is often handed to a user
 * before it is registered, and the user may pay at once. So `add` records
 * the first block the address must be scanned from (scan_from_block):
 * --since-block N, or else ZL_ADDRESS_LOOKBACK_BLOCKS before the furthest
 * detector cursor of the chain (the block detect has reached; no node is
 * needed here). detect backfills the address from there up to where its live
 * scan took the address over. No cursor yet (detect never ran on the chain):
 * nothing to backfill, the live scan covers the address. Adding the address
 * again with an earlier --since-block widens its range (detect backfills the
 * difference); a later one changes nothing.
 *
 * Solana (issue 22, migration 020):
 *   zl-address add-solana WALLET USER_ID --cluster C --mint M [--token-program P]
 *       registers the associated token account of WALLET for the USDT mint M
 *       (token program P: SPL Token by default, or Token-2022) as USER_ID's
 *       deposit account on cluster C, and prints it: the address the user
 *       pays into. Its scan starts from its first transaction, so a payment
 *       made before registration is read like any other.
 *   zl-address list-solana --cluster C --mint M   "token_account wallet user_id" lines
 * Exit: 0 ok, 1 refused or failed, 2 usage or connection error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base58.h"
#include "boot.h"
#include "chain.h"
#include "envelope.h"
#include "pg.h"
#include "solana_addr.h"
#include "solana_receipt.h"

/* Blocks before the detector's cursor that a new address is scanned from:
 * ~8 hours of BSC, ~33 hours of Ethereum. Registration is usually seconds
 * to minutes late; support passes --since-block for anything older. */
#define ADDRESS_LOOKBACK_BLOCKS_DEFAULT 10000

static int usage(void)
{
    fprintf(stderr, "usage: zl-address add ADDRESS USER_ID [--chain-id N] [--since-block N]\n"
                    "       zl-address list [--chain-id N]\n"
                    "       zl-address add-solana WALLET USER_ID --cluster C --mint M [--token-program P]\n"
                    "       zl-address list-solana --cluster C --mint M\n"
                    "ZL_PG_DSN names the database; ZL_CHAIN_ID the default chain (31337);\n"
                    "ZL_ADDRESS_LOOKBACK_BLOCKS (%d) the blocks before detect's cursor a new address\n"
                    "is scanned from without --since-block\n",
            ADDRESS_LOOKBACK_BLOCKS_DEFAULT);
    return 2;
}

/* A block number: 0 .. 2^53 - 1. */
static int parse_block(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || (unsigned long long)v > ZL_JSON_SAFE_INT_MAX)
        return -1;
    *out = v;
    return 0;
}

static int parse_chain(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0 || (unsigned long long)v > ZL_JSON_SAFE_INT_MAX)
        return -1;
    *out = v;
    return 0;
}

/* The Solana forms (see the top of this file). */
static int solana_main(int argc, char **argv, const char *dsn)
{
    const char *cluster = NULL, *mint = NULL, *program = ZL_SOL_TOKEN_PROGRAM;
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cluster") == 0 && i + 1 < argc)
            cluster = argv[++i];
        else if (strcmp(argv[i], "--mint") == 0 && i + 1 < argc)
            mint = argv[++i];
        else if (strcmp(argv[i], "--token-program") == 0 && i + 1 < argc)
            program = argv[++i];
        else if (argv[i][0] == '-' || npos >= 3)
            return usage();
        else
            pos[npos++] = argv[i];
    }
    bool add = strcmp(pos[0], "add-solana") == 0;
    if ((!(add && npos == 3) && !(!add && npos == 1)) || cluster == NULL || mint == NULL)
        return usage();
    if (!zl_valid_sol_cluster(cluster) || !zl_valid_sol_key(mint) || !zl_valid_sol_key(program)) {
        fprintf(stderr, "zl-address: --cluster must be a cluster name, --mint and --token-program base58 keys\n");
        return 2;
    }
    char account[ZL_B58_TEXT_MAX] = "";
    if (add) {
        if (!zl_valid_sol_key(pos[1]) || !zl_valid_user_id(pos[2])) {
            fprintf(stderr, "zl-address: WALLET must be a base58 key of 32 bytes, USER_ID 1..64 of [A-Za-z0-9_.:-]\n");
            return 1;
        }
        uint8_t w[ZL_SOL_KEY_SIZE], m[ZL_SOL_KEY_SIZE], p[ZL_SOL_KEY_SIZE], ata[ZL_SOL_KEY_SIZE];
        char err[ZL_ERRSTR_SIZE];
        if (zl_b58_decode_exact(pos[1], w, sizeof(w)) != 0 || zl_b58_decode_exact(mint, m, sizeof(m)) != 0 ||
            zl_b58_decode_exact(program, p, sizeof(p)) != 0 ||
            zl_sol_associated_token_account(w, m, p, ata, err, sizeof(err)) != 0 ||
            zl_b58_encode(ata, sizeof(ata), account, sizeof(account)) != 0) {
            fprintf(stderr, "zl-address: no associated token account for %s\n", pos[1]);
            return 1;
        }
    }
    struct zl_pg pg;
    char err[ZL_ERRSTR_SIZE];
    if (zl_pg_init(&pg, dsn, 5000) != 0)
        return 2;
    /* An account already registered keeps its user: the caller checks the
     * owner RETURNING gives, as for EVM addresses. */
    zl_pg_add_stmt(&pg, "sol_add",
                   "INSERT INTO sol_deposit_accounts (cluster, mint, token_account, owner, user_id)"
                   " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cluster, mint, token_account)"
                   " DO UPDATE SET user_id = sol_deposit_accounts.user_id RETURNING user_id",
                   5);
    zl_pg_add_stmt(&pg, "sol_list",
                   "SELECT token_account, owner, user_id FROM sol_deposit_accounts WHERE cluster = $1 AND mint = $2"
                   " ORDER BY token_account",
                   2);
    if (zl_pg_ensure(&pg, err, sizeof(err)) != ZL_OK) {
        fprintf(stderr, "zl-address: %s\n", err);
        zl_pg_close(&pg);
        return 2;
    }
    int rc = 0;
    zl_class c;
    if (add) {
        const char *vals[5] = {cluster, mint, account, pos[1], pos[2]};
        PGresult *r = zl_pg_prepared(&pg, "sol_add", 5, vals, PGRES_TUPLES_OK, &c, err, sizeof(err));
        if (r == NULL) {
            fprintf(stderr, "zl-address: %s\n", err);
            rc = 1;
        } else if (strcmp(PQgetvalue(r, 0, 0), pos[2]) != 0) {
            fprintf(stderr, "zl-address: %s already belongs to user %s on %s; refused\n", account, PQgetvalue(r, 0, 0),
                    cluster);
            rc = 1;
        } else {
            printf("%s %s\n", account, pos[2]);
        }
        PQclear(r);
    } else {
        const char *vals[2] = {cluster, mint};
        PGresult *r = zl_pg_prepared(&pg, "sol_list", 2, vals, PGRES_TUPLES_OK, &c, err, sizeof(err));
        if (r == NULL) {
            fprintf(stderr, "zl-address: %s\n", err);
            rc = 1;
        } else {
            for (int i = 0; i < PQntuples(r); i++)
                printf("%s %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
        }
        PQclear(r);
    }
    zl_pg_close(&pg);
    return rc;
}

static int address_main(int argc, char **argv)
{
    const char *dsn = getenv("ZL_PG_DSN");
    if (argc > 1 && (strcmp(argv[1], "add-solana") == 0 || strcmp(argv[1], "list-solana") == 0))
        return dsn == NULL || dsn[0] == '\0' ? usage() : solana_main(argc, argv, dsn);
    long long chain = 31337;
    const char *env_chain = getenv("ZL_CHAIN_ID");
    if (env_chain != NULL && env_chain[0] != '\0' && parse_chain(env_chain, &chain) != 0) {
        fprintf(stderr, "zl-address: ZL_CHAIN_ID \"%s\" is not a chain id\n", env_chain);
        return 2;
    }
    long long lookback = ADDRESS_LOOKBACK_BLOCKS_DEFAULT;
    const char *env_lookback = getenv("ZL_ADDRESS_LOOKBACK_BLOCKS");
    if (env_lookback != NULL && env_lookback[0] != '\0' && parse_block(env_lookback, &lookback) != 0) {
        fprintf(stderr, "zl-address: ZL_ADDRESS_LOOKBACK_BLOCKS \"%s\" is not a number of blocks (0..2^53-1)\n",
                env_lookback);
        return 2;
    }
    long long since = -1; /* none given */
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--since-block") == 0 && i + 1 < argc) {
            if (parse_block(argv[++i], &since) != 0) {
                fprintf(stderr, "zl-address: --since-block \"%s\" is not a block number\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--chain-id") == 0 && i + 1 < argc) {
            if (parse_chain(argv[++i], &chain) != 0) {
                fprintf(stderr, "zl-address: --chain-id \"%s\" is not a chain id\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' || npos >= 3) {
            return usage();
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (npos == 0 || dsn == NULL || dsn[0] == '\0')
        return usage();
    bool add = strcmp(pos[0], "add") == 0;
    if (!(add && npos == 3) && !(strcmp(pos[0], "list") == 0 && npos == 1))
        return usage();

    char addr[ZL_ADDRESS_HEX_SIZE] = "";
    if (add) {
        if (zl_hex_lower(pos[1], ZL_ADDRESS_HEX_DIGITS, addr, sizeof(addr)) != 0) {
            fprintf(stderr, "zl-address: \"%s\" is not a 0x-prefixed 20-byte hex address\n", pos[1]);
            return 1;
        }
        if (!zl_valid_user_id(pos[2])) {
            fprintf(stderr, "zl-address: user id \"%s\" must be 1..64 of [A-Za-z0-9_.:-]\n", pos[2]);
            return 1;
        }
    }
    struct zl_pg pg;
    char err[ZL_ERRSTR_SIZE];
    if (zl_pg_init(&pg, dsn, 5000) != 0)
        return 2;
    /* The owner is never changed (its check is the caller's, from
     * RETURNING). For the same owner an earlier first block widens the
     * range, and a new seq makes detect read the row again and backfill it. */
    zl_pg_add_stmt(&pg, "addr_add",
                   "INSERT INTO deposit_addresses (chain_id, address, user_id, scan_from_block)"
                   " VALUES ($1, $2, $3, COALESCE($4::bigint, (SELECT GREATEST(max(block_number) - $5::bigint, 0)"
                   "   FROM detector_cursor WHERE chain_id = $1::bigint)))"
                   " ON CONFLICT (chain_id, address) DO UPDATE SET"
                   " seq = CASE WHEN deposit_addresses.user_id = EXCLUDED.user_id"
                   "   AND EXCLUDED.scan_from_block IS NOT NULL AND (deposit_addresses.scan_from_block IS NULL"
                   "   OR EXCLUDED.scan_from_block < deposit_addresses.scan_from_block)"
                   "   THEN nextval(pg_get_serial_sequence('deposit_addresses', 'seq')) ELSE deposit_addresses.seq END,"
                   " scan_from_block = CASE WHEN deposit_addresses.user_id = EXCLUDED.user_id"
                   "   THEN LEAST(deposit_addresses.scan_from_block, EXCLUDED.scan_from_block)"
                   "   ELSE deposit_addresses.scan_from_block END"
                   " RETURNING user_id, scan_from_block",
                   5);
    zl_pg_add_stmt(&pg, "addr_list",
                   "SELECT address, user_id FROM deposit_addresses WHERE chain_id = $1 ORDER BY address", 1);
    if (zl_pg_ensure(&pg, err, sizeof(err)) != ZL_OK) {
        fprintf(stderr, "zl-address: %s\n", err);
        zl_pg_close(&pg);
        return 2;
    }
    char chain_text[ZL_INT64_DEC_SIZE];
    snprintf(chain_text, sizeof(chain_text), "%lld", chain);
    int rc = 0;
    zl_class c;
    if (add) {
        char since_text[ZL_INT64_DEC_SIZE], lookback_text[ZL_INT64_DEC_SIZE];
        snprintf(since_text, sizeof(since_text), "%lld", since);
        snprintf(lookback_text, sizeof(lookback_text), "%lld", lookback);
        const char *vals[5] = {chain_text, addr, pos[2], since >= 0 ? since_text : NULL, lookback_text};
        PGresult *r = zl_pg_prepared(&pg, "addr_add", 5, vals, PGRES_TUPLES_OK, &c, err, sizeof(err));
        if (r == NULL) {
            fprintf(stderr, "zl-address: %s\n", err);
            rc = 1;
        } else {
            const char *owner = PQgetvalue(r, 0, 0);
            if (strcmp(owner, pos[2]) != 0) {
                fprintf(stderr, "zl-address: %s already belongs to user %s on chain %s; refused\n", addr, owner,
                        chain_text);
                rc = 1;
            } else {
                printf("%s %s\n", addr, owner);
                if (PQgetisnull(r, 0, 1))
                    fprintf(stderr, "zl-address: chain %s not scanned yet: the live scan covers %s\n", chain_text,
                            addr);
                else
                    fprintf(stderr, "zl-address: %s is scanned from block %s (detect backfills what it passed)\n",
                            addr, PQgetvalue(r, 0, 1));
            }
            PQclear(r);
        }
    } else {
        const char *vals[1] = {chain_text};
        PGresult *r = zl_pg_prepared(&pg, "addr_list", 1, vals, PGRES_TUPLES_OK, &c, err, sizeof(err));
        if (r == NULL) {
            fprintf(stderr, "zl-address: %s\n", err);
            rc = 1;
        } else {
            for (int i = 0; i < PQntuples(r); i++)
                printf("%s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
            PQclear(r);
        }
    }
    zl_pg_close(&pg);
    return rc;
}

/* The start-up every binary shares (boot.h), then the command: its
 * arguments are all its own, its settings come from the environment. */
int main(int argc, char **argv)
{
    return zl_boot_command("zl-address", argc, argv, address_main);
}
