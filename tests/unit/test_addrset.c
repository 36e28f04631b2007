/* test_addrset.c: detect's in-memory address set: every address added is
 * found after many growths, nothing else is, either case is one address,
 * and the bound refuses instead of dropping silently. */
#include <stdio.h>
#include <string.h>

#include "addrset.h"
#include "zl.h"
#include "zltest.h"

static void addr_of(unsigned i, char out[43])
{
    /* the counter at both ends, so neighbours differ in the hashed bytes */
    snprintf(out, 43, "0x%08x00000000000000000000000000%06x", i * 2654435761u, i & 0xffffffu);
}

ZT_TEST(test_every_added_address_is_found_across_growths_and_no_other)
{
    struct zl_addrset *s = zl_addrset_new(1000000);
    ZT_REQUIRE(s != NULL);
    char a[43];
    for (unsigned i = 0; i < 100000; i++) {
        addr_of(i, a);
        ZT_REQUIRE(zl_addrset_add(s, a) == ZL_ADDRSET_ADDED);
    }
    ZT_EQ_INT(100000, (long long)zl_addrset_count(s));
    int missing = 0, extra = 0;
    for (unsigned i = 0; i < 200000; i++) {
        addr_of(i, a);
        bool has = zl_addrset_has(s, a);
        if (i < 100000 && !has)
            missing++;
        if (i >= 100000 && has)
            extra++;
    }
    ZT_EQ_INT(0, missing);
    ZT_EQ_INT(0, extra);
    zl_addrset_free(s);
}

ZT_TEST(test_addresses_differing_only_in_their_last_bytes_stay_fast)
{
    /* 200,000 addresses that share their first 16 bytes: a hash of those
     * alone put them in one probe chain (found by the 200,000-address
     * integration test: minutes instead of milliseconds). */
    struct zl_addrset *s = zl_addrset_new(1000000);
    ZT_REQUIRE(s != NULL);
    char a[43];
    int64_t t0 = zl_now_ms();
    for (unsigned i = 0; i < 200000; i++) {
        snprintf(a, sizeof(a), "0xfe000000000000000000000000000000%08x", i);
        ZT_REQUIRE(zl_addrset_add(s, a) == ZL_ADDRSET_ADDED);
    }
    snprintf(a, sizeof(a), "0xfe000000000000000000000000000000%08x", 199999u);
    ZT_CHECK(zl_addrset_has(s, a));
    ZT_CHECK(zl_now_ms() - t0 < 2000);
    zl_addrset_free(s);
}

ZT_TEST(test_case_is_ignored_and_the_zero_address_is_an_address)
{
    struct zl_addrset *s = zl_addrset_new(10);
    ZT_REQUIRE(s != NULL);
    ZT_CHECK(zl_addrset_add(s, "0xABCDEF0000000000000000000000000000000001") == ZL_ADDRSET_ADDED);
    ZT_CHECK(zl_addrset_add(s, "0xabcdef0000000000000000000000000000000001") == ZL_ADDRSET_PRESENT);
    ZT_CHECK(zl_addrset_has(s, "0xabcdef0000000000000000000000000000000001"));
    ZT_CHECK(!zl_addrset_has(s, "0x0000000000000000000000000000000000000000"));
    ZT_CHECK(zl_addrset_add(s, "0x0000000000000000000000000000000000000000") == ZL_ADDRSET_ADDED);
    ZT_CHECK(zl_addrset_has(s, "0x0000000000000000000000000000000000000000"));
    ZT_EQ_INT(2, (long long)zl_addrset_count(s));
    zl_addrset_free(s);
}

ZT_TEST(test_bad_text_is_refused_and_never_found)
{
    struct zl_addrset *s = zl_addrset_new(10);
    ZT_REQUIRE(s != NULL);
    ZT_CHECK(zl_addrset_add(s, "abcdef0000000000000000000000000000000001") == ZL_ADDRSET_BAD);
    ZT_CHECK(zl_addrset_add(s, "0xabcdef00000000000000000000000000000000") == ZL_ADDRSET_BAD);
    ZT_CHECK(zl_addrset_add(s, "0xzzcdef0000000000000000000000000000000001") == ZL_ADDRSET_BAD);
    ZT_CHECK(!zl_addrset_has(s, "0x"));
    ZT_EQ_INT(0, (long long)zl_addrset_count(s));
    zl_addrset_free(s);
}

ZT_TEST(test_a_full_set_refuses_the_next_address_and_keeps_the_others)
{
    struct zl_addrset *s = zl_addrset_new(3);
    ZT_REQUIRE(s != NULL);
    char a[43];
    for (unsigned i = 0; i < 3; i++) {
        addr_of(i, a);
        ZT_CHECK(zl_addrset_add(s, a) == ZL_ADDRSET_ADDED);
    }
    addr_of(3, a);
    ZT_CHECK(zl_addrset_add(s, a) == ZL_ADDRSET_FULL);
    ZT_CHECK(!zl_addrset_has(s, a));
    addr_of(2, a);
    ZT_CHECK(zl_addrset_add(s, a) == ZL_ADDRSET_PRESENT);
    ZT_EQ_INT(3, (long long)zl_addrset_count(s));
    zl_addrset_free(s);
}

ZT_MAIN(test_every_added_address_is_found_across_growths_and_no_other,
        test_addresses_differing_only_in_their_last_bytes_stay_fast,
        test_case_is_ignored_and_the_zero_address_is_an_address, test_bad_text_is_refused_and_never_found,
        test_a_full_set_refuses_the_next_address_and_keeps_the_others)
