/* rlp.h: Ethereum's Recursive Length Prefix encoding, for signing
 * transactions, and a strict decoder, for checking what we signed (and for
 * anything that reads RLP from outside: it is fuzzed, tests/fuzz/fuzz_rlp.c).
 *
 * The encoder writes into a caller-owned buffer and never allocates. Once a
 * write does not fit, the builder is marked overflowed and every later write
 * is a no-op, so a caller checks once at the end (like a stdio error flag).
 *
 * @locality any thread; a struct zl_rlp is used by one thread at a time.
 */
#ifndef ZL_RLP_H
#define ZL_RLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest list nesting the decoder follows: a transaction needs 3 (the tx,
 * the access list, an entry's storage keys); the bound keeps hostile input
 * from recursing without end. */
#define ZL_RLP_DEPTH_MAX 16

/* Lists a builder may have open at once (same reasoning). */
#define ZL_RLP_OPEN_LISTS_MAX 8

struct zl_rlp {
    uint8_t *buf;          /* borrowed: caller's buffer */
    size_t cap;            /* its size in bytes */
    size_t len;            /* bytes written so far */
    bool overflow;         /* a write did not fit: the output is unusable */
    size_t open[ZL_RLP_OPEN_LISTS_MAX]; /* payload start of each open list */
    int nopen;
};

/* Starts a builder over buf[0..cap). */
void zl_rlp_init(struct zl_rlp *r, uint8_t *buf, size_t cap);

/* A byte string (a single byte below 0x80 encodes as itself). */
void zl_rlp_bytes(struct zl_rlp *r, const void *data, size_t len);

/* An unsigned integer: big-endian without leading zeros (0 is ""). */
void zl_rlp_uint(struct zl_rlp *r, uint64_t v);

/* A 256-bit unsigned integer given as 32 big-endian bytes (e.g. a signature's
 * r or s), leading zeros stripped. */
void zl_rlp_u256(struct zl_rlp *r, const uint8_t be[32]);

/* Opens and closes a list. The header is written at close, once the payload
 * length is known (the payload is moved up by the header's size). Opening
 * more than ZL_RLP_OPEN_LISTS_MAX lists, or closing one that was not opened,
 * marks the builder overflowed. */
void zl_rlp_list_begin(struct zl_rlp *r);
void zl_rlp_list_end(struct zl_rlp *r);

/* Returns 0 when everything fit and every list was closed, else -1. */
int zl_rlp_finish(const struct zl_rlp *r, size_t *len_out);

/* One decoded item: a view into the input, nothing owned. */
struct zl_rlp_item {
    bool is_list;
    const uint8_t *payload; /* string bytes, or the list's encoded items */
    size_t payload_len;
    size_t total_len;       /* header + payload */
};

/* Decodes the item at the start of data[0..len). Canonical encoding only
 * (single bytes below 0x80 must not be wrapped, lengths have no leading
 * zeros and long forms only for 56+ bytes), as geth rejects the others.
 * Returns 0 and fills *out, or -1 with errstr naming the problem and offset.
 * Does not look inside a list: see zl_rlp_list_next / zl_rlp_validate. */
int zl_rlp_decode(const uint8_t *data, size_t len, struct zl_rlp_item *out, char *errstr, size_t errstr_size);

/* Iterates a list's payload: *pos (start at 0) advances past each item.
 * Returns 1 with *out filled, 0 at the end, -1 on a malformed item. */
int zl_rlp_list_next(const struct zl_rlp_item *list, size_t *pos, struct zl_rlp_item *out, char *errstr,
                     size_t errstr_size);

/* Checks that data[0..len) is exactly one well-formed item, recursively, up
 * to ZL_RLP_DEPTH_MAX deep. Returns 0, or -1 with errstr. */
int zl_rlp_validate(const uint8_t *data, size_t len, char *errstr, size_t errstr_size);

/* Reads a string item as an unsigned integer of at most 8 bytes, canonical
 * (no leading zero byte). Returns 0, or -1 when it is a list, too long or
 * not canonical. */
int zl_rlp_item_uint(const struct zl_rlp_item *it, uint64_t *out);

#endif /* ZL_RLP_H */
