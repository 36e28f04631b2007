/* addrset.c: a set of 20-byte addresses (see addrset.h). */
#include "addrset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

#define ADDR_BYTES 20
/* Slots of a new set: grown by doubling, so the first loads do not rehash
 * a dozen times for a handful of addresses. */
#define ADDRSET_SLOTS_FIRST 1024

struct zl_addrset {
    uint8_t (*slot)[ADDR_BYTES]; /* all-zero = empty; the zero address is `has_zero` */
    size_t nslots;               /* a power of two */
    size_t count;                /* addresses held, the zero address included */
    size_t max;
    bool has_zero;
};

static int parse(const char *hex, uint8_t out[ADDR_BYTES])
{
    size_t n = 0;
    if (hex == NULL || !zl_hex_has_prefix(hex) || strlen(hex) != 2 + 2 * ADDR_BYTES)
        return -1;
    if (zl_hex_decode(hex, out, ADDR_BYTES, &n) != 0 || n != ADDR_BYTES)
        return -1;
    return 0;
}

static bool is_zero(const uint8_t a[ADDR_BYTES])
{
    for (int i = 0; i < ADDR_BYTES; i++)
        if (a[i] != 0)
            return false;
    return true;
}

/* Addresses are hashes of keys, but lookups come from anyone's Transfers:
 * mix the bytes anyway (splitmix64's finaliser) so no pattern in them can
 * line up in the table. */
static size_t slot_of(const uint8_t a[ADDR_BYTES], size_t nslots)
{
    uint64_t x = 0, y = 0;
    memcpy(&x, a, 8);
    memcpy(&y, a + 8, 8);
    x ^= y * UINT64_C(0x9e3779b97f4a7c15);
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return (size_t)x & (nslots - 1);
}

/* Index of a's slot, or of the empty slot where it would go. */
static size_t find(const struct zl_addrset *s, const uint8_t a[ADDR_BYTES])
{
    size_t i = slot_of(a, s->nslots);
    while (!is_zero(s->slot[i]) && memcmp(s->slot[i], a, ADDR_BYTES) != 0)
        i = (i + 1) & (s->nslots - 1);
    return i;
}

struct zl_addrset *zl_addrset_new(size_t max)
{
    struct zl_addrset *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->slot = calloc(ADDRSET_SLOTS_FIRST, sizeof(*s->slot));
    if (s->slot == NULL) {
        free(s);
        return NULL;
    }
    s->nslots = ADDRSET_SLOTS_FIRST;
    s->max = max > 0 ? max : 1;
    return s;
}

void zl_addrset_free(struct zl_addrset *s)
{
    if (s == NULL)
        return;
    free(s->slot);
    free(s);
}

static int grow(struct zl_addrset *s)
{
    size_t n = s->nslots * 2;
    if (n < s->nslots || n > SIZE_MAX / ADDR_BYTES)
        return -1;
    uint8_t (*ns)[ADDR_BYTES] = calloc(n, sizeof(*ns));
    if (ns == NULL)
        return -1;
    struct zl_addrset bigger = {ns, n, 0, s->max, false};
    for (size_t i = 0; i < s->nslots; i++)
        if (!is_zero(s->slot[i]))
            memcpy(ns[find(&bigger, s->slot[i])], s->slot[i], ADDR_BYTES);
    free(s->slot);
    s->slot = ns;
    s->nslots = n;
    return 0;
}

enum zl_addrset_add_result zl_addrset_add(struct zl_addrset *s, const char *hex)
{
    uint8_t a[ADDR_BYTES];
    if (parse(hex, a) != 0)
        return ZL_ADDRSET_BAD;
    if (zl_addrset_has(s, hex))
        return ZL_ADDRSET_PRESENT;
    if (s->count >= s->max)
        return ZL_ADDRSET_FULL;
    if (is_zero(a)) {
        s->has_zero = true;
        s->count++;
        return ZL_ADDRSET_ADDED;
    }
    /* At most half full: a miss ends within a few slots. */
    if ((s->count + 1) * 2 > s->nslots && grow(s) != 0)
        return ZL_ADDRSET_NOMEM;
    memcpy(s->slot[find(s, a)], a, ADDR_BYTES);
    s->count++;
    return ZL_ADDRSET_ADDED;
}

bool zl_addrset_has(const struct zl_addrset *s, const char *hex)
{
    uint8_t a[ADDR_BYTES];
    if (parse(hex, a) != 0)
        return false;
    if (is_zero(a))
        return s->has_zero;
    return !is_zero(s->slot[find(s, a)]);
}

size_t zl_addrset_count(const struct zl_addrset *s)
{
    return s->count;
}

size_t zl_addrset_bytes(const struct zl_addrset *s)
{
    return s->nslots * ADDR_BYTES;
}
