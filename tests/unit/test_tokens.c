/* test_tokens.c: the ZL_TOKENS list: every field read, each kind of mistake
 * refused with a message naming the entry, the single-token settings still
 * working, and both together refused. */
#include <stdio.h>
#include <string.h>

#include "tokens.h"
#include "zltest.h"

#define USDT "0x55d398326f99059fF775485246999027B3197955"
#define USDC "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"

ZT_TEST(test_a_list_of_two_tokens_is_read_field_by_field)
{
    struct zl_tokens ts;
    char err[256] = "";
    int rc = zl_tokens_load(&ts, " USDT:" USDT ":18:1000000000000000000 , USDC:" USDC ":6", NULL, "5", err,
                            sizeof(err));
    ZT_REQUIRE(rc == 0);
    ZT_EQ_INT(2, (long long)ts.n);
    ZT_EQ_STR("USDT", ts.t[0].symbol);
    ZT_EQ_STR("0x55d398326f99059ff775485246999027b3197955", ts.t[0].address);
    ZT_EQ_INT(18, ts.t[0].decimals);
    ZT_EQ_STR("1000000000000000000", ts.t[0].min_amount);
    ZT_EQ_STR("USDC", ts.t[1].symbol);
    ZT_EQ_INT(6, ts.t[1].decimals);
    ZT_EQ_STR("5", ts.t[1].min_amount); /* no minimum given: the stage's default */
    const struct zl_token *t = zl_tokens_find(&ts, "0x8AC76A51CC950D9822D68B83FE1AD97B32CD580D");
    ZT_REQUIRE(t != NULL);
    ZT_EQ_STR("USDC", t->symbol);
    ZT_CHECK(zl_tokens_find(&ts, "0x0000000000000000000000000000000000000001") == NULL);
    ZT_CHECK(zl_tokens_find(&ts, "not an address") == NULL);
    char label[128];
    zl_token_label(t, label, sizeof(label));
    ZT_EQ_STR("USDC (0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d)", label);
}

static void refused(const char *spec, const char *legacy, const char *want)
{
    struct zl_tokens ts;
    char err[256] = "";
    int rc = zl_tokens_load(&ts, spec, legacy, NULL, err, sizeof(err));
    ZT_CHECK(rc == -1);
    if (strstr(err, want) == NULL) {
        fprintf(stderr, "spec \"%s\": error \"%s\" lacks \"%s\"\n", spec ? spec : "(null)", err, want);
        ZT_CHECK(0);
    }
}

ZT_TEST(test_each_mistake_is_refused_naming_the_entry)
{
    refused("USDT:" USDT, NULL, "entry 1 \"USDT:" USDT "\": expected SYMBOL:ADDRESS:DECIMALS");
    refused("USDT:" USDT ":18,USDC:0x8ac7:6", NULL, "entry 2 \"USDC:0x8ac7:6\": the address is not");
    refused("USDT:" USDT ":256", NULL, "decimals must be an integer 0..255");
    refused("USDT:" USDT ":-1", NULL, "decimals must be");
    refused("USDT:" USDT ":18:1.5", NULL, "the minimum is not a canonical decimal");
    refused("USDT:" USDT ":18:007", NULL, "the minimum is not a canonical decimal");
    refused("US DT:" USDT ":18", NULL, "the symbol must be");
    refused("ABCDEFGHIJKLMNOP:" USDT ":18", NULL, "the symbol must be");
    refused("USDT:" USDT ":18:1:9", NULL, "more than 4 fields");
    refused("USDT:" USDT ":18,USDX:" USDT ":6", NULL, "entry 2 \"USDX:" USDT ":6\": this address is listed twice");
    refused("USDT:" USDT ":18,USDT:" USDC ":6", NULL, "this symbol is listed twice");
    refused(" , ", NULL, "no token listed");
    refused("USDT:" USDT ":18", USDC, "both set");
}

ZT_TEST(test_more_than_the_limit_is_refused)
{
    char spec[ZL_TOKENS_SPEC_MAX] = "";
    size_t len = 0;
    for (int i = 0; i <= ZL_TOKENS_MAX; i++)
        len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%sT%d:0x%040x:18", i ? "," : "", i, i + 1);
    struct zl_tokens ts;
    char err[256] = "";
    ZT_CHECK(zl_tokens_load(&ts, spec, NULL, NULL, err, sizeof(err)) == -1);
    ZT_CHECK(strstr(err, "more than 16 tokens") != NULL);
}

ZT_TEST(test_the_single_token_setting_is_a_list_of_one_without_decimals)
{
    struct zl_tokens ts;
    char err[256] = "";
    ZT_REQUIRE(zl_tokens_load(&ts, "", USDT, "7", err, sizeof(err)) == 0);
    ZT_EQ_INT(1, (long long)ts.n);
    ZT_EQ_STR("TOKEN", ts.t[0].symbol);
    ZT_EQ_INT(ZL_TOKEN_DECIMALS_UNSET, ts.t[0].decimals);
    ZT_EQ_STR("7", ts.t[0].min_amount);
    ZT_CHECK(zl_tokens_load(&ts, NULL, "0x55d3", NULL, err, sizeof(err)) == -1);
    ZT_CHECK(strstr(err, "ZL_TOKEN_ADDRESS") != NULL);
    /* neither: an empty list, for the caller to judge */
    ZT_REQUIRE(zl_tokens_load(&ts, NULL, "", NULL, err, sizeof(err)) == 0);
    ZT_EQ_INT(0, (long long)ts.n);
}

ZT_MAIN(test_a_list_of_two_tokens_is_read_field_by_field, test_each_mistake_is_refused_naming_the_entry,
        test_more_than_the_limit_is_refused, test_the_single_token_setting_is_a_list_of_one_without_decimals)
