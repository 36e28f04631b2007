/* cid.h: content identifiers computed locally, before anything is uploaded,
 * so a retry can never produce a second, different object and every
 * provider's answer can be checked against what the bytes must hash to.
 *
 * Only the one shape the ipfs-upload stage needs: CIDv1, multicodec raw
 * (0x55), multihash sha2-256 (0x12, 32 bytes), multibase base32 lower-case
 * without padding ('b' prefix), e.g. "hello IPFS\n" ->
 * bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa.
 *
 * That is the CID Kubo gives a file added with cid-version=1 and raw leaves
 * when the file fits in ONE chunk: the raw block is then the whole DAG. Kubo's
 * default chunker cuts at 256 KiB; a larger file gets a dag-pb root whose CID
 * this module does not compute, so larger inputs are refused rather than
 * given a CID no provider would return.
 *
 * @locality any thread: pure functions over their arguments.
 */
#ifndef ZL_CID_H
#define ZL_CID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest content with a single-chunk CID: Kubo's default chunker size
 * (size-262144). A test pins the boundary against Kubo itself. */
#define ZL_CID_SINGLE_CHUNK_MAX_BYTES 262144

/* Characters of a raw sha2-256 CIDv1 in base32: 'b' + ceil(36 * 8 / 5). */
#define ZL_CID_RAW_LEN 59
/* A buffer this large holds one, with its NUL. */
#define ZL_CID_SIZE 64

/* Writes the CID of data[0..len) into out (out_size >= ZL_CID_SIZE).
 * Returns 0, or -1 with errstr saying why when len exceeds
 * ZL_CID_SINGLE_CHUNK_MAX_BYTES or out is too small (out is then "" when
 * out_size > 0). data may be NULL when len is 0. */
int zl_cid_raw_v1(const void *data, size_t len, char *out, size_t out_size, char *errstr, size_t errstr_size);

/* True when s is exactly the text zl_cid_raw_v1 could produce: "bafkrei"
 * (version 1, raw, sha2-256, 32 bytes) followed by base32 of the digest, 59
 * characters in all, with zero padding bits. */
bool zl_cid_is_raw_v1(const char *s);

/* Writes RFC 4648 base32, lower-case, no padding, of in[0..n) into out.
 * Returns the characters written (without the NUL), or 0 when out_size is
 * too small for them plus the NUL (out is then "" when out_size > 0). */
size_t zl_base32_lower(const uint8_t *in, size_t n, char *out, size_t out_size);

#endif /* ZL_CID_H */
