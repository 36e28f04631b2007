/* solana_tx.c: Solana legacy messages and transactions (solana_tx.h). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base58.h"
#include "solana_tx.h"
#include "zl.h"

void zl_sol_ix_begin(struct zl_sol_ix *ix, const uint8_t program[ZL_SOL_KEY_SIZE])
{
    memcpy(ix->program, program, ZL_SOL_KEY_SIZE);
    ix->naccounts = 0;
    ix->data_len = 0;
}

void zl_sol_ix_account(struct zl_sol_ix *ix, const uint8_t key[ZL_SOL_KEY_SIZE], bool signer, bool writable)
{
    ZL_ASSERT(ix->naccounts < ZL_SOL_IX_ACCOUNTS_MAX);
    struct zl_sol_account *a = &ix->accounts[ix->naccounts++];
    memcpy(a->key, key, ZL_SOL_KEY_SIZE);
    a->signer = signer;
    a->writable = writable;
}

void zl_sol_ix_put(struct zl_sol_ix *ix, const void *p, size_t n)
{
    ZL_ASSERT(n <= sizeof(ix->data) - ix->data_len);
    memcpy(ix->data + ix->data_len, p, n);
    ix->data_len += n;
}

void zl_sol_ix_u64(struct zl_sol_ix *ix, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    zl_sol_ix_put(ix, b, sizeof(b));
}

void zl_sol_known_key(const char *b58, uint8_t out[ZL_SOL_KEY_SIZE])
{
    int rc = zl_b58_decode_exact(b58, out, ZL_SOL_KEY_SIZE);
    ZL_ASSERT(rc == 0);
}

size_t zl_sol_compact_u16_encode(uint16_t v, uint8_t out[3])
{
    size_t n = 0;
    unsigned rest = v;
    for (;;) {
        uint8_t b = (uint8_t)(rest & 0x7f);
        rest >>= 7;
        if (rest == 0) {
            out[n++] = b;
            return n;
        }
        out[n++] = (uint8_t)(b | 0x80);
    }
}

size_t zl_sol_compact_u16_decode(const uint8_t *in, size_t len, uint16_t *v)
{
    unsigned val = 0;
    for (size_t i = 0; i < 3; i++) {
        if (i >= len)
            return 0;
        unsigned b = in[i];
        if (i == 2 && b > 0x03)
            return 0; /* over 16 bits */
        val |= (b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (i > 0 && b == 0)
                return 0; /* a zero last byte: not the shortest form */
            *v = (uint16_t)val;
            return i + 1;
        }
    }
    return 0;
}

int zl_sol_keypair(const uint8_t seed[32], struct zl_sol_keypair *kp)
{
    if (sodium_init() < 0)
        return -1;
    return crypto_sign_seed_keypair(kp->pub, kp->secret, seed) == 0 ? 0 : -1;
}

/* A key of the message being compiled, with its flags' union. */
struct key {
    uint8_t k[ZL_SOL_KEY_SIZE];
    bool signer, writable, payer;
};

struct keys {
    struct key v[ZL_SOL_KEYS_MAX];
    size_t n;
};

static int add_key(struct keys *ks, const uint8_t *k, bool signer, bool writable)
{
    for (size_t i = 0; i < ks->n; i++) {
        if (memcmp(ks->v[i].k, k, ZL_SOL_KEY_SIZE) == 0) {
            ks->v[i].signer |= signer;
            ks->v[i].writable |= writable;
            return 0;
        }
    }
    if (ks->n == ZL_SOL_KEYS_MAX)
        return -1;
    struct key *e = &ks->v[ks->n++];
    memcpy(e->k, k, ZL_SOL_KEY_SIZE);
    e->signer = signer;
    e->writable = writable;
    e->payer = false;
    return 0;
}

/* The SDK's order: payer, then signed writable, signed read-only, unsigned
 * writable, unsigned read-only, each by key bytes. */
static int group_of(const struct key *k)
{
    if (k->payer)
        return 0;
    return 1 + (k->signer ? 0 : 2) + (k->writable ? 0 : 1);
}

static int key_cmp(const struct key *a, const struct key *b)
{
    int ga = group_of(a), gb = group_of(b);
    if (ga != gb)
        return ga - gb;
    return memcmp(a->k, b->k, ZL_SOL_KEY_SIZE);
}

static size_t index_of(const struct keys *ks, const uint8_t *k)
{
    for (size_t i = 0; i < ks->n; i++)
        if (memcmp(ks->v[i].k, k, ZL_SOL_KEY_SIZE) == 0)
            return i;
    return ks->n; /* never: every key was added first */
}

/* Appends n bytes to m, or fails when the packet bound is reached. */
static int put(struct zl_sol_message *m, const void *p, size_t n)
{
    if (n > sizeof(m->bytes) - m->len)
        return -1;
    memcpy(m->bytes + m->len, p, n);
    m->len += n;
    return 0;
}

static int put_len(struct zl_sol_message *m, size_t v)
{
    uint8_t b[3];
    return v > 0xffff ? -1 : put(m, b, zl_sol_compact_u16_encode((uint16_t)v, b));
}

