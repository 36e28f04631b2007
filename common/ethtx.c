#include "ethtx.h"

#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "keccak.h"
#include "rlp.h"

/* Writes the transaction's fields, and the signature when sig != NULL
 * (legacy unsigned: EIP-155's chain_id, 0, 0 in its place). */
static void encode_fields(struct zl_rlp *r, const struct zl_tx *tx, const uint8_t *sig_r, const uint8_t *sig_s,
                          uint64_t v)
{
    zl_rlp_list_begin(r);
    if (tx->type == ZL_TX_EIP1559) {
        zl_rlp_uint(r, tx->chain_id);
        zl_rlp_uint(r, tx->nonce);
        zl_rlp_uint(r, tx->max_priority_fee_wei);
        zl_rlp_uint(r, tx->max_fee_wei);
    } else {
        zl_rlp_uint(r, tx->nonce);
        zl_rlp_uint(r, tx->max_fee_wei);
    }
    zl_rlp_uint(r, tx->gas_limit);
    zl_rlp_bytes(r, tx->to, 20);
    zl_rlp_uint(r, tx->value_wei);
    zl_rlp_bytes(r, tx->data, tx->data_len);
    if (tx->type == ZL_TX_EIP1559) {
        zl_rlp_list_begin(r); /* access list: always empty */
        zl_rlp_list_end(r);
    }
    if (sig_r != NULL) {
        zl_rlp_uint(r, v);
        zl_rlp_u256(r, sig_r);
        zl_rlp_u256(r, sig_s);
    } else if (tx->type == ZL_TX_LEGACY) {
        zl_rlp_uint(r, tx->chain_id);
        zl_rlp_uint(r, 0);
        zl_rlp_uint(r, 0);
    }
    zl_rlp_list_end(r);
}

/* Encodes (type byte +) RLP into buf. Returns 0 with *len_out, or -1. */
static int encode(const struct zl_tx *tx, const uint8_t *sig_r, const uint8_t *sig_s, uint64_t v, uint8_t *buf,
                  size_t cap, size_t *len_out)
{
    size_t off = 0;
    if (tx->type == ZL_TX_EIP1559) {
        if (cap < 1)
            return -1;
        buf[0] = 0x02;
        off = 1;
    }
    struct zl_rlp r;
    zl_rlp_init(&r, buf + off, cap - off);
    encode_fields(&r, tx, sig_r, sig_s, v);
    size_t n;
    if (zl_rlp_finish(&r, &n) != 0)
        return -1;
    *len_out = off + n;
    return 0;
}

static int check_tx(const struct zl_tx *tx, char *errstr, size_t errstr_size)
{
    if (tx->type != ZL_TX_EIP1559 && tx->type != ZL_TX_LEGACY) {
        snprintf(errstr, errstr_size, "tx: unsupported type %d", (int)tx->type);
        return -1;
    }
    if (tx->data_len > ZL_TX_DATA_MAX || (tx->data == NULL && tx->data_len > 0)) {
        snprintf(errstr, errstr_size, "tx: %zu bytes of calldata (at most %d)", tx->data_len, ZL_TX_DATA_MAX);
        return -1;
    }
    if (tx->chain_id == 0 || (tx->type == ZL_TX_LEGACY && tx->chain_id > (UINT64_MAX - 36) / 2)) {
        snprintf(errstr, errstr_size, "tx: chain id %llu out of range", (unsigned long long)tx->chain_id);
        return -1;
    }
    return 0;
}

int zl_tx_signing_hash(const struct zl_tx *tx, uint8_t digest[32], char *errstr, size_t errstr_size)
{
    uint8_t local[ZL_TX_RAW_MAX];
    size_t n;
    if (check_tx(tx, errstr, errstr_size) != 0)
        return -1;
    if (encode(tx, NULL, NULL, 0, local, sizeof(local), &n) != 0) {
        snprintf(errstr, errstr_size, "tx: does not fit in %d bytes", ZL_TX_RAW_MAX);
        return -1;
    }
    zl_keccak256(local, n, digest);
    return 0;
}

