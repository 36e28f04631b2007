/* test_webhook_sign.c: the webhook signature against vectors computed
 * independently of this code, with Python's hmac:
 *
 *   import hmac, hashlib
 *   body = b'{"deposit_id":"1:0xab:0","eggs":"42"}'
 *   hmac.new(b'whsec_test_secret_0123456789', b'1700000000.' + body, hashlib.sha256).hexdigest()
 *   # cdb84153caa48fff50202a0e217335fd3b69cd4a59f93f01e1e56970022c140d
 *   hmac.new(b'whsec_old_secret_abcdefghij', b'1700000000.' + body, hashlib.sha256).hexdigest()
 *   # ea02ef0e28ea05a7cfa2ebbd0b3c6d1af30462f9b8125a43ef6152aa6a2458be
 */
#include <string.h>

#include "webhook_sign.h"
#include "zltest.h"

static const char BODY[] = "{\"deposit_id\":\"1:0xab:0\",\"eggs\":\"42\"}";
static const char NEW[] = "whsec_test_secret_0123456789";
static const char OLD[] = "whsec_old_secret_abcdefghij";
static const char NEW_HEX[] = "cdb84153caa48fff50202a0e217335fd3b69cd4a59f93f01e1e56970022c140d";
static const char OLD_HEX[] = "ea02ef0e28ea05a7cfa2ebbd0b3c6d1af30462f9b8125a43ef6152aa6a2458be";

ZT_TEST(test_hmac_matches_pythons_hmac)
{
    char hex[ZL_WEBHOOK_SIG_HEX_SIZE];
    zl_webhook_hmac_hex(NEW, 1700000000, BODY, strlen(BODY), hex);
    ZT_EQ_STR(NEW_HEX, hex);
}

ZT_TEST(test_header_carries_one_v1_per_secret_during_a_rotation)
{
    char h[ZL_WEBHOOK_HEADER_SIZE];
    const char *both[] = {NEW, OLD};
    ZT_EQ_INT(0, zl_webhook_sign(both, 2, 1700000000, BODY, strlen(BODY), h, sizeof(h)));
    char want[ZL_WEBHOOK_HEADER_SIZE];
    snprintf(want, sizeof(want), "t=1700000000,v1=%s,v1=%s", NEW_HEX, OLD_HEX);
    ZT_EQ_STR(want, h);
    ZT_EQ_INT(0, zl_webhook_sign(both, 1, 1700000000, BODY, strlen(BODY), h, sizeof(h)));
    snprintf(want, sizeof(want), "t=1700000000,v1=%s", NEW_HEX);
    ZT_EQ_STR(want, h);
}

ZT_TEST(test_sign_refuses_no_secret_an_empty_one_and_a_short_buffer)
{
    char h[ZL_WEBHOOK_HEADER_SIZE];
    const char *empty[] = {""};
    ZT_EQ_INT(-1, zl_webhook_sign(empty, 1, 1, BODY, strlen(BODY), h, sizeof(h)));
    ZT_EQ_STR("", h);
    const char *one[] = {NEW};
    ZT_EQ_INT(-1, zl_webhook_sign(one, 0, 1, BODY, strlen(BODY), h, sizeof(h)));
    ZT_EQ_INT(-1, zl_webhook_sign(one, 1, 1700000000, BODY, strlen(BODY), h, 40));
    ZT_EQ_STR("", h);
}

ZT_TEST(test_verify_accepts_either_secret_and_refuses_tampering_and_stale_times)
{
    char h[ZL_WEBHOOK_HEADER_SIZE], err[256];
    const char *both[] = {NEW, OLD};
    ZT_REQUIRE(zl_webhook_sign(both, 2, 1700000000, BODY, strlen(BODY), h, sizeof(h)) == 0);
    ZT_EQ_INT(0, zl_webhook_verify(h, NEW, BODY, strlen(BODY), 1700000100, 300, err, sizeof(err)));
    ZT_EQ_INT(0, zl_webhook_verify(h, OLD, BODY, strlen(BODY), 1700000100, 300, err, sizeof(err)));
    ZT_EQ_INT(-1, zl_webhook_verify(h, "whsec_someone_else_entirely", BODY, strlen(BODY), 1700000100, 300, err,
                                    sizeof(err)));
    ZT_EQ_INT(-1, zl_webhook_verify(h, NEW, "{\"eggs\":\"43\"}", 13, 1700000100, 300, err, sizeof(err)));
    ZT_EQ_INT(-1, zl_webhook_verify(h, NEW, BODY, strlen(BODY), 1700000301, 300, err, sizeof(err)));
    ZT_CHECK(strstr(err, "outside") != NULL);
    ZT_EQ_INT(-1, zl_webhook_verify("v1=abc", NEW, BODY, strlen(BODY), 1700000000, 300, err, sizeof(err)));
}

ZT_MAIN(test_hmac_matches_pythons_hmac, test_header_carries_one_v1_per_secret_during_a_rotation,
        test_sign_refuses_no_secret_an_empty_one_and_a_short_buffer,
        test_verify_accepts_either_secret_and_refuses_tampering_and_stale_times)
