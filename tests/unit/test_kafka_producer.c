/* test_kafka_producer.c: every producer zeroloss makes keeps acks=all and
 * the idempotent producer, whatever pass-through properties an operator
 * gives (a managed cluster's sample config often says acks=1). Creating a
 * producer does not connect, so no broker is needed. */
#include <string.h>

#include "kafka.h"
#include "zltest.h"

static rd_kafka_t *with_prop(const char *key, const char *value, char *err, size_t err_size)
{
    static struct zl_kv_list props;
    props.items[0].key = (char *)key;
    props.items[0].value = (char *)value;
    props.count = 1;
    return zl_kafka_producer_new("127.0.0.1:1", &props, 1000, NULL, NULL, err, err_size);
}

ZT_TEST(test_a_pass_through_that_weakens_acks_or_idempotence_is_refused_by_name)
{
    char err[512] = "";
    ZT_CHECK(with_prop("acks", "1", err, sizeof(err)) == NULL);
    ZT_CHECK(strstr(err, "acks=1") != NULL && strstr(err, "acks=all") != NULL);
    ZT_CHECK(with_prop("request.required.acks", "0", err, sizeof(err)) == NULL); /* acks' other name */
    ZT_CHECK(strstr(err, "acks=0") != NULL);
    ZT_CHECK(with_prop("enable.idempotence", "false", err, sizeof(err)) == NULL);
    ZT_CHECK(strstr(err, "enable.idempotence=false") != NULL);
}

ZT_TEST(test_the_defaults_and_a_harmless_pass_through_make_a_producer)
{
    char err[512] = "";
    rd_kafka_t *rk = zl_kafka_producer_new("127.0.0.1:1", NULL, 1000, NULL, NULL, err, sizeof(err));
    ZT_REQUIRE(rk != NULL);
    char acks[16];
    size_t n = sizeof(acks);
    ZT_REQUIRE(rd_kafka_conf_get(rd_kafka_conf(rk), "acks", acks, &n) == RD_KAFKA_CONF_OK);
    ZT_EQ_STR("-1", acks);
    ZT_CHECK(zl_kafka_producer_guarantees(rd_kafka_conf(rk), err, sizeof(err)) == 0);
    rd_kafka_destroy(rk);
    rk = with_prop("acks", "all", err, sizeof(err)); /* saying it again is fine */
    ZT_REQUIRE(rk != NULL);
    rd_kafka_destroy(rk);
    rk = with_prop("linger.ms", "20", err, sizeof(err));
    ZT_REQUIRE(rk != NULL);
    rd_kafka_destroy(rk);
}

ZT_MAIN(test_a_pass_through_that_weakens_acks_or_idempotence_is_refused_by_name,
        test_the_defaults_and_a_harmless_pass_through_make_a_producer)
