/* zl-envelope-sample: the C envelope code as a command, for tests in other
 * languages (tests/integration/test_schemas.py) and for fuzz seeds.
 *
 *   zl-envelope-sample            prints one valid event of each kind, one
 *                                 JSON per line, in pipeline order, each
 *                                 derived from the one before and encoded by
 *                                 zl_event_encode
 *   zl-envelope-sample --solana   the same for a Solana deposit (cluster
 *                                 "localnet", mainnet's USDT mint)
 *   zl-envelope-sample --decode [SUFFIX]
 *                                 reads one JSON message per stdin line and
 *                                 prints, per line, either
 *                                   ok<TAB><suffix><TAB><canonical encoding>
 *                                 or
 *                                   error<TAB><decode error>
 *                                 decoding as SUFFIX's kind (e.g.
 *                                 "nft.pinned") or, without it, as any kind
 *
 * Exit status: 0 when every line was handled (even if decoding failed), 1 on
 * misuse or an internal failure. Guards against: the JSON Schemas and the C
 * decoder drifting apart, which --decode lets the Python tests check.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

/* Longest stdin line --decode reads: one byte more than decode accepts, so
 * an oversized message still reaches the decoder and gets its error. */
#define LINE_BYTES_MAX (ZL_EVENT_JSON_MAX_BYTES + 1)

static int set(char *dst, size_t dst_size, const char *value)
{
    int n = snprintf(dst, dst_size, "%s", value);
    return (n < 0 || (size_t)n >= dst_size) ? -1 : 0;
}

static int print_stages(struct zl_event *evp, bool solana);

