/* Solana wire format pieces (solana_tx.h): compact-u16 against the values
 * Solana's docs give, ed25519 against RFC 8032's first test vector, and a
 * compiled message's layout. The whole transaction is checked byte for byte
 * against solders (the Solana SDK) in tests/integration/test_solana_tx.py. */
#include <stdio.h>
#include <string.h>

#include "solana_receipt.h"
#include "solana_tx.h"
#include "zltest.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        ZT_REQUIRE(sscanf(h + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
}

ZT_TEST(test_compact_u16_round_trips_and_refuses_non_canonical_forms)
{
    static const struct {
        uint16_t v;
        size_t n;
        uint8_t b[3];
    } cases[] = {
        {0x0000, 1, {0x00}},       {0x007f, 1, {0x7f}},       {0x0080, 2, {0x80, 0x01}},
        {0x00ff, 2, {0xff, 0x01}}, {0x0100, 2, {0x80, 0x02}}, {0x3fff, 2, {0xff, 0x7f}},
        {0x4000, 3, {0x80, 0x80, 0x01}}, {0xffff, 3, {0xff, 0xff, 0x03}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[3];
        ZT_EQ_INT((int)cases[i].n, (int)zl_sol_compact_u16_encode(cases[i].v, out));
        ZT_CHECK(memcmp(out, cases[i].b, cases[i].n) == 0);
        uint16_t v = 0;
        ZT_EQ_INT((int)cases[i].n, (int)zl_sol_compact_u16_decode(cases[i].b, cases[i].n, &v));
        ZT_EQ_INT(cases[i].v, v);
    }
    uint16_t v;
    ZT_EQ_INT(0, (int)zl_sol_compact_u16_decode((const uint8_t[]){0x80}, 1, &v));             /* cut short */
    ZT_EQ_INT(0, (int)zl_sol_compact_u16_decode((const uint8_t[]){0x80, 0x00}, 2, &v));       /* not minimal */
    ZT_EQ_INT(0, (int)zl_sol_compact_u16_decode((const uint8_t[]){0xff, 0xff, 0x04}, 3, &v)); /* over 16 bits */
    ZT_EQ_INT(0, (int)zl_sol_compact_u16_decode((const uint8_t[]){0x80, 0x80, 0x80, 0x01}, 4, &v));
}

ZT_TEST(test_signature_is_rfc8032_test_1)
{
    uint8_t seed[32], pub[32], want[64];
    unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
    unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub, 32);
    unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0"
          "595bbe24655141438e7a100b", want, 64);
    struct zl_sol_keypair kp;
    ZT_EQ_INT(0, zl_sol_keypair(seed, &kp));
    ZT_CHECK(memcmp(kp.pub, pub, 32) == 0);
    static struct zl_sol_message m; /* the empty message RFC 8032 signs */
    m.len = 0;
    m.nsigners = 1;
    memcpy(m.signers[0], pub, 32);
    uint8_t tx[ZL_SOL_TX_MAX], sig0[64];
    size_t len = 0;
    char err[128];
    ZT_EQ_INT(0, zl_sol_sign(&m, &kp, 1, tx, sizeof(tx), &len, sig0, err, sizeof(err)));
    ZT_EQ_INT(65, (int)len);
    ZT_EQ_INT(1, tx[0]);
    ZT_CHECK(memcmp(tx + 1, want, 64) == 0);
    ZT_CHECK(memcmp(sig0, want, 64) == 0);
}

ZT_TEST(test_a_transfer_compiles_payer_first_and_program_last)
{
    uint8_t payer[32], to[32], hash[32], data[12] = {2, 0, 0, 0, 0x40, 0x42, 0x0f, 0, 0, 0, 0, 0};
    memset(payer, 0xaa, 32);
    memset(to, 0x55, 32);
    memset(hash, 0x11, 32);
    static struct zl_sol_ix ix = {.naccounts = 2, .data_len = sizeof(data)};
    memcpy(ix.data, data, sizeof(data));
    memset(ix.program, 0, 32); /* the System Program */
    memcpy(ix.accounts[0].key, payer, 32);
    ix.accounts[0].signer = ix.accounts[0].writable = true;
    memcpy(ix.accounts[1].key, to, 32);
    ix.accounts[1].writable = true;
    static struct zl_sol_message m;
    char err[128];
    ZT_EQ_INT(0, zl_sol_compile(payer, &ix, 1, hash, &m, err, sizeof(err)));
    const uint8_t head[] = {1, 0, 1, 3};
    ZT_CHECK(memcmp(m.bytes, head, 4) == 0); /* 1 signer, 0 read-only signed, 1 read-only unsigned; 3 keys */
    ZT_CHECK(memcmp(m.bytes + 4, payer, 32) == 0 && memcmp(m.bytes + 36, to, 32) == 0);
    uint8_t zero[32] = {0};
    ZT_CHECK(memcmp(m.bytes + 68, zero, 32) == 0 && memcmp(m.bytes + 100, hash, 32) == 0);
    const uint8_t ixb[] = {1, 2, 2, 0, 1, 12}; /* one ix: program 2, 2 accounts [0, 1], 12 data bytes */
    ZT_CHECK(memcmp(m.bytes + 132, ixb, sizeof(ixb)) == 0);
    ZT_EQ_INT(132 + (int)sizeof(ixb) + 12, (int)m.len);
    ZT_EQ_INT(1, (int)m.nsigners);

    /* a signer nobody gave a key for is refused, not signed with zeros */
    struct zl_sol_keypair other;
    uint8_t seed[32] = {7};
    ZT_EQ_INT(0, zl_sol_keypair(seed, &other));
    uint8_t tx[ZL_SOL_TX_MAX];
    size_t len;
    ZT_EQ_INT(-1, zl_sol_sign(&m, &other, 1, tx, sizeof(tx), &len, NULL, err, sizeof(err)));
}

