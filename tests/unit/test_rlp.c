/* RLP against the encodings Ethereum's own tests use: a wrong length header
 * would make every signed transaction invalid. */
#include "rlp.h"
#include "zltest.h"

static size_t enc(uint8_t *buf, size_t cap, void (*fill)(struct zl_rlp *))
{
    struct zl_rlp r;
    zl_rlp_init(&r, buf, cap);
    fill(&r);
    size_t n = 0;
    if (zl_rlp_finish(&r, &n) != 0)
        return (size_t)-1;
    return n;
}

static void fill_dog(struct zl_rlp *r) { zl_rlp_bytes(r, "dog", 3); }
static void fill_cat_dog(struct zl_rlp *r)
{
    zl_rlp_list_begin(r);
    zl_rlp_bytes(r, "cat", 3);
    zl_rlp_bytes(r, "dog", 3);
    zl_rlp_list_end(r);
}
static void fill_empty(struct zl_rlp *r) { zl_rlp_bytes(r, "", 0); }
static void fill_empty_list(struct zl_rlp *r)
{
    zl_rlp_list_begin(r);
    zl_rlp_list_end(r);
}
static void fill_ints(struct zl_rlp *r)
{
    zl_rlp_list_begin(r);
    zl_rlp_uint(r, 0);
    zl_rlp_uint(r, 15);
    zl_rlp_uint(r, 1024);
    zl_rlp_list_end(r);
}
static void fill_long(struct zl_rlp *r)
{
    const char *s = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
    zl_rlp_bytes(r, s, strlen(s));
}
static void fill_set_theory(struct zl_rlp *r)
{
    /* [ [], [[]], [ [], [[]] ] ] */
    zl_rlp_list_begin(r);
    zl_rlp_list_begin(r);
    zl_rlp_list_end(r);
    zl_rlp_list_begin(r);
    zl_rlp_list_begin(r);
    zl_rlp_list_end(r);
    zl_rlp_list_end(r);
    zl_rlp_list_begin(r);
    zl_rlp_list_begin(r);
    zl_rlp_list_end(r);
    zl_rlp_list_begin(r);
    zl_rlp_list_begin(r);
    zl_rlp_list_end(r);
    zl_rlp_list_end(r);
    zl_rlp_list_end(r);
    zl_rlp_list_end(r);
}

ZT_TEST(test_rlp_encodes_the_yellow_paper_examples)
{
    uint8_t b[128];
    ZT_EQ_INT(4, (int)enc(b, sizeof(b), fill_dog));
    ZT_CHECK(memcmp(b, "\x83" "dog", 4) == 0);
    ZT_EQ_INT(9, (int)enc(b, sizeof(b), fill_cat_dog));
    ZT_CHECK(memcmp(b, "\xc8\x83" "cat\x83" "dog", 9) == 0);
    ZT_EQ_INT(1, (int)enc(b, sizeof(b), fill_empty));
    ZT_EQ_INT(0x80, b[0]);
    ZT_EQ_INT(1, (int)enc(b, sizeof(b), fill_empty_list));
    ZT_EQ_INT(0xc0, b[0]);
    ZT_EQ_INT(6, (int)enc(b, sizeof(b), fill_ints));
    ZT_CHECK(memcmp(b, "\xc5\x80\x0f\x82\x04\x00", 6) == 0);
    ZT_EQ_INT(58, (int)enc(b, sizeof(b), fill_long));
    ZT_CHECK(b[0] == 0xb8 && b[1] == 56 && b[2] == 'L');
    ZT_EQ_INT(8, (int)enc(b, sizeof(b), fill_set_theory));
    ZT_CHECK(memcmp(b, "\xc7\xc0\xc1\xc0\xc3\xc0\xc1\xc0", 8) == 0);
}

ZT_TEST(test_rlp_builder_reports_overflow_instead_of_writing_past_the_buffer)
{
    uint8_t b[8];
    ZT_EQ_INT((int)(size_t)-1 , (int)enc(b, 3, fill_dog));
    ZT_EQ_INT((int)(size_t)-1, (int)enc(b, 8, fill_long));
    ZT_EQ_INT((int)(size_t)-1, (int)enc(b, 8, fill_cat_dog));
}

ZT_TEST(test_rlp_decoder_round_trips_and_rejects_non_canonical_input)
{
    uint8_t b[128];
    size_t n = enc(b, sizeof(b), fill_set_theory);
    char err[128];
    ZT_EQ_INT(0, zl_rlp_validate(b, n, err, sizeof(err)));
    n = enc(b, sizeof(b), fill_long);
    ZT_EQ_INT(0, zl_rlp_validate(b, n, err, sizeof(err)));
    ZT_EQ_INT(-1, zl_rlp_validate(b, n - 1, err, sizeof(err))); /* truncated */
    static const uint8_t wrapped[] = {0x81, 0x05};           /* single byte in a header */
    ZT_EQ_INT(-1, zl_rlp_validate(wrapped, sizeof(wrapped), err, sizeof(err)));
    static const uint8_t long_short[] = {0xb8, 0x02, 'a', 'b'}; /* long form for 2 bytes */
    ZT_EQ_INT(-1, zl_rlp_validate(long_short, sizeof(long_short), err, sizeof(err)));
    static const uint8_t trailing[] = {0x80, 0x80};
    ZT_EQ_INT(-1, zl_rlp_validate(trailing, sizeof(trailing), err, sizeof(err)));
    static const uint8_t huge[] = {0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ZT_EQ_INT(-1, zl_rlp_validate(huge, sizeof(huge), err, sizeof(err)));
    uint8_t deep[40];
    for (size_t i = 0; i < sizeof(deep); i++)
        deep[i] = (uint8_t)(0xc0 + sizeof(deep) - 1 - i);
    ZT_EQ_INT(-1, zl_rlp_validate(deep, sizeof(deep), err, sizeof(err))); /* nested past the bound */
}

ZT_MAIN(test_rlp_encodes_the_yellow_paper_examples,
        test_rlp_builder_reports_overflow_instead_of_writing_past_the_buffer,
        test_rlp_decoder_round_trips_and_rejects_non_canonical_input)
