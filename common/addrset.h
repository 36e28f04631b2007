/* addrset.h: a set of 20-byte EVM addresses held in memory, for detect's
 * filter of every Transfer of the token against the registered deposit
 * addresses (architecture §10, detect).
 *
 * Open addressing with linear probing, kept at most half full, so a lookup
 * of an address that is not there (most Transfers of a busy token) ends
 * within a few slots. 20 bytes per slot, 2 to 4 slots per address: 40 to 80
 * bytes per address (~64 MB for 1,000,000 at the worst point of growth, when
 * the old and the new table are both held for a moment).
 *
 * Ownership: the set owns its table; zl_addrset_free releases it.
 * @locality one thread (the detect main loop); no locking.
 */
#ifndef ZL_ADDRSET_H
#define ZL_ADDRSET_H

#include <stdbool.h>
#include <stddef.h>

struct zl_addrset;

enum zl_addrset_add_result {
    ZL_ADDRSET_ADDED = 0,    /* new in the set */
    ZL_ADDRSET_PRESENT = 1,  /* was there already: nothing changed */
    ZL_ADDRSET_BAD = -1,     /* not a 0x-prefixed 20-byte hex address: nothing changed */
    ZL_ADDRSET_NOMEM = -2,   /* growing failed: nothing changed, the set is still usable */
    ZL_ADDRSET_FULL = -3,    /* the set holds `max` addresses already: nothing changed */
};

/* A new empty set that refuses to grow past max addresses (max >= 1).
 * Returns NULL when out of memory. */
struct zl_addrset *zl_addrset_new(size_t max);
void zl_addrset_free(struct zl_addrset *s);

/* Adds a 0x-prefixed 20-byte hex address (either case). */
enum zl_addrset_add_result zl_addrset_add(struct zl_addrset *s, const char *hex);

/* True when the address (0x-prefixed 20-byte hex, either case) is in the
 * set; false for anything that is not an address. */
bool zl_addrset_has(const struct zl_addrset *s, const char *hex);

/* Addresses in the set. */
size_t zl_addrset_count(const struct zl_addrset *s);

/* Bytes the set's table takes (for the log line and the bench). */
size_t zl_addrset_bytes(const struct zl_addrset *s);

#endif /* ZL_ADDRSET_H */