ZT_TEST(test_bounds_are_refused_with_a_reason)
{
    uint8_t payer[32] = {1}, hash[32] = {2};
    static struct zl_sol_ix ixs[ZL_SOL_IX_MAX + 1];
    static struct zl_sol_message m;
    char err[128] = "";
    ZT_EQ_INT(-1, zl_sol_compile(payer, ixs, ZL_SOL_IX_MAX + 1, hash, &m, err, sizeof(err)));
    ZT_CHECK(err[0] != '\0');
    /* more distinct accounts than a message may name */
    for (size_t i = 0; i < 3; i++) {
        ixs[i].naccounts = ZL_SOL_IX_ACCOUNTS_MAX;
        for (size_t a = 0; a < ZL_SOL_IX_ACCOUNTS_MAX; a++) {
            memset(ixs[i].accounts[a].key, 0, 32);
            ixs[i].accounts[a].key[0] = (uint8_t)(i + 10);
            ixs[i].accounts[a].key[1] = (uint8_t)a;
        }
    }
    err[0] = '\0';
    ZT_EQ_INT(-1, zl_sol_compile(payer, ixs, 3, hash, &m, err, sizeof(err)));
    ZT_CHECK(strstr(err, "distinct accounts") != NULL);
    /* data that cannot fit one packet */
    for (size_t i = 0; i < 3; i++) {
        ixs[i].naccounts = 0;
        ixs[i].data_len = ZL_SOL_IX_DATA_MAX;
    }
    err[0] = '\0';
    ZT_EQ_INT(-1, zl_sol_compile(payer, ixs, 3, hash, &m, err, sizeof(err)));
    ZT_CHECK(strstr(err, "larger than") != NULL);
}

/* The receipt's mint address is fixed by the deposit id: its seed is the
 * first 16 bytes of sha256(deposit_id) in hex (python3 -c "import hashlib;
 * print(hashlib.sha256(b'<id>').hexdigest()[:32])"), the same every time,
 * and another id gives another mint. */
ZT_TEST(test_the_receipt_seed_is_the_deposit_ids_digest)
{
    const char *id = "localnet:"
                     "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW:0";
    char seed[ZL_SOL_RECEIPT_SEED_SIZE];
    zl_sol_receipt_seed(id, seed);
    ZT_EQ_STR("e94dd95003a5d66816fb2b5fb6f7339f", seed);
    uint8_t payer[32] = {7}, a[32], b[32], c[32];
    char err[128];
    ZT_EQ_INT(0, zl_sol_receipt_mint(payer, id, a, err, sizeof(err)));
    ZT_EQ_INT(0, zl_sol_receipt_mint(payer, id, b, err, sizeof(err)));
    ZT_EQ_INT(0, zl_sol_receipt_mint(payer, "localnet:x:1", c, err, sizeof(err)));
    ZT_CHECK(memcmp(a, b, 32) == 0 && memcmp(a, c, 32) != 0);
}

/* The mint stage's step for a stored receipt transaction: send the same
 * bytes while they can still run, sign anew only once they never can and
 * no receipt exists, wait while anything is not final. */
ZT_TEST(test_the_receipt_step_signs_anew_only_when_the_stored_bytes_can_never_run)
{
    static const struct {
        struct zl_sol_receipt_seen seen;
        enum zl_sol_receipt_next want;
    } cases[] = {
        {{0}, ZL_SOL_RECEIPT_SEND},                                         /* never sent, or dropped */
        {{.nonce_moved = true}, ZL_SOL_RECEIPT_WAIT},                       /* moved, not final */
        {{.nonce_moved = true, .nonce_move_final = true}, ZL_SOL_RECEIPT_RESIGN},
        {{.receipt_seen = true, .nonce_moved = true}, ZL_SOL_RECEIPT_WAIT}, /* ours landed, not final */
        {{.receipt_seen = true, .receipt_final = true, .nonce_moved = true, .nonce_move_final = true},
         ZL_SOL_RECEIPT_DONE},
        {{.tx_landed = true}, ZL_SOL_RECEIPT_WAIT},
        {{.tx_landed = true, .tx_final = true, .tx_failed = true, .nonce_moved = true, .nonce_move_final = true},
         ZL_SOL_RECEIPT_RESIGN},
        {{.tx_landed = true, .tx_final = true, .nonce_moved = true, .nonce_move_final = true},
         ZL_SOL_RECEIPT_WAIT}, /* succeeded, final, yet no final receipt: the reads disagree */
        {{.receipt_final = true}, ZL_SOL_RECEIPT_DONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ZT_EQ_STR(zl_sol_receipt_next_name(cases[i].want),
                  zl_sol_receipt_next_name(zl_sol_receipt_next(&cases[i].seen)));
}

ZT_MAIN(test_compact_u16_round_trips_and_refuses_non_canonical_forms, test_signature_is_rfc8032_test_1,
        test_a_transfer_compiles_payer_first_and_program_last, test_bounds_are_refused_with_a_reason,
        test_the_receipt_seed_is_the_deposit_ids_digest,
        test_the_receipt_step_signs_anew_only_when_the_stored_bytes_can_never_run)
