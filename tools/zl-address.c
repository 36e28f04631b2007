/* zl-address: registers deposit addresses and the users they credit.
 *
 * Usage:
 *   zl-address add ADDRESS USER_ID [--chain-id N]   add (or confirm) one address
 *   zl-address list [--chain-id N]                  print "address user_id" lines
 *   ZL_PG_DSN   the database (required); ZL_CHAIN_ID default chain (31337)
 * Addresses are stored lower-case (deposit_addresses, migration 001). Adding
 * an address that already belongs to the same user is not an error (scripts
 * may re-run); one that belongs to another user is refused: moving an address
 * between users would credit the wrong account.
 * Exit: 0 ok, 1 refused or failed, 2 usage or connection error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "chain.h"
#include "envelope.h"
#include "pg.h"

static int usage(void)
{
    fprintf(stderr, "usage: zl-address add ADDRESS USER_ID [--chain-id N]\n"
                    "       zl-address list [--chain-id N]\n"
                    "ZL_PG_DSN names the database; ZL_CHAIN_ID the default chain (31337)\n");
    return 2;
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

static int address_main(int argc, char **argv)
{
    const char *dsn = getenv("ZL_PG_DSN");
    long long chain = 31337;
    const char *env_chain = getenv("ZL_CHAIN_ID");
    if (env_chain != NULL && env_chain[0] != '\0' && parse_chain(env_chain, &chain) != 0) {
        fprintf(stderr, "zl-address: ZL_CHAIN_ID \"%s\" is not a chain id\n", env_chain);
        return 2;
    }
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--chain-id") == 0 && i + 1 < argc) {
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
    zl_pg_add_stmt(&pg, "addr_add",
                   "INSERT INTO deposit_addresses (chain_id, address, user_id) VALUES ($1, $2, $3)"
                   " ON CONFLICT (chain_id, address) DO UPDATE SET user_id = deposit_addresses.user_id"
                   " RETURNING user_id",
                   3);
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
        const char *vals[3] = {chain_text, addr, pos[2]};
        PGresult *r = zl_pg_prepared(&pg, "addr_add", 3, vals, PGRES_TUPLES_OK, &c, err, sizeof(err));
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
