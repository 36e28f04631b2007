/* test_ipfs_classes.c: the class common/ipfs gives each provider and gateway
 * outcome (ipfs.h), decided at the source, against one-answer HTTP servers
 * in this process: a provider down is an outage, an error answer or a busy
 * provider is transient, another CID is permanent, and the aggregate over
 * several providers follows pin_k. No external service needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canned_http.h"
#include "cid.h"
#include "ipfs.h"
#include "zltest.h"

static const char DOC[] = "{\"name\":\"zeroloss deposit receipt\"}";
static const char DOC_NAME[] = "doc.json";

static void doc_cid(char *cid, size_t cid_size)
{
    char err[ZL_ERRSTR_SIZE];
    ZT_REQUIRE(zl_cid_raw_v1(DOC, strlen(DOC), cid, cid_size, err, sizeof(err)) == 0);
}

/* Kubo's add answer for DOC_NAME under cid. */
static void kubo_answer(char *out, size_t out_size, const char *cid)
{
    snprintf(out, out_size, "{\"Name\":\"%s\",\"Hash\":\"%s\",\"Size\":\"%zu\"}\n", DOC_NAME, cid, strlen(DOC));
}

static struct zl_ipfs *client(const char *providers, int pin_k, const char *gateways)
{
    struct zl_ipfs_opts o = {
        .providers = providers,
        .gateways = gateways,
        .pin_k = pin_k,
        .verify_retrieval = gateways[0] != '\0',
        .timeout_ms = 3000,
        .connect_timeout_ms = 1000,
        .gateway_timeout_ms = 3000,
        .psa_poll_timeout_ms = 1000,
        .psa_poll_interval_ms = 10,
        .stage = "test",
    };
    zl_breaker_opts_default(&o.breaker);
    struct zl_ipfs *c = NULL;
    char err[ZL_ERRSTR_SIZE];
    if (zl_ipfs_new(&c, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl_ipfs_new: %s\n", err);
        abort();
    }
    return c;
}

/* The class zl_ipfs_pin gives DOC with one Kubo provider answering status
 * and body. */
static zl_class pin_against(int status, const char *body)
{
    struct canned s;
    canned_start(&s, status, body, NULL, NULL);
    char providers[64], cid[ZL_CID_SIZE], err[ZL_ERRSTR_SIZE];
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d", s.port);
    struct zl_ipfs *c = client(providers, 1, "");
    doc_cid(cid, sizeof(cid));
    zl_class got = zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err));
    zl_ipfs_free(c);
    canned_stop(&s);
    return got;
}

ZT_TEST(test_a_provider_answering_the_content_cid_pins)
{
    char cid[ZL_CID_SIZE], answer[512];
    doc_cid(cid, sizeof(cid));
    kubo_answer(answer, sizeof(answer), cid);
    ZT_EQ_INT(ZL_OK, pin_against(200, answer));
}

ZT_TEST(test_another_cid_is_permanent)
{
    char answer[512];
    kubo_answer(answer, sizeof(answer), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    ZT_EQ_INT(ZL_PERMANENT, pin_against(200, answer));
}

ZT_TEST(test_a_provider_down_is_an_outage)
{
    ZT_EQ_INT(ZL_OUTAGE, pin_against(500, "internal error"));
    ZT_EQ_INT(ZL_OUTAGE, pin_against(401, "{\"error\":\"bad token\"}"));
    char providers[64], cid[ZL_CID_SIZE], err[ZL_ERRSTR_SIZE];
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d", canned_dead_port());
    struct zl_ipfs *c = client(providers, 1, "");
    doc_cid(cid, sizeof(cid));
    ZT_EQ_INT(ZL_OUTAGE, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);
}

ZT_TEST(test_an_error_answer_or_a_busy_provider_is_transient)
{
    ZT_EQ_INT(ZL_TRANSIENT, pin_against(400, "{\"Message\":\"bad request\"}"));
    ZT_EQ_INT(ZL_TRANSIENT, pin_against(429, "{}"));
    ZT_EQ_INT(ZL_TRANSIENT, pin_against(200, "<html>not an add answer"));
}

ZT_TEST(test_the_aggregate_is_an_outage_only_when_too_few_providers_are_up)
{
    char cid[ZL_CID_SIZE], answer[512], providers[128], err[ZL_ERRSTR_SIZE];
    doc_cid(cid, sizeof(cid));
    kubo_answer(answer, sizeof(answer), cid);
    struct canned ok, bad;
    canned_start(&ok, 200, answer, NULL, NULL);
    canned_start(&bad, 400, "{\"Message\":\"bad request\"}", NULL, NULL);
    int dead = canned_dead_port();

    /* one down, one answering with an error, pin_k 1: a retry may pin it */
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d,kubo=http://127.0.0.1:%d", dead, bad.port);
    struct zl_ipfs *c = client(providers, 1, "");
    ZT_EQ_INT(ZL_TRANSIENT, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);

    /* one pins, one down, pin_k 2: fewer than pin_k are up */
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d,kubo=http://127.0.0.1:%d", ok.port, dead);
    c = client(providers, 2, "");
    ZT_EQ_INT(ZL_OUTAGE, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);

    /* the first down, the second pins, pin_k 1: pinned */
    snprintf(providers, sizeof(providers), "kubo=http://127.0.0.1:%d,kubo=http://127.0.0.1:%d", dead, ok.port);
    c = client(providers, 1, "");
    ZT_EQ_INT(ZL_OK, zl_ipfs_pin(c, DOC, strlen(DOC), DOC_NAME, cid, err, sizeof(err)));
    zl_ipfs_free(c);
    canned_stop(&ok);
    canned_stop(&bad);
}

ZT_TEST(test_gateways_down_are_an_outage_and_wrong_bytes_are_transient)
{
    char cid[ZL_CID_SIZE], answer[512], gateways[128], err[ZL_ERRSTR_SIZE];
    doc_cid(cid, sizeof(cid));
    kubo_answer(answer, sizeof(answer), cid);
    struct canned wrong;
    canned_start(&wrong, 200, "other bytes", NULL, NULL);
    int dead = canned_dead_port();

    snprintf(gateways, sizeof(gateways), "http://127.0.0.1:%d", dead);
    struct zl_ipfs *c = client("kubo=http://127.0.0.1:1", 1, gateways);
    ZT_EQ_INT(ZL_OUTAGE, zl_ipfs_verify(c, DOC, strlen(DOC), cid, err, sizeof(err)));
    zl_ipfs_free(c);

    /* a gateway serving other bytes is the gateway's fault, not the pin's */
    snprintf(gateways, sizeof(gateways), "http://127.0.0.1:%d,http://127.0.0.1:%d", dead, wrong.port);
    c = client("kubo=http://127.0.0.1:1", 1, gateways);
    ZT_EQ_INT(ZL_TRANSIENT, zl_ipfs_verify(c, DOC, strlen(DOC), cid, err, sizeof(err)));
    zl_ipfs_free(c);
    canned_stop(&wrong);
}

ZT_MAIN(test_a_provider_answering_the_content_cid_pins, test_another_cid_is_permanent,
        test_a_provider_down_is_an_outage, test_an_error_answer_or_a_busy_provider_is_transient,
        test_the_aggregate_is_an_outage_only_when_too_few_providers_are_up,
        test_gateways_down_are_an_outage_and_wrong_bytes_are_transient)