static int print_event(const struct zl_event *ev)
{
    char buf[ZL_EVENT_ENCODED_MAX_BYTES], err[ZL_ERRSTR_SIZE];
    size_t len = 0;
    if (zl_event_encode(ev, buf, sizeof(buf), &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl-envelope-sample: cannot encode %s: %s\n", ev->schema, err);
        return -1;
    }
    printf("%s\n", buf);
    return 0;
}

/* The deposit of the local demo: anvil chain 31337, the test token; or a
 * Solana deposit of mainnet's USDT mint on a local cluster. The stage
 * fields after detection are the same for both families but the mint's. */
static int print_samples(bool solana)
{
    struct zl_event ev;
    int bad = 0;
    zl_event_init(&ev, ZL_TOPIC_DETECTED);
    if (solana) {
        bad |= set(ev.chain, sizeof(ev.chain), "localnet");
        bad |= set(ev.tx_hash, sizeof(ev.tx_hash),
                   "2RF3ugPdKMojzm2TzjYTL5x8zvFuUMQcJyK3utdX5Z7hRKmcKZjRR76nznazgtcFwr1r2os67PN1CXHF6eHNass7");
        bad |= set(ev.instruction, sizeof(ev.instruction), "2.0");
        ev.block_number = 4242;
        bad |= set(ev.token, sizeof(ev.token), "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB");
        bad |= set(ev.from, sizeof(ev.from), "2skA1F74tmpvHhp2HCixEPqW2EpaLonyYWosP13KfRSv");
        bad |= set(ev.to, sizeof(ev.to), "4YnWN1JmDyMbDeeRYnpm1rWVeaDsgZvC7WuowGHv7zSy");
        bad |= set(ev.user_id, sizeof(ev.user_id), "user_1");
        bad |= set(ev.amount, sizeof(ev.amount), "250000000");
        bad |= zl_sol_deposit_id_format(ev.deposit_id, sizeof(ev.deposit_id), ev.chain, ev.tx_hash, ev.instruction);
        if (bad != 0) {
            fprintf(stderr, "zl-envelope-sample: a sample value does not fit its field\n");
            return -1;
        }
        return print_stages(&ev, true);
    }
    ev.chain_id = 31337;
    ev.log_index = 1;
    ev.block_number = 42;
    bad |= set(ev.tx_hash, sizeof(ev.tx_hash),
               "0x8a1bc3b3e5f1c7d0a9e4b2f6c8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192");
    bad |= set(ev.block_hash, sizeof(ev.block_hash),
               "0x2f7e4c1d9b8a6f5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6");
    bad |= set(ev.token, sizeof(ev.token), "0x5FbDB2315678afecb367f032d93F642f64180aa3");
    bad |= set(ev.from, sizeof(ev.from), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    bad |= set(ev.to, sizeof(ev.to), "0x90f79bf6eb2c4f870365e785982e1f161e6e1a1b");
    bad |= set(ev.user_id, sizeof(ev.user_id), "user_1");
    bad |= set(ev.amount, sizeof(ev.amount), "250000000000000000000");
    bad |= zl_deposit_id_format(ev.deposit_id, sizeof(ev.deposit_id), ev.chain_id, ev.tx_hash,
                                ev.log_index);
    if (bad != 0) {
        fprintf(stderr, "zl-envelope-sample: a sample value does not fit its field\n");
        return -1;
    }
    return print_stages(&ev, false);
}

/* Prints ev (detected), then each later kind derived from it. */
static int print_stages(struct zl_event *evp, bool solana)
{
    struct zl_event ev = *evp;
    int bad = 0;
    if (print_event(&ev) != 0)
        return -1;

    zl_event_derive(&ev, &ev, ZL_TOPIC_VERIFIED);
    ev.confirmations = 12;
    if (print_event(&ev) != 0)
        return -1;

    zl_event_derive(&ev, &ev, ZL_TOPIC_PINNED);
    bad |= set(ev.metadata_cid, sizeof(ev.metadata_cid),
               "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    bad |= set(ev.token_uri, sizeof(ev.token_uri),
               "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    if (bad != 0 || print_event(&ev) != 0)
        return -1;

    zl_event_derive(&ev, &ev, ZL_TOPIC_MINTED);
    if (solana) {
        bad |= set(ev.mint_tx_hash, sizeof(ev.mint_tx_hash),
                   "3nNZ8RkXbKTp8qsDmPUhcLWM2Cf9WwEhx4nRwuVhQmJJi8PaVXQqBw4p2ktPZhn8zGm7yTzBXHHs7X5pR3C7Cs2S");
        bad |= set(ev.token_id, sizeof(ev.token_id), "0");
        bad |= set(ev.nft_contract, sizeof(ev.nft_contract), "2Si1axEmQqaDZG1nwrgn5SV2xa7Bc2k8jGqsoR764zRk");
    } else {
        bad |= set(ev.mint_tx_hash, sizeof(ev.mint_tx_hash),
                   "0xc0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00");
        bad |= set(ev.token_id, sizeof(ev.token_id),
                   "98457210948375019283740192837401928374019283740192837401928374019283740192");
        bad |= set(ev.nft_contract, sizeof(ev.nft_contract), "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
    }
    if (bad != 0 || print_event(&ev) != 0)
        return -1;

    zl_event_derive(&ev, &ev, ZL_TOPIC_CREDITED);
    bad |= set(ev.credit_eggs, sizeof(ev.credit_eggs), "250");
    bad |= set(ev.credit_id, sizeof(ev.credit_id), "3d8c1a52-6f0e-4b7a-9c2d-1e5f7a9b0c3d");
    bad |= set(ev.rate, sizeof(ev.rate), "0.000000000000000001");
    if (bad != 0 || print_event(&ev) != 0)
        return -1;
    return 0;
}

static int decode_lines(zl_topic_kind kind)
{
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    while ((n = getline(&line, &line_cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > LINE_BYTES_MAX)
            len = LINE_BYTES_MAX; /* still over decode's limit: it says so */
        struct zl_event ev;
        char err[ZL_ERRSTR_SIZE], out[ZL_EVENT_ENCODED_MAX_BYTES];
        size_t out_len = 0;
        if (zl_event_decode(kind, line, len, &ev, err, sizeof(err)) != 0) {
            printf("error\t%s\n", err);
            continue;
        }
        if (zl_event_encode(&ev, out, sizeof(out), &out_len, err, sizeof(err)) != 0) {
            /* Decode accepted what encode refuses: the two checks differ. */
            fprintf(stderr, "zl-envelope-sample: decoded event does not re-encode: %s\n", err);
            free(line);
            return -1;
        }
        printf("ok\t%s\t%s\n", zl_topic_kind_suffix(ev.kind), out);
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return print_samples(false) == 0 ? 0 : 1;
    if (argc == 2 && strcmp(argv[1], "--solana") == 0)
        return print_samples(true) == 0 ? 0 : 1;
    if (strcmp(argv[1], "--decode") == 0 && argc <= 3) {
        zl_topic_kind kind = ZL_TOPIC_ANY;
        if (argc == 3 && zl_topic_kind_from_suffix(argv[2], &kind) != 0) {
            fprintf(stderr, "zl-envelope-sample: unknown kind \"%s\" (expected e.g. "
                            "deposits.detected, nft.pinned)\n", argv[2]);
            return 1;
        }
        return decode_lines(kind) == 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: zl-envelope-sample [--solana | --decode [SUFFIX]]\n");
    return 1;
}
