/* Unit tests for common/rates.c: normalization, and the fallback order
 * primary -> fresh cache -> stale cache (up to its maximum age) -> static,
 * with time injected. */
#include "rates.h"
#include "zltest.h"

static const char TOKEN[] = "0x1111111111111111111111111111111111111111";

/* A primary source the test controls. */
struct fake {
    zl_class answer;
    const char *rate;
    int calls;
};

static zl_class fake_fetch(void *opaque, const char *token, char *rate, size_t rate_size, char *errstr,
                           size_t errstr_size)
{
    struct fake *f = opaque;
    (void)token;
    f->calls++;
    if (f->answer == ZL_OK)
        snprintf(rate, rate_size, "%s", f->rate);
    else
        snprintf(errstr, errstr_size, "fake source: %s", zl_class_name(f->answer));
    return f->answer;
}

static int setup(struct zl_rates *r, struct fake *f, const char *static_rate)
{
    struct zl_rates_opts o = {
        .primary = ZL_RATE_SRC_HTTP,
        .fetch = fake_fetch,
        .opaque = f,
        .ttl_ms = 1000,
        .stale_max_ms = 10000,
        .static_rate = static_rate,
    };
    char err[256];
    return zl_rates_init(r, &o, err, sizeof(err));
}

ZT_TEST(test_normalize_strips_zeros_and_refuses_non_rates)
{
    char out[ZL_RATE_SIZE];
    ZT_EQ_INT(0, zl_rate_normalize("007.50", out, sizeof(out)));
    ZT_EQ_STR("7.5", out);
    ZT_EQ_INT(0, zl_rate_normalize("3.000", out, sizeof(out)));
    ZT_EQ_STR("3", out);
    ZT_EQ_INT(0, zl_rate_normalize("0.005", out, sizeof(out)));
    ZT_EQ_STR("0.005", out);
    ZT_EQ_INT(-1, zl_rate_normalize("0", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize("0.000", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize(".5", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize("5.", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize("-1", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize("1e3", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize("1.2.3", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize("", out, sizeof(out)));
    ZT_EQ_INT(-1, zl_rate_normalize("0.0000000000000000001", out, sizeof(out))); /* 19 fraction digits */
    ZT_EQ_INT(0, zl_rate_normalize("0.000000000000000001", out, sizeof(out)));
}

ZT_TEST(test_fallback_order_cache_then_stale_until_max_age_then_static)
{
    struct zl_rates r;
    struct fake f = {ZL_OK, "1000.50", 0};
    ZT_REQUIRE(setup(&r, &f, "500") == 0);
    struct zl_rate got;
    char err[256];

    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 0, &got, err, sizeof(err)));
    ZT_EQ_STR("1000.5", got.value);
    ZT_EQ_STR("http", zl_rate_source_name(got.source));

    /* Within the TTL: the cache answers and the source is not asked. */
    f.answer = ZL_OUTAGE;
    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 999, &got, err, sizeof(err)));
    ZT_EQ_STR("http", zl_rate_source_name(got.source));
    ZT_EQ_INT(1, f.calls);

    /* Past the TTL, source down: the stale value, until stale_max_ms. */
    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 9999, &got, err, sizeof(err)));
    ZT_EQ_STR("stale_cache", zl_rate_source_name(got.source));
    ZT_EQ_STR("1000.5", got.value);
    ZT_EQ_INT(9999, (int)got.age_ms);

    /* Too old: the static rate. */
    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 10000, &got, err, sizeof(err)));
    ZT_EQ_STR("static", zl_rate_source_name(got.source));
    ZT_EQ_STR("500", got.value);

    /* Source back: fresh again. */
    f.answer = ZL_OK;
    f.rate = "999";
    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 20000, &got, err, sizeof(err)));
    ZT_EQ_STR("http", zl_rate_source_name(got.source));
    ZT_EQ_STR("999", got.value);
}

ZT_TEST(test_no_fallback_left_is_an_outage_not_a_permanent_failure)
{
    struct zl_rates r;
    struct fake f = {ZL_OUTAGE, NULL, 0};
    ZT_REQUIRE(setup(&r, &f, "") == 0);
    struct zl_rate got;
    char err[256] = "";
    ZT_EQ_INT(ZL_OUTAGE, zl_rates_get(&r, TOKEN, 0, &got, err, sizeof(err)));
    ZT_CHECK(strstr(err, "no static rate") != NULL);
}

ZT_TEST(test_source_without_a_rate_for_the_token_is_permanent_without_fallback)
{
    struct zl_rates r;
    struct fake f = {ZL_PERMANENT, NULL, 0};
    ZT_REQUIRE(setup(&r, &f, "500") == 0);
    struct zl_rate got;
    char err[256] = "";
    ZT_EQ_INT(ZL_PERMANENT, zl_rates_get(&r, TOKEN, 0, &got, err, sizeof(err)));
    ZT_CHECK(strstr(err, "no rate for token") != NULL);
}

ZT_TEST(test_bad_answer_from_source_falls_back_and_opens_the_breaker)
{
    struct zl_breaker b;
    struct zl_breaker_opts bo;
    zl_breaker_opts_default(&bo);
    bo.minimum_throughput = 2;
    bo.failure_ratio = 0.5;
    char err[256] = "";
    ZT_REQUIRE(zl_breaker_init(&b, "rate-source", &bo, err, sizeof(err)) == 0);
    struct fake f = {ZL_OK, "not-a-rate", 0};
    struct zl_rates r;
    struct zl_rates_opts o = {.primary = ZL_RATE_SRC_HTTP, .fetch = fake_fetch, .opaque = &f, .breaker = &b,
                              .ttl_ms = 0, .stale_max_ms = 0, .static_rate = "7"};
    ZT_REQUIRE(zl_rates_init(&r, &o, err, sizeof(err)) == 0);
    struct zl_rate got;
    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 0, &got, err, sizeof(err)));
    ZT_EQ_STR("static", zl_rate_source_name(got.source));
    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 1, &got, err, sizeof(err)));
    ZT_EQ_INT(2, f.calls);
    ZT_EQ_INT(ZL_BREAKER_OPEN, zl_breaker_state_at(&b, zl_now_ms()));
    /* Open: the source is not asked at all. */
    ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 2, &got, err, sizeof(err)));
    ZT_EQ_INT(2, f.calls);
    zl_breaker_destroy(&b);
}

