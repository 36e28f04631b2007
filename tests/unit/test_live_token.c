/* test_live_token.c: the live server's per-user tokens (common/live.h): the
 * recipe an operator's backend follows gives the same text, a user id with
 * dots survives, and every altered, expired or malformed token is refused
 * with the reason the 401 names. */
#include <stdint.h>
#include <string.h>

#include "live.h"
#include "zltest.h"

#define SECRET "k3y"
#define NOW 1900000000

/* HMAC-SHA256("k3y", "u.1.x.2000000000") from Python's hmac module. */
#define KNOWN "u.1.x.2000000000.e7d411f48e9da3766841cb71acf067be937f15433f21690c1d6fc536c001ade2"

ZT_TEST(test_mint_follows_the_documented_recipe)
{
    char tok[ZL_LIVE_TOKEN_SIZE];
    ZT_EQ_INT(0, zl_live_token_mint(SECRET, "u.1.x", 2000000000, tok, sizeof(tok)));
    ZT_EQ_STR(KNOWN, tok);
}

ZT_TEST(test_check_takes_a_good_token_and_returns_its_user_with_dots)
{
    char user[ZL_LIVE_USER_BYTES_MAX + 1];
    const char *why = NULL;
    ZT_EQ_INT(0, zl_live_token_check(SECRET, KNOWN, NOW, user, sizeof(user), &why));
    ZT_EQ_STR("u.1.x", user);
}

static const char *refused(const char *token, int64_t now)
{
    char user[ZL_LIVE_USER_BYTES_MAX + 1];
    const char *why = "accepted";
    if (zl_live_token_check(SECRET, token, now, user, sizeof(user), &why) == 0)
        return "accepted";
    ZT_EQ_STR("", user);
    return why;
}

ZT_TEST(test_check_refuses_altered_expired_and_malformed_tokens)
{
    char t[sizeof(KNOWN) + 8];
    ZT_EQ_STR("token expired", refused(KNOWN, 2000000000));
    ZT_EQ_STR("token expired", refused(KNOWN, 2000000001));
    memcpy(t, KNOWN, sizeof(KNOWN));
    t[0] = 'v'; /* another user */
    ZT_EQ_STR("bad signature", refused(t, NOW));
    memcpy(t, KNOWN, sizeof(KNOWN));
    t[6] = '3'; /* a later expiry */
    ZT_EQ_STR("bad signature", refused(t, NOW));
    memcpy(t, KNOWN, sizeof(KNOWN));
    t[sizeof(KNOWN) - 2] ^= 1; /* the MAC */
    ZT_EQ_STR("bad signature", refused(t, NOW));
    ZT_EQ_STR("malformed token", refused("", NOW));
    ZT_EQ_STR("malformed token", refused("nodots", NOW));
    ZT_EQ_STR("malformed token", refused(".2000000000.e7d411f48e9da3766841cb71acf067be937f15433f21690c1d6fc536c001ade2",
                                         NOW));
    ZT_EQ_STR("malformed token", refused("u.+2000000000.e7d411f48e9da3766841cb71acf067be937f15433f21690c1d6fc536c001ade2",
                                         NOW));
    ZT_EQ_STR("malformed token", refused("u.1.x.2000000000.e7d4", NOW));
    /* another secret's; why may be NULL */
    ZT_EQ_INT(-1, zl_live_token_check("other", KNOWN, NOW, t, sizeof(t), NULL));
}

ZT_TEST(test_mint_refuses_an_empty_or_too_long_user)
{
    char tok[ZL_LIVE_TOKEN_SIZE];
    char user[ZL_LIVE_USER_BYTES_MAX + 2];
    memset(user, 'a', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    ZT_EQ_INT(-1, zl_live_token_mint(SECRET, "", NOW, tok, sizeof(tok)));
    ZT_EQ_STR("", tok);
    ZT_EQ_INT(-1, zl_live_token_mint(SECRET, user, NOW, tok, sizeof(tok)));
    user[ZL_LIVE_USER_BYTES_MAX] = '\0';
    ZT_EQ_INT(0, zl_live_token_mint(SECRET, user, NOW, tok, sizeof(tok)));
    ZT_EQ_INT(-1, zl_live_token_mint(SECRET, "u", NOW, tok, 10));
}

ZT_MAIN(test_mint_follows_the_documented_recipe, test_check_takes_a_good_token_and_returns_its_user_with_dots,
        test_check_refuses_altered_expired_and_malformed_tokens, test_mint_refuses_an_empty_or_too_long_user)
