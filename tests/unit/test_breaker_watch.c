/* A breaker's state changes must reach /metrics and /health/ready: an open
 * circuit nobody can see is an outage nobody is paged for. */
#include <stdlib.h>

#include "breaker_watch.h"
#include "log.h"
#include "zl.h"
#include "zltest.h"

ZT_TEST(test_open_breaker_shows_in_metrics_and_turns_readiness_off)
{
    struct zl_metrics *m = zl_metrics_create(64);
    ZT_REQUIRE(m != NULL);
    struct zl_health *h = NULL;
    char err[ZL_ERRSTR_SIZE];
    struct zl_health_opts ho = {.stage = "test", .port = 0, .metrics = m};
    ZT_REQUIRE(zl_health_start(&h, &ho, err, sizeof(err)) == 0);
    zl_health_heartbeat(h);

    struct zl_breaker_watch w = {.stage = "test", .metrics = m, .health = h};
    zl_breaker_watch_register(&w, "rpc:primary");
    ZT_CHECK(zl_health_ready(h));

    struct zl_breaker_opts o;
    zl_breaker_opts_default(&o);
    o.minimum_throughput = 2;
    o.failure_ratio = 0.5;
    o.on_state_change = zl_breaker_watch_cb;
    o.opaque = &w;
    struct zl_breaker b;
    ZT_REQUIRE(zl_breaker_init(&b, "rpc:primary", &o, err, sizeof(err)) == 0);
    zl_breaker_record(&b, false, 1000);
    zl_breaker_record(&b, false, 1001);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, 1002));
    ZT_CHECK(!zl_health_ready(h));

    char *text = NULL;
    size_t len = 0;
    ZT_REQUIRE(zl_metrics_render(m, &text, &len) == 0);
    ZT_CHECK(strstr(text, "zl_breaker_state{stage=\"test\",dependency=\"rpc:primary\"} 2") != NULL);
    free(text);

    zl_breaker_reset(&b, 1003);
    ZT_CHECK(zl_health_ready(h));
    zl_breaker_destroy(&b);
    zl_health_stop(h);
    zl_metrics_destroy(m);
}

ZT_MAIN(test_open_breaker_shows_in_metrics_and_turns_readiness_off)