ZT_TEST(test_init_refuses_bad_static_rate_and_ttl)
{
    struct zl_rates r;
    struct fake f = {ZL_OK, "1", 0};
    char err[256] = "";
    struct zl_rates_opts o = {.primary = ZL_RATE_SRC_DB, .fetch = fake_fetch, .opaque = &f, .ttl_ms = 10,
                              .stale_max_ms = 20, .static_rate = "0"};
    ZT_EQ_INT(-1, zl_rates_init(&r, &o, err, sizeof(err)));
    ZT_CHECK(strstr(err, "static rate") != NULL);
    o.static_rate = "";
    o.stale_max_ms = 5;
    ZT_EQ_INT(-1, zl_rates_init(&r, &o, err, sizeof(err)));
    ZT_CHECK(strstr(err, "stale_max_ms") != NULL);
}

ZT_TEST(test_http_body_parser_wants_a_decimal_string)
{
    char rate[ZL_RATE_SIZE];
    char err[256] = "";
    const char ok[] = "{\"rate\":\"1000.50\"}";
    ZT_EQ_INT(0, zl_rates_parse_http_body(ok, sizeof(ok) - 1, rate, sizeof(rate), err, sizeof(err)));
    ZT_EQ_STR("1000.5", rate);
    const char num[] = "{\"rate\":1000.5}";
    ZT_EQ_INT(-1, zl_rates_parse_http_body(num, sizeof(num) - 1, rate, sizeof(rate), err, sizeof(err)));
    const char dup[] = "{\"rate\":\"1\",\"rate\":\"2\"}";
    ZT_EQ_INT(-1, zl_rates_parse_http_body(dup, sizeof(dup) - 1, rate, sizeof(rate), err, sizeof(err)));
    ZT_EQ_INT(-1, zl_rates_parse_http_body("oops", 4, rate, sizeof(rate), err, sizeof(err)));
    const char zero[] = "{\"rate\":\"0\"}";
    ZT_EQ_INT(-1, zl_rates_parse_http_body(zero, sizeof(zero) - 1, rate, sizeof(rate), err, sizeof(err)));
}

ZT_TEST(test_malformed_token_is_permanent)
{
    struct zl_rates r;
    struct fake f = {ZL_OK, "1", 0};
    ZT_REQUIRE(setup(&r, &f, "") == 0);
    struct zl_rate got;
    char err[256] = "";
    ZT_EQ_INT(ZL_PERMANENT, zl_rates_get(&r, "0x12", 0, &got, err, sizeof(err)));
    ZT_EQ_INT(0, f.calls);
}

ZT_TEST(test_answer_no_rate_is_permanent_without_fallback_and_the_source_is_up)
{
    struct zl_rates r;
    struct fake f = {ZL_OK, "", 0}; /* the source answered: no rate for this token */
    ZT_REQUIRE(setup(&r, &f, "500") == 0);
    struct zl_rate got;
    char err[256] = "";
    ZT_EQ_INT(ZL_PERMANENT, zl_rates_get(&r, TOKEN, 0, &got, err, sizeof(err)));
    ZT_CHECK(strstr(err, "no rate for token") != NULL);
    /* The probe asks whether the source answers: it does. */
    ZT_EQ_INT(ZL_OK, zl_rates_probe(&r, 1, err, sizeof(err)));
}

ZT_TEST(test_probe_returns_the_class_the_source_returned)
{
    /* Each class comes back as the source decided it: the probe maps none
     * to another (a source down stays an outage, a refused query stays
     * permanent, so the stage stays paused rather than resuming into it). */
    const zl_class classes[] = {ZL_OUTAGE, ZL_TRANSIENT, ZL_PERMANENT};
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        struct zl_rates r;
        struct fake f = {ZL_OK, "2", 0};
        ZT_REQUIRE(setup(&r, &f, "") == 0);
        struct zl_rate got;
        char err[256] = "";
        ZT_EQ_INT(ZL_OK, zl_rates_get(&r, TOKEN, 0, &got, err, sizeof(err)));
        f.answer = classes[i];
        ZT_EQ_INT(classes[i], zl_rates_probe(&r, 5000, err, sizeof(err)));
        f.answer = ZL_OK;
        ZT_EQ_INT(ZL_OK, zl_rates_probe(&r, 5001, err, sizeof(err)));
    }
}

ZT_MAIN(test_normalize_strips_zeros_and_refuses_non_rates, test_fallback_order_cache_then_stale_until_max_age_then_static,
        test_no_fallback_left_is_an_outage_not_a_permanent_failure,
        test_source_without_a_rate_for_the_token_is_permanent_without_fallback,
        test_bad_answer_from_source_falls_back_and_opens_the_breaker, test_init_refuses_bad_static_rate_and_ttl,
        test_http_body_parser_wants_a_decimal_string, test_malformed_token_is_permanent,
        test_answer_no_rate_is_permanent_without_fallback_and_the_source_is_up,
        test_probe_returns_the_class_the_source_returned)