int zl_tx_sign(const struct zl_tx *tx, const struct zl_secp_key *k, struct zl_signed_tx *out, char *errstr,
               size_t errstr_size)
{
    memset(out->hash, 0, sizeof(out->hash));
    out->raw_len = 0;
    uint8_t digest[32];
    if (zl_tx_signing_hash(tx, digest, errstr, errstr_size) != 0)
        return -1;
    uint8_t r[32], s[32];
    int recid;
    if (zl_secp_sign(k, digest, r, s, &recid) != 0) {
        snprintf(errstr, errstr_size, "tx: signing failed");
        return -1;
    }
    uint64_t v = tx->type == ZL_TX_EIP1559 ? (uint64_t)recid : (uint64_t)recid + tx->chain_id * 2 + 35;
    if (encode(tx, r, s, v, out->raw, sizeof(out->raw), &out->raw_len) != 0) {
        snprintf(errstr, errstr_size, "tx: does not fit in %d bytes", ZL_TX_RAW_MAX);
        return -1;
    }
    zl_keccak256_hex(out->raw, out->raw_len, out->hash);

    /* Check what we made before anyone stores or broadcasts it. */
    struct zl_tx_decoded d;
    char err[256];
    uint8_t digest2[32], addr[20];
    if (zl_tx_decode(out->raw, out->raw_len, &d, err, sizeof(err)) != 0 || d.tx.type != tx->type ||
        d.tx.chain_id != tx->chain_id || d.tx.nonce != tx->nonce || d.tx.max_fee_wei != tx->max_fee_wei ||
        (tx->type == ZL_TX_EIP1559 && d.tx.max_priority_fee_wei != tx->max_priority_fee_wei) ||
        d.tx.gas_limit != tx->gas_limit || memcmp(d.tx.to, tx->to, 20) != 0 || d.tx.value_wei != tx->value_wei ||
        d.tx.data_len != tx->data_len || (tx->data_len > 0 && memcmp(d.tx.data, tx->data, tx->data_len) != 0) ||
        zl_tx_signing_hash(&d.tx, digest2, err, sizeof(err)) != 0 || memcmp(digest, digest2, 32) != 0 ||
        zl_secp_recover_address(k, digest2, d.r, d.s, recid, addr) != 0 || memcmp(addr, k->address, 20) != 0) {
        snprintf(errstr, errstr_size, "tx: self-check of the signed bytes failed (a bug)");
        out->raw_len = 0;
        out->hash[0] = '\0';
        return -1;
    }
    return 0;
}

/* Reads the next list element as an integer. */
static int next_uint(const struct zl_rlp_item *list, size_t *pos, uint64_t *v, const char *what, char *errstr,
                     size_t errstr_size)
{
    struct zl_rlp_item it;
    if (zl_rlp_list_next(list, pos, &it, errstr, errstr_size) != 1 || zl_rlp_item_uint(&it, v) != 0) {
        snprintf(errstr, errstr_size, "tx: field %s is missing or not a canonical integer of 64 bits", what);
        return -1;
    }
    return 0;
}

static int next_u256(const struct zl_rlp_item *list, size_t *pos, uint8_t out[32], const char *what, char *errstr,
                     size_t errstr_size)
{
    struct zl_rlp_item it;
    if (zl_rlp_list_next(list, pos, &it, errstr, errstr_size) != 1 || it.is_list || it.payload_len > 32 ||
        (it.payload_len > 0 && it.payload[0] == 0)) {
        snprintf(errstr, errstr_size, "tx: field %s is missing or not a canonical 256-bit integer", what);
        return -1;
    }
    memset(out, 0, 32);
    if (it.payload_len > 0)
        memcpy(out + 32 - it.payload_len, it.payload, it.payload_len);
    return 0;
}