int zl_sol_compile(const uint8_t payer[ZL_SOL_KEY_SIZE], const struct zl_sol_ix *ixs, size_t nix,
                   const uint8_t blockhash[ZL_SOL_KEY_SIZE], struct zl_sol_message *m, char *err, size_t err_size)
{
    m->len = 0;
    m->nsigners = 0;
    if (nix > ZL_SOL_IX_MAX) {
        snprintf(err, err_size, "%zu instructions, at most %d", nix, ZL_SOL_IX_MAX);
        return -1;
    }
    static _Thread_local struct keys ks; /* 1.1 KiB: off the caller's stack */
    ks.n = 0;
    (void)add_key(&ks, payer, true, true);
    ks.v[0].payer = true;
    for (size_t i = 0; i < nix; i++) {
        if (ixs[i].naccounts > ZL_SOL_IX_ACCOUNTS_MAX || ixs[i].data_len > ZL_SOL_IX_DATA_MAX) {
            snprintf(err, err_size, "instruction %zu: %zu accounts and %zu data bytes, at most %d and %d", i,
                     ixs[i].naccounts, ixs[i].data_len, ZL_SOL_IX_ACCOUNTS_MAX, ZL_SOL_IX_DATA_MAX);
            return -1;
        }
        for (size_t a = 0; a < ixs[i].naccounts; a++)
            if (add_key(&ks, ixs[i].accounts[a].key, ixs[i].accounts[a].signer, ixs[i].accounts[a].writable) != 0)
                goto too_many;
        if (add_key(&ks, ixs[i].program, false, false) != 0)
            goto too_many;
    }
    /* Insertion sort: at most ZL_SOL_KEYS_MAX keys. */
    for (size_t i = 1; i < ks.n; i++) {
        struct key t = ks.v[i];
        size_t j = i;
        while (j > 0 && key_cmp(&ks.v[j - 1], &t) > 0) {
            ks.v[j] = ks.v[j - 1];
            j--;
        }
        ks.v[j] = t;
    }
    uint8_t header[3] = {0, 0, 0};
    for (size_t i = 0; i < ks.n; i++) {
        if (ks.v[i].signer) {
            header[0]++;
            header[1] += ks.v[i].writable ? 0 : 1;
            memcpy(m->signers[m->nsigners++], ks.v[i].k, ZL_SOL_KEY_SIZE);
        } else if (!ks.v[i].writable) {
            header[2]++;
        }
    }
    int bad = put(m, header, sizeof(header)) | put_len(m, ks.n);
    for (size_t i = 0; i < ks.n; i++)
        bad |= put(m, ks.v[i].k, ZL_SOL_KEY_SIZE);
    bad |= put(m, blockhash, ZL_SOL_KEY_SIZE) | put_len(m, nix);
    for (size_t i = 0; i < nix && bad == 0; i++) {
        uint8_t prog = (uint8_t)index_of(&ks, ixs[i].program);
        bad |= put(m, &prog, 1) | put_len(m, ixs[i].naccounts);
        for (size_t a = 0; a < ixs[i].naccounts; a++) {
            uint8_t idx = (uint8_t)index_of(&ks, ixs[i].accounts[a].key);
            bad |= put(m, &idx, 1);
        }
        bad |= put_len(m, ixs[i].data_len);
        if (ixs[i].data_len > 0)
            bad |= put(m, ixs[i].data, ixs[i].data_len);
    }
    if (bad != 0) {
        snprintf(err, err_size, "message larger than a transaction's %d bytes", ZL_SOL_TX_MAX);
        m->len = 0;
        return -1;
    }
    return 0;
too_many:
    snprintf(err, err_size, "more than %d distinct accounts", ZL_SOL_KEYS_MAX);
    return -1;
}

int zl_sol_sign(const struct zl_sol_message *m, const struct zl_sol_keypair *keys, size_t nkeys, uint8_t *out,
                size_t out_size, size_t *out_len, uint8_t sig0[ZL_SOL_SIG_SIZE], char *err, size_t err_size)
{
    uint8_t n[3];
    size_t nlen = zl_sol_compact_u16_encode((uint16_t)m->nsigners, n);
    size_t total = nlen + m->nsigners * ZL_SOL_SIG_SIZE + m->len;
    if (total > out_size || total > ZL_SOL_TX_MAX) {
        snprintf(err, err_size, "transaction of %zu bytes, at most %zu", total,
                 out_size < ZL_SOL_TX_MAX ? out_size : (size_t)ZL_SOL_TX_MAX);
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(err, err_size, "libsodium cannot be initialised");
        return -1;
    }
    memcpy(out, n, nlen);
    for (size_t s = 0; s < m->nsigners; s++) {
        size_t k = 0;
        while (k < nkeys && memcmp(keys[k].pub, m->signers[s], ZL_SOL_KEY_SIZE) != 0)
            k++;
        if (k == nkeys) {
            snprintf(err, err_size, "no key given for signer %zu", s);
            return -1;
        }
        uint8_t *sig = out + nlen + s * ZL_SOL_SIG_SIZE;
        crypto_sign_detached(sig, NULL, m->bytes, m->len, keys[k].secret);
        if (s == 0 && sig0 != NULL)
            memcpy(sig0, sig, ZL_SOL_SIG_SIZE);
    }
    memcpy(out + nlen + m->nsigners * ZL_SOL_SIG_SIZE, m->bytes, m->len);
    *out_len = total;
    return 0;
}
