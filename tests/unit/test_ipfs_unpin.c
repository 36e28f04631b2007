/* test_ipfs_unpin.c: what common/ipfs_unpin.c makes of each provider's
 * answer to an unpin (ipfs.h, zl_ipfs_unpin), against one-answer HTTP
 * servers in this process: removed and "not pinned" are both done (so an
 * unpin run again after a crash is harmless), a provider down is an outage,
 * any other refusal is transient; and the Pinning Service API listing
 * parser keeps only its CID's requests. No external service needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canned_http.h"
#include "cid.h"
#include "ipfs.h"
#include "zltest.h"

static const char DOC[] = "{\"name\":\"zeroloss deposit receipt\"}";

static void doc_cid(char *cid, size_t cid_size)
{
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_cid_raw_v1(DOC, strlen(DOC), cid, cid_size, err, sizeof(err)) == 0);
}

/* zl_ipfs_unpin of DOC's CID with one provider of `kind` answering status
 * and body; *removed gets how many providers had a pin. */
static zl_class unpin_against(const char *kind, int status, const char *body, int *removed)
{
    struct canned s;
    canned_start(&s, status, body, NULL, NULL);
    char providers[64], cid[ZL_CID_SIZE], err[ZL_ERRSTR_SIZE];
    snprintf(providers, sizeof(providers), "%s=http://127.0.0.1:%d", kind, s.port);
    struct zl_ipfs_opts o = {
        .providers = providers,
        .gateways = "",
        .pin_k = 1,
        .timeout_ms = 3000,
        .connect_timeout_ms = 1000,
        .gateway_timeout_ms = 3000,
        .pinata_jwt = "test-jwt",
        .psa_token = "test-token",
        .psa_poll_timeout_ms = 1000,
        .psa_poll_interval_ms = 10,
        .stage = "test",
    };
    zl_breaker_opts_default(&o.breaker);
    struct zl_ipfs *c = NULL;
    if (zl_ipfs_new(&c, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl_ipfs_new: %s\n", err);
        abort();
    }
    doc_cid(cid, sizeof(cid));
    zl_class got = zl_ipfs_unpin(c, cid, removed, err, sizeof(err));
    zl_ipfs_free(c);
    canned_stop(&s);
    return got;
}

ZT_TEST(test_kubo_removed_and_not_pinned_are_both_done)
{
    char cid[ZL_CID_SIZE], answer[256];
    doc_cid(cid, sizeof(cid));
    snprintf(answer, sizeof(answer), "{\"Pins\":[\"%s\"]}", cid);
    int removed = -1;
    ZT_EQ_INT(ZL_OK, unpin_against("kubo", 200, answer, &removed));
    ZT_EQ_INT(1, removed);
    ZT_EQ_INT(ZL_OK, unpin_against("kubo", 500, "{\"Message\":\"not pinned or pinned indirectly\",\"Code\":0,"
                                                "\"Type\":\"error\"}", &removed));
    ZT_EQ_INT(0, removed);
}

ZT_TEST(test_kubo_failing_otherwise_is_an_outage)
{
    int removed = -1;
    ZT_EQ_INT(ZL_OUTAGE, unpin_against("kubo", 500, "{\"Message\":\"context deadline exceeded\"}", &removed));
    ZT_EQ_INT(0, removed);
}

ZT_TEST(test_pinata_removed_not_pinned_and_refused)
{
    int removed = -1;
    ZT_EQ_INT(ZL_OK, unpin_against("pinata", 200, "OK", &removed));
    ZT_EQ_INT(1, removed);
    ZT_EQ_INT(ZL_OK, unpin_against("pinata", 400, "{\"error\":{\"reason\":\"CURRENT_USER_HAS_NOT_PINNED_CID\","
                                                  "\"details\":\"The current user has not pinned the cid\"}}",
                                   &removed));
    ZT_EQ_INT(0, removed);
    ZT_EQ_INT(ZL_OK, unpin_against("pinata", 404, "{\"error\":\"not found\"}", &removed));
    ZT_EQ_INT(0, removed);
    ZT_EQ_INT(ZL_TRANSIENT, unpin_against("pinata", 400, "{\"error\":{\"reason\":\"INVALID_ROUTE\"}}", &removed));
    ZT_EQ_INT(ZL_TRANSIENT, unpin_against("pinata", 429, "{\"error\":{\"reason\":\"RATE_LIMITED\"}}", &removed));
    ZT_EQ_INT(ZL_OUTAGE, unpin_against("pinata", 403, "{\"error\":{\"reason\":\"NO_SCOPES_FOUND\"}}", &removed));
}

ZT_TEST(test_a_psa_listing_with_nothing_for_the_cid_is_done)
{
    int removed = -1;
    ZT_EQ_INT(ZL_OK, unpin_against("psa", 200, "{\"count\":0,\"results\":[]}", &removed));
    ZT_EQ_INT(0, removed);
}

ZT_TEST(test_a_provider_down_is_an_outage_and_a_cid_that_is_not_one_is_permanent)
{
    char providers[64], err[ZL_ERRSTR_SIZE];
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d", canned_dead_port());
    struct zl_ipfs_opts o = {.providers = providers, .gateways = "", .pin_k = 1, .timeout_ms = 1000,
                             .connect_timeout_ms = 500, .gateway_timeout_ms = 1000, .stage = "test"};
    zl_breaker_opts_default(&o.breaker);
    struct zl_ipfs *c = NULL;
    ZT_REQUIRE(zl_ipfs_new(&c, &o, err, sizeof(err)) == 0);
    char cid[ZL_CID_SIZE];
    doc_cid(cid, sizeof(cid));
    ZT_EQ_INT(ZL_OUTAGE, zl_ipfs_unpin(c, cid, NULL, err, sizeof(err)));
    /* it would go into a URL */
    ZT_EQ_INT(ZL_PERMANENT, zl_ipfs_unpin(c, "bafkrei/../../api/v0/shutdown", NULL, err, sizeof(err)));
    zl_ipfs_free(c);
}

ZT_TEST(test_the_psa_listing_keeps_only_its_cids_requests)
{
    char cid[ZL_CID_SIZE], body[1024], err[ZL_ERRSTR_SIZE];
    char ids[4][ZL_IPFS_PSA_REQUESTID_SIZE];
    doc_cid(cid, sizeof(cid));
    snprintf(body, sizeof(body),
             "{\"count\":3,\"results\":["
             "{\"requestid\":\"r1\",\"status\":\"pinned\",\"pin\":{\"cid\":\"%s\"}},"
             "{\"requestid\":\"r2\",\"status\":\"pinned\",\"pin\":{\"cid\":\"bafkreiotherotherotherotherother\"}},"
             "{\"requestid\":\"r3\",\"status\":\"queued\",\"pin\":{\"cid\":\"%s\"}}]}",
             cid, cid);
    size_t n = 0;
    long long count = -1;
    ZT_EQ_INT(0, zl_ipfs_parse_psa_list(body, strlen(body), cid, ids, 4, &n, &count, err, sizeof(err)));
    ZT_EQ_INT(2, n);
    ZT_EQ_INT(3, count);
    ZT_EQ_STR("r1", ids[0]);
    ZT_EQ_STR("r3", ids[1]);
    /* at most max */
    ZT_EQ_INT(0, zl_ipfs_parse_psa_list(body, strlen(body), cid, ids, 1, &n, &count, err, sizeof(err)));
    ZT_EQ_INT(1, n);

    /* a requestid that would change the DELETE's path */
    snprintf(body, sizeof(body),
             "{\"count\":1,\"results\":[{\"requestid\":\"../pins\",\"status\":\"pinned\",\"pin\":{\"cid\":\"%s\"}}]}",
             cid);
    ZT_EQ_INT(-1, zl_ipfs_parse_psa_list(body, strlen(body), cid, ids, 4, &n, &count, err, sizeof(err)));
    ZT_EQ_INT(0, n);
    ZT_EQ_INT(-1, zl_ipfs_parse_psa_list("[]", 2, cid, ids, 4, &n, &count, err, sizeof(err)));
    ZT_EQ_INT(-1, zl_ipfs_parse_psa_list("{\"count\":-1,\"results\":[]}", 26, cid, ids, 4, &n, &count, err,
                                         sizeof(err)));
}

ZT_MAIN(test_kubo_removed_and_not_pinned_are_both_done, test_kubo_failing_otherwise_is_an_outage,
        test_pinata_removed_not_pinned_and_refused, test_a_psa_listing_with_nothing_for_the_cid_is_done,
        test_a_provider_down_is_an_outage_and_a_cid_that_is_not_one_is_permanent,
        test_the_psa_listing_keeps_only_its_cids_requests)