int zl_tx_decode(const uint8_t *raw, size_t len, struct zl_tx_decoded *out, char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > ZL_TX_RAW_MAX) {
        snprintf(errstr, errstr_size, "tx: %zu bytes (1..%d expected)", len, ZL_TX_RAW_MAX);
        return -1;
    }
    bool typed = raw[0] == 0x02;
    if (!typed && raw[0] < 0xc0) {
        snprintf(errstr, errstr_size, "tx: type byte 0x%02x is not supported", raw[0]);
        return -1;
    }
    const uint8_t *p = typed ? raw + 1 : raw;
    size_t n = typed ? len - 1 : len;
    struct zl_rlp_item list;
    if (zl_rlp_decode(p, n, &list, errstr, errstr_size) != 0)
        return -1;
    if (!list.is_list || list.total_len != n) {
        snprintf(errstr, errstr_size, "tx: expected exactly one RLP list");
        return -1;
    }
    struct zl_tx *tx = &out->tx;
    size_t pos = 0;
    tx->type = typed ? ZL_TX_EIP1559 : ZL_TX_LEGACY;
    if (typed) {
        if (next_uint(&list, &pos, &tx->chain_id, "chain_id", errstr, errstr_size) != 0 ||
            next_uint(&list, &pos, &tx->nonce, "nonce", errstr, errstr_size) != 0 ||
            next_uint(&list, &pos, &tx->max_priority_fee_wei, "max_priority_fee", errstr, errstr_size) != 0 ||
            next_uint(&list, &pos, &tx->max_fee_wei, "max_fee", errstr, errstr_size) != 0)
            return -1;
    } else if (next_uint(&list, &pos, &tx->nonce, "nonce", errstr, errstr_size) != 0 ||
               next_uint(&list, &pos, &tx->max_fee_wei, "gas_price", errstr, errstr_size) != 0) {
        return -1;
    }
    if (next_uint(&list, &pos, &tx->gas_limit, "gas_limit", errstr, errstr_size) != 0)
        return -1;
    struct zl_rlp_item it;
    if (zl_rlp_list_next(&list, &pos, &it, errstr, errstr_size) != 1 || it.is_list || it.payload_len != 20) {
        snprintf(errstr, errstr_size, "tx: recipient is missing or not 20 bytes");
        return -1;
    }
    memcpy(tx->to, it.payload, 20);
    if (next_uint(&list, &pos, &tx->value_wei, "value", errstr, errstr_size) != 0)
        return -1;
    if (zl_rlp_list_next(&list, &pos, &it, errstr, errstr_size) != 1 || it.is_list ||
        it.payload_len > ZL_TX_DATA_MAX) {
        snprintf(errstr, errstr_size, "tx: data is missing, a list or above %d bytes", ZL_TX_DATA_MAX);
        return -1;
    }
    tx->data = it.payload_len > 0 ? it.payload : NULL;
    tx->data_len = it.payload_len;
    if (typed) {
        if (zl_rlp_list_next(&list, &pos, &it, errstr, errstr_size) != 1 || !it.is_list || it.payload_len != 0) {
            snprintf(errstr, errstr_size, "tx: access list missing or not empty");
            return -1;
        }
    }
    if (next_uint(&list, &pos, &out->v, "v", errstr, errstr_size) != 0 ||
        next_u256(&list, &pos, out->r, "r", errstr, errstr_size) != 0 ||
        next_u256(&list, &pos, out->s, "s", errstr, errstr_size) != 0)
        return -1;
    if (pos != list.payload_len) {
        snprintf(errstr, errstr_size, "tx: extra fields after the signature");
        return -1;
    }
    if (typed) {
        if (out->v > 1) {
            snprintf(errstr, errstr_size, "tx: y parity %llu is not 0 or 1", (unsigned long long)out->v);
            return -1;
        }
    } else {
        if (out->v < 37) {
            snprintf(errstr, errstr_size, "tx: v %llu is not EIP-155", (unsigned long long)out->v);
            return -1;
        }
        tx->chain_id = (out->v - 35) / 2;
    }
    return 0;
}

int zl_tx_parse_address(const char *hex, uint8_t out[20])
{
    size_t n;
    if (!zl_hex_has_prefix(hex) || strlen(hex) != 42 || zl_hex_decode(hex, out, 20, &n) != 0 || n != 20)
        return -1;
    return 0;
}

void zl_abi_selector(const char *signature, uint8_t out[4])
{
    uint8_t h[32];
    zl_keccak256(signature, strlen(signature), h);
    memcpy(out, h, 4);
}

/* An ABI writer over a caller buffer; `ok` turns false once a write does
 * not fit (checked once at the end). */
struct abi {
    uint8_t *buf;
    size_t cap, len;
    bool ok;
};

