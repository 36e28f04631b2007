/* test_httpbuf.c: the HTTP body buffer keeps a body up to its bound, byte
 * for byte and NUL-terminated, and refuses (so curl aborts) the first byte
 * past it; reset reuses memory, take hands it over. */
#include <stdlib.h>
#include <string.h>

#include "httpbuf.h"
#include "zltest.h"

ZT_TEST(test_chunks_are_appended_and_terminated)
{
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, 64);
    ZT_EQ_STR("", zl_httpbuf_str(&b));
    char a[] = "{\"result\":", c[] = "\"0x1\"}";
    ZT_EQ_INT(strlen(a), (long long)zl_httpbuf_write_cb(a, 1, strlen(a), &b));
    ZT_EQ_INT(strlen(c), (long long)zl_httpbuf_write_cb(c, 1, strlen(c), &b));
    ZT_EQ_STR("{\"result\":\"0x1\"}", zl_httpbuf_str(&b));
    ZT_EQ_INT(16, (long long)b.len);
    ZT_CHECK(!b.too_big && !b.no_memory);
    zl_httpbuf_free(&b);
    ZT_CHECK(b.data == NULL && b.len == 0);
    zl_httpbuf_free(&b); /* twice is safe */
}

ZT_TEST(test_a_body_exactly_at_the_bound_is_kept_one_byte_more_aborts)
{
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, 8);
    char eight[] = "12345678", one[] = "9";
    ZT_EQ_INT(8, (long long)zl_httpbuf_write_cb(eight, 1, 8, &b));
    ZT_EQ_STR("12345678", zl_httpbuf_str(&b));
    ZT_CHECK(!b.too_big);
    ZT_EQ_INT(0, (long long)zl_httpbuf_write_cb(one, 1, 1, &b)); /* 0: curl aborts the transfer */
    ZT_CHECK(b.too_big);
    ZT_EQ_STR("12345678", zl_httpbuf_str(&b)); /* what was kept stays intact */
    ZT_EQ_INT(8, (long long)b.len);
    zl_httpbuf_free(&b);
}

ZT_TEST(test_one_chunk_past_the_bound_is_refused_whole)
{
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, 4);
    char big[] = "12345";
    ZT_EQ_INT(0, (long long)zl_httpbuf_write_cb(big, 1, 5, &b));
    ZT_CHECK(b.too_big);
    ZT_CHECK(b.data == NULL);
    ZT_EQ_INT(-1, zl_httpbuf_append(&b, big, (size_t)-1)); /* no overflow on a huge length */
    zl_httpbuf_free(&b);
}

ZT_TEST(test_large_bodies_grow_and_reset_reuses_memory)
{
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, 1u << 20);
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 100; i++)
        ZT_REQUIRE(zl_httpbuf_append(&b, chunk, sizeof(chunk)) == 0);
    ZT_EQ_INT(100000, (long long)b.len);
    ZT_EQ_INT(100000, (long long)strlen(b.data));
    ZT_CHECK(b.cap <= (1u << 20) + 1);
    char *mem = b.data;
    b.too_big = true;
    zl_httpbuf_reset(&b);
    ZT_CHECK(b.data == mem && b.len == 0 && !b.too_big);
    ZT_EQ_STR("", zl_httpbuf_str(&b));
    zl_httpbuf_free(&b);
}

ZT_TEST(test_take_hands_the_body_to_the_caller)
{
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, 16);
    ZT_CHECK(zl_httpbuf_take(&b) == NULL); /* nothing arrived */
    ZT_REQUIRE(zl_httpbuf_append(&b, "ok", 2) == 0);
    char *body = zl_httpbuf_take(&b);
    ZT_EQ_STR("ok", body);
    ZT_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    ZT_EQ_INT(16, (long long)b.max_bytes);
    free(body);
}

ZT_MAIN(test_chunks_are_appended_and_terminated, test_a_body_exactly_at_the_bound_is_kept_one_byte_more_aborts,
        test_one_chunk_past_the_bound_is_refused_whole, test_large_bodies_grow_and_reset_reuses_memory,
        test_take_hands_the_body_to_the_caller)
