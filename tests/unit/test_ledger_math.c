/* Unit tests for common/ledger.c: exact eggs arithmetic (floor, never a
 * double) and deterministic credit ids. */
#include "envelope.h"
#include "ledger.h"
#include "zltest.h"

/* 2^256 - 1, the largest amount an ERC-20 token can hold. */
static const char UINT256_MAX_DEC[] =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

static const char *eggs_of(const char *amount, const char *rate, int decimals)
{
    static char out[ZL_UINT256_DEC_SIZE];
    char err[256];
    if (zl_ledger_eggs(amount, rate, decimals, out, sizeof(out), err, sizeof(err)) != 0)
        return "ERR";
    return out;
}

ZT_TEST(test_eggs_one_token_at_integer_rate_is_exact)
{
    ZT_EQ_STR("1000", eggs_of("1000000000000000000", "1000", 18));
    ZT_EQ_STR("0", eggs_of("0", "1000", 18));
    ZT_EQ_STR("12", eggs_of("12", "1", 0));
}

ZT_TEST(test_eggs_round_down_at_the_edge)
{
    /* 1 token - 1 wei at rate 1: 0.999...9 eggs -> 0, never 1. */
    ZT_EQ_STR("0", eggs_of("999999999999999999", "1", 18));
    /* exactly 1 token: 1. */
    ZT_EQ_STR("1", eggs_of("1000000000000000000", "1", 18));
    /* 1.999...9 tokens at 0.5: 0.9999 -> 0 */
    ZT_EQ_STR("0", eggs_of("1999999999999999999", "0.5", 18));
    /* 2 tokens at 0.5: exactly 1 */
    ZT_EQ_STR("1", eggs_of("2000000000000000000", "0.5", 18));
    /* 1.5 tokens at 1000.5 = 1500.75 -> 1500 */
    ZT_EQ_STR("1500", eggs_of("1500000000000000000", "1000.5", 18));
    /* one wei at a rate with 18 fraction digits */
    ZT_EQ_STR("0", eggs_of("1", "0.000000000000000001", 0));
    ZT_EQ_STR("1", eggs_of("1000000000000000000", "0.000000000000000001", 0));
}

ZT_TEST(test_eggs_of_the_largest_uint256_amount_are_exact)
{
    /* floor((2^256-1) * 1000.5 / 10^18), computed with Python integers. */
    ZT_EQ_STR("115849985281934853521282770501192251807196619657973384321477312",
              eggs_of(UINT256_MAX_DEC, "1000.5", 18));
    ZT_EQ_STR("115792089237316195423570985008687907853269984665640564039457",
              eggs_of(UINT256_MAX_DEC, "1", 18));
    ZT_EQ_STR(UINT256_MAX_DEC, eggs_of(UINT256_MAX_DEC, "1", 0));
}

ZT_TEST(test_eggs_beyond_uint256_are_refused)
{
    char out[ZL_UINT256_DEC_SIZE];
    char err[256] = "";
    ZT_EQ_INT(-1, zl_ledger_eggs(UINT256_MAX_DEC, "2", 0, out, sizeof(out), err, sizeof(err)));
    ZT_CHECK(strstr(err, "uint256") != NULL || strstr(err, "2^256") != NULL);
    ZT_EQ_STR("", out);
    ZT_EQ_INT(-1, zl_ledger_eggs(UINT256_MAX_DEC, "100000000000000000000", 18, out, sizeof(out), err,
                                 sizeof(err)));
}

ZT_TEST(test_eggs_refuse_malformed_inputs_naming_them)
{
    char out[ZL_UINT256_DEC_SIZE];
    char err[256] = "";
    ZT_EQ_INT(-1, zl_ledger_eggs("01", "1", 0, out, sizeof(out), err, sizeof(err)));
    ZT_CHECK(strstr(err, "amount") != NULL);
    ZT_EQ_INT(-1, zl_ledger_eggs("1", "1.", 0, out, sizeof(out), err, sizeof(err)));
    ZT_CHECK(strstr(err, "rate") != NULL);
    ZT_EQ_INT(-1, zl_ledger_eggs("1", "-1", 0, out, sizeof(out), err, sizeof(err)));
    ZT_EQ_INT(-1, zl_ledger_eggs("1", "1", 78, out, sizeof(out), err, sizeof(err)));
    ZT_CHECK(strstr(err, "decimals") != NULL);
    ZT_EQ_INT(-1, zl_ledger_eggs("1", "1", -1, out, sizeof(out), err, sizeof(err)));
}

ZT_TEST(test_entry_ids_are_deterministic_distinct_uuids)
{
    char a1[ZL_LEDGER_ID_SIZE], b1[ZL_LEDGER_ID_SIZE], a2[ZL_LEDGER_ID_SIZE], b2[ZL_LEDGER_ID_SIZE];
    char c1[ZL_LEDGER_ID_SIZE], d1[ZL_LEDGER_ID_SIZE];
    const char *dep = "31337:0x00000000000000000000000000000000000000000000000000000000000000aa:0";
    zl_ledger_entry_ids(dep, a1, b1);
    zl_ledger_entry_ids(dep, a2, b2);
    zl_ledger_entry_ids("31337:0x00000000000000000000000000000000000000000000000000000000000000aa:1", c1, d1);
    ZT_CHECK(zl_valid_uuid(a1));
    ZT_CHECK(zl_valid_uuid(b1));
    ZT_EQ_STR(a1, a2);
    ZT_EQ_STR(b1, b2);
    ZT_CHECK(strcmp(a1, b1) != 0);
    ZT_CHECK(strcmp(a1, c1) != 0);
    ZT_CHECK(strcmp(b1, d1) != 0);
}

ZT_MAIN(test_eggs_one_token_at_integer_rate_is_exact, test_eggs_round_down_at_the_edge,
        test_eggs_of_the_largest_uint256_amount_are_exact, test_eggs_beyond_uint256_are_refused,
        test_eggs_refuse_malformed_inputs_naming_them, test_entry_ids_are_deterministic_distinct_uuids)