static void abi_put(struct abi *a, const void *p, size_t n)
{
    if (!a->ok || n > a->cap - a->len) {
        a->ok = false;
        return;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

static void abi_word_uint(struct abi *a, uint64_t v)
{
    uint8_t w[32] = {0};
    for (int i = 0; i < 8; i++)
        w[31 - i] = (uint8_t)(v >> (8 * i));
    abi_put(a, w, 32);
}

static void abi_word_address(struct abi *a, const uint8_t addr[20])
{
    uint8_t w[32] = {0};
    memcpy(w + 12, addr, 20);
    abi_put(a, w, 32);
}

/* Length word, then the bytes padded with zeros to a multiple of 32. */
static void abi_string(struct abi *a, const char *s)
{
    size_t n = strlen(s);
    abi_word_uint(a, n);
    abi_put(a, s, n);
    static const uint8_t zeros[32];
    if (n % 32 != 0)
        abi_put(a, zeros, 32 - n % 32);
}

static size_t padded(size_t n)
{
    return (n + 31) / 32 * 32;
}

int zl_abi_mint(const uint8_t to[20], const uint8_t id[32], const char *uri, uint8_t *out, size_t out_size,
                size_t *len_out)
{
    struct abi a = {out, out_size, 0, true};
    uint8_t sel[4];
    zl_abi_selector("mint(address,uint256,string)", sel);
    abi_put(&a, sel, 4);
    abi_word_address(&a, to);
    abi_put(&a, id, 32);
    abi_word_uint(&a, 3 * 32); /* the string's head offset: after 3 head words */
    abi_string(&a, uri);
    if (!a.ok)
        return -1;
    *len_out = a.len;
    return 0;
}

int zl_abi_mint_batch(size_t n, const uint8_t (*to)[20], const uint8_t (*ids)[32], const char *const *uris,
                      uint8_t *out, size_t out_size, size_t *len_out)
{
    struct abi a = {out, out_size, 0, true};
    uint8_t sel[4];
    zl_abi_selector("mintBatch(address[],uint256[],string[])", sel);
    abi_put(&a, sel, 4);
    /* Heads: three offsets from the start of the arguments. */
    size_t to_size = 32 + 32 * n, ids_size = 32 + 32 * n;
    abi_word_uint(&a, 3 * 32);
    abi_word_uint(&a, 3 * 32 + to_size);
    abi_word_uint(&a, 3 * 32 + to_size + ids_size);
    abi_word_uint(&a, n);
    for (size_t i = 0; i < n; i++)
        abi_word_address(&a, to[i]);
    abi_word_uint(&a, n);
    for (size_t i = 0; i < n; i++)
        abi_put(&a, ids[i], 32);
    /* string[]: length, n offsets (relative to the first offset word), then
     * each string's length word and padded bytes. */
    abi_word_uint(&a, n);
    size_t off = 32 * n;
    for (size_t i = 0; i < n; i++) {
        abi_word_uint(&a, off);
        off += 32 + padded(strlen(uris[i]));
    }
    for (size_t i = 0; i < n; i++)
        abi_string(&a, uris[i]);
    if (!a.ok)
        return -1;
    *len_out = a.len;
    return 0;
}

void zl_abi_owner_of(const uint8_t id[32], uint8_t out[36])
{
    zl_abi_selector("ownerOf(uint256)", out);
    memcpy(out + 4, id, 32);
}

int zl_abi_decode_address(const char *hex, char out[ZL_ADDRESS_HEX_SIZE])
{
    uint8_t w[32];
    size_t n;
    if (zl_hex_decode(hex, w, sizeof(w), &n) != 0 || n != 32)
        return -1;
    for (int i = 0; i < 12; i++)
        if (w[i] != 0)
            return -1;
    return zl_hex_encode(w + 12, 20, out, ZL_ADDRESS_HEX_SIZE);
}

bool zl_abi_is_token_exists_revert(const char *data_hex)
{
    /* ERC721InvalidSender(address) = 0x73c6ac6e, argument address(0). */
    static const char want[] = ZL_ABI_TOKEN_EXISTS_REVERT;
    size_t n = strlen(data_hex);
    if (n != sizeof(want) - 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = data_hex[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return false;
    }
    return true;
}
