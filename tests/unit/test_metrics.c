/* Unit tests for common/metrics: exact exposition text, bucket
 * cumulativity, label rules, the series limit and exact totals under
 * concurrent updates. */
#include "metrics.h"
#include "zltest.h"

#include <pthread.h>
#include <stdlib.h>

/* The block every render ends with, with the three drop counts. */
#define DROPPED_BLOCK(series_max, type_mismatch, invalid)                      \
    "# HELP zl_metrics_dropped_total Metric updates dropped: series_max = "   \
    "no free series slot, type_mismatch = wrong type for the name, invalid "  \
    "= bad name, labels or value.\n"                                           \
    "# TYPE zl_metrics_dropped_total counter\n"                                \
    "zl_metrics_dropped_total{reason=\"series_max\"} " #series_max "\n"        \
    "zl_metrics_dropped_total{reason=\"type_mismatch\"} " #type_mismatch "\n"  \
    "zl_metrics_dropped_total{reason=\"invalid\"} " #invalid "\n"

/* Renders reg into a static buffer so tests can compare strings; returns
 * "(render failed)" when render fails. */
static const char *render(struct zl_metrics *reg)
{
    static char page[16384];
    char *out = NULL;
    size_t len = 0;
    if (zl_metrics_render(reg, &out, &len) != 0 || out == NULL)
        return "(render failed)";
    if (strlen(out) != len || len >= sizeof(page)) {
        free(out);
        return "(render length wrong)";
    }
    memcpy(page, out, len + 1);
    free(out);
    return page;
}

ZT_TEST(test_counter_renders_help_type_and_series_exactly)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_describe(reg, "zl_messages_total",
                                     ZL_METRIC_COUNTER,
                                     "Messages processed, by outcome."));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_messages_total",
                                        "stage=\"verify\",outcome=\"ok\"", 3));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_messages_total",
                                        "stage=\"verify\",outcome=\"dlq\"", 1));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_messages_total",
                                        "stage=\"verify\",outcome=\"ok\"", 2));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_up_total", NULL, 7));
    ZT_EQ_STR("# HELP zl_messages_total Messages processed, by outcome.\n"
              "# TYPE zl_messages_total counter\n"
              "zl_messages_total{stage=\"verify\",outcome=\"ok\"} 5\n"
              "zl_messages_total{stage=\"verify\",outcome=\"dlq\"} 1\n"
              "# TYPE zl_up_total counter\n"
              "zl_up_total 7\n" DROPPED_BLOCK(0, 0, 0),
              render(reg));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_gauge_set_and_add_render_shortest_exact_decimal)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_describe(reg, "zl_breaker_state", ZL_METRIC_GAUGE,
                                     "0 closed, 1 open, 2 half-open."));
    ZT_EQ_INT(0, zl_metrics_gauge_set(reg, "zl_breaker_state",
                                      "dep=\"postgres\"", 1));
    ZT_EQ_INT(0, zl_metrics_gauge_set(reg, "zl_breaker_state",
                                      "dep=\"rpc\"", 2));
    ZT_EQ_INT(0, zl_metrics_gauge_add(reg, "zl_breaker_state",
                                      "dep=\"rpc\"", -2));
    zl_metric *lag = zl_metrics_gauge_handle(reg, "zl_consumer_lag",
                                             "partition=\"0\"");
    zl_metric_gauge_set(lag, 9007199254740992.0); /* 2^53: still exact */
    zl_metric *ratio = zl_metrics_gauge_handle(reg, "zl_ratio", "");
    zl_metric_gauge_set(ratio, 0.5);
    zl_metric_gauge_add(ratio, -0.75);
    ZT_EQ_INT(0, zl_metrics_gauge_set(reg, "zl_tenth", NULL, 0.1));
    ZT_EQ_STR("# HELP zl_breaker_state 0 closed, 1 open, 2 half-open.\n"
              "# TYPE zl_breaker_state gauge\n"
              "zl_breaker_state{dep=\"postgres\"} 1\n"
              "zl_breaker_state{dep=\"rpc\"} 0\n"
              "# TYPE zl_consumer_lag gauge\n"
              "zl_consumer_lag{partition=\"0\"} 9007199254740992\n"
              "# TYPE zl_ratio gauge\n"
              "zl_ratio -0.25\n"
              "# TYPE zl_tenth gauge\n"
              "zl_tenth 0.1\n" DROPPED_BLOCK(0, 0, 0),
              render(reg));
    ZT_CHECK(zl_metric_gauge_value(ratio) == -0.25);
    zl_metrics_destroy(reg);
}

ZT_TEST(test_histogram_buckets_are_cumulative_with_sum_and_count)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    const double bounds[] = {0.01, 0.1, 1};
    ZT_EQ_INT(0, zl_metrics_describe_histogram(reg, "zl_latency_seconds",
                                               "Processing latency.",
                                               bounds, 3));
    zl_metric *h = zl_metrics_histogram_handle(reg, "zl_latency_seconds",
                                               "stage=\"mint\"");
    zl_metric_observe(h, 0.005); /* bucket 0.01 */
    zl_metric_observe(h, 0.01);  /* le is inclusive: bucket 0.01 */
    zl_metric_observe(h, 0.5);   /* bucket 1 */
    zl_metric_observe(h, 2.5);   /* only +Inf */
    ZT_EQ_INT(0, zl_metrics_observe(reg, "zl_latency_seconds", NULL, 0.25));
    ZT_EQ_STR("# HELP zl_latency_seconds Processing latency.\n"
              "# TYPE zl_latency_seconds histogram\n"
              "zl_latency_seconds_bucket{stage=\"mint\",le=\"0.01\"} 2\n"
              "zl_latency_seconds_bucket{stage=\"mint\",le=\"0.1\"} 2\n"
              "zl_latency_seconds_bucket{stage=\"mint\",le=\"1\"} 3\n"
              "zl_latency_seconds_bucket{stage=\"mint\",le=\"+Inf\"} 4\n"
              "zl_latency_seconds_sum{stage=\"mint\"} 3.015\n"
              "zl_latency_seconds_count{stage=\"mint\"} 4\n"
              "zl_latency_seconds_bucket{le=\"0.01\"} 0\n"
              "zl_latency_seconds_bucket{le=\"0.1\"} 0\n"
              "zl_latency_seconds_bucket{le=\"1\"} 1\n"
              "zl_latency_seconds_bucket{le=\"+Inf\"} 1\n"
              "zl_latency_seconds_sum 0.25\n"
              "zl_latency_seconds_count 1\n" DROPPED_BLOCK(0, 0, 0),
              render(reg));
    ZT_EQ_INT(4, zl_metric_histogram_count(h));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_histogram_without_bounds_uses_latency_buckets_1ms_to_10s)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_observe(reg, "zl_wait_seconds", NULL, 0.003));
    ZT_EQ_STR("# TYPE zl_wait_seconds histogram\n"
              "zl_wait_seconds_bucket{le=\"0.001\"} 0\n"
              "zl_wait_seconds_bucket{le=\"0.0025\"} 0\n"
              "zl_wait_seconds_bucket{le=\"0.005\"} 1\n"
              "zl_wait_seconds_bucket{le=\"0.01\"} 1\n"
              "zl_wait_seconds_bucket{le=\"0.025\"} 1\n"
              "zl_wait_seconds_bucket{le=\"0.05\"} 1\n"
              "zl_wait_seconds_bucket{le=\"0.1\"} 1\n"
              "zl_wait_seconds_bucket{le=\"0.25\"} 1\n"
              "zl_wait_seconds_bucket{le=\"0.5\"} 1\n"
              "zl_wait_seconds_bucket{le=\"1\"} 1\n"
              "zl_wait_seconds_bucket{le=\"2.5\"} 1\n"
              "zl_wait_seconds_bucket{le=\"5\"} 1\n"
              "zl_wait_seconds_bucket{le=\"10\"} 1\n"
              "zl_wait_seconds_bucket{le=\"+Inf\"} 1\n"
              "zl_wait_seconds_sum 0.003\n"
              "zl_wait_seconds_count 1\n" DROPPED_BLOCK(0, 0, 0),
              render(reg));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_histogram_drops_nan_and_rejects_le_label)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    zl_metric *h = zl_metrics_histogram_handle(reg, "zl_h_seconds", "");
    zl_metric_observe(h, 0.2);
    zl_metric_observe(h, 0.0 / 0.0);
    ZT_EQ_INT(1, zl_metric_histogram_count(h));
    ZT_EQ_INT(-1, zl_metrics_observe(reg, "zl_h_seconds", "le=\"1\"", 0.1));
    ZT_EQ_INT(2, zl_metrics_dropped(reg));
    ZT_CHECK(strstr(render(reg), "zl_h_seconds_sum 0.2\n") != NULL);
    ZT_CHECK(strstr(render(reg),
                    "zl_metrics_dropped_total{reason=\"invalid\"} 2\n") != NULL);
    zl_metrics_destroy(reg);
}

ZT_TEST(test_families_render_in_registration_order_not_name_order)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_describe(reg, "zz_first_total", ZL_METRIC_COUNTER,
                                     "First."));
    ZT_EQ_INT(0, zl_metrics_describe(reg, "aa_second", ZL_METRIC_GAUGE,
                                     "Second."));
    ZT_EQ_INT(0, zl_metrics_describe(reg, "mm_unused_total",
                                     ZL_METRIC_COUNTER, "No series yet."));
    /* Series of the first family created after the second's: they still
     * render together, under their own HELP and TYPE. */
    ZT_EQ_INT(0, zl_metrics_gauge_set(reg, "aa_second", "k=\"b\"", 2));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zz_first_total", "k=\"z\"", 1));
    ZT_EQ_INT(0, zl_metrics_gauge_set(reg, "aa_second", "k=\"a\"", 1));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zz_first_total", "k=\"a\"", 2));
    ZT_EQ_STR("# HELP zz_first_total First.\n"
              "# TYPE zz_first_total counter\n"
              "zz_first_total{k=\"z\"} 1\n"
              "zz_first_total{k=\"a\"} 2\n"
              "# HELP aa_second Second.\n"
              "# TYPE aa_second gauge\n"
              "aa_second{k=\"b\"} 2\n"
              "aa_second{k=\"a\"} 1\n" DROPPED_BLOCK(0, 0, 0),
              render(reg));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_help_text_backslash_and_newline_are_escaped)
{
    struct zl_metrics *reg = zl_metrics_create(4);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_describe(reg, "zl_x_total", ZL_METRIC_COUNTER,
                                     "a\\b\nc \"q\""));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_x_total", "", 1));
    ZT_CHECK(strstr(render(reg),
                    "# HELP zl_x_total a\\\\b\\nc \"q\"\n") != NULL);
    zl_metrics_destroy(reg);
}

ZT_TEST(test_series_limit_drops_updates_and_counts_them)
{
    struct zl_metrics *reg = zl_metrics_create(2);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_a_total", "n=\"1\"", 1));
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_a_total", "n=\"2\"", 1));
    /* Full: a third series is refused, every time, without growing. */
    ZT_EQ_INT(-1, zl_metrics_counter_add(reg, "zl_a_total", "n=\"3\"", 1));
    ZT_EQ_INT(-1, zl_metrics_gauge_set(reg, "zl_b", "", 1));
    zl_metric *sink = zl_metrics_counter_handle(reg, "zl_a_total", "n=\"4\"");
    ZT_REQUIRE(sink != NULL);
    zl_metric_counter_add(sink, 1);
    zl_metric_counter_add(sink, 1);
    ZT_EQ_INT(0, zl_metric_counter_value(sink));
    /* Existing series still update. */
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_a_total", "n=\"1\"", 4));
    ZT_EQ_INT(4, zl_metrics_dropped(reg));
    ZT_EQ_STR("# TYPE zl_a_total counter\n"
              "zl_a_total{n=\"1\"} 5\n"
              "zl_a_total{n=\"2\"} 1\n" DROPPED_BLOCK(4, 0, 0),
              render(reg));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_type_mismatch_is_dropped_and_counted)
{
    struct zl_metrics *reg = zl_metrics_create(8);
    ZT_REQUIRE(reg != NULL);
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_c_total", "", 1));
    ZT_EQ_INT(-1, zl_metrics_gauge_set(reg, "zl_c_total", "", 5));
    ZT_EQ_INT(-1, zl_metrics_gauge_set(reg, "zl_c_total", "other=\"x\"", 5));
    zl_metric *c = zl_metrics_counter_handle(reg, "zl_c_total", "");
    zl_metric_gauge_set(c, 3);
    zl_metric_observe(c, 3);
    ZT_EQ_INT(1, zl_metric_counter_value(c));
    ZT_EQ_INT(-1, zl_metrics_describe(reg, "zl_c_total", ZL_METRIC_GAUGE, "x"));
    ZT_EQ_STR("# TYPE zl_c_total counter\n"
              "zl_c_total 1\n" DROPPED_BLOCK(0, 4, 0),
              render(reg));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_malformed_names_and_labels_are_rejected_not_rendered)
{
    struct zl_metrics *reg = zl_metrics_create(16);
    ZT_REQUIRE(reg != NULL);
    static const char *const bad_labels[] = {
        "stage=verify",              /* unquoted value */
        "stage=\"a\"b\"",            /* unescaped quote */
        "stage=\"a\nb\"",            /* raw newline */
        "stage=\"a\\xb\"",           /* unknown escape */
        "stage=\"a\"",               /* fine: control below */
        "stage=\"a\",",              /* trailing comma */
        "1stage=\"a\"",              /* name starts with a digit */
        "k=\"a\",k=\"b\"",           /* duplicate name */
        "stage=\"unterminated",
    };
    int accepted = 0;
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        if (zl_metrics_counter_add(reg, "zl_ok_total", bad_labels[i], 1) == 0)
            accepted++;
    }
    ZT_EQ_INT(1, accepted); /* only the control */
    ZT_EQ_INT(-1, zl_metrics_counter_add(reg, "9bad", "", 1));
    ZT_EQ_INT(-1, zl_metrics_counter_add(reg, "bad-name", "", 1));
    ZT_EQ_INT(-1, zl_metrics_counter_add(reg, "zl_metrics_dropped_total", "", 1));
    ZT_EQ_INT(-1, zl_metrics_describe(reg, "bad name", ZL_METRIC_GAUGE, "x"));
    char long_labels[ZL_METRICS_LABELS_SIZE + 8];
    memset(long_labels, 'a', sizeof(long_labels));
    memcpy(long_labels, "k=\"", 3);
    long_labels[sizeof(long_labels) - 2] = '"';
    long_labels[sizeof(long_labels) - 1] = '\0';
    ZT_EQ_INT(-1, zl_metrics_counter_add(reg, "zl_ok_total", long_labels, 1));
    ZT_EQ_STR("# TYPE zl_ok_total counter\n"
              "zl_ok_total{stage=\"a\"} 1\n" DROPPED_BLOCK(0, 0, 12),
              render(reg));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_label_escape_escapes_quote_backslash_newline)
{
    char out[64];
    ZT_EQ_INT(0, zl_metrics_label_escape("say \"hi\"\\\nbye", out, sizeof(out)));
    ZT_EQ_STR("say \\\"hi\\\"\\\\\\nbye", out);
    char empty[4];
    ZT_EQ_INT(0, zl_metrics_label_escape("", empty, sizeof(empty)));
    ZT_EQ_STR("", empty);
    /* Too small: never half an escape, the result is "". */
    char small[4];
    ZT_EQ_INT(-1, zl_metrics_label_escape("ab\"", small, sizeof(small)));
    ZT_EQ_STR("", small);
    ZT_EQ_INT(0, zl_metrics_label_escape("abc", small, sizeof(small)));
    ZT_EQ_STR("abc", small);

    /* An escaped value is accepted as a label and rendered verbatim. */
    struct zl_metrics *reg = zl_metrics_create(4);
    ZT_REQUIRE(reg != NULL);
    char labels[128];
    snprintf(labels, sizeof(labels), "error=\"%s\"", out);
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_err_total", labels, 1));
    ZT_CHECK(strstr(render(reg),
                    "zl_err_total{error=\"say \\\"hi\\\"\\\\\\nbye\"} 1\n") != NULL);
    zl_metrics_destroy(reg);
}

ZT_TEST(test_handle_is_stable_and_shared_with_by_name_updates)
{
    struct zl_metrics *reg = zl_metrics_create(8);
    ZT_REQUIRE(reg != NULL);
    zl_metric *a = zl_metrics_counter_handle(reg, "zl_n_total", "s=\"x\"");
    for (int i = 0; i < 7; i++) /* many more series after it */
        ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_other_total",
                                            i % 2 ? "p=\"1\"" : "p=\"2\"", 1));
    zl_metric *b = zl_metrics_counter_handle(reg, "zl_n_total", "s=\"x\"");
    ZT_CHECK(a == b);
    zl_metric_counter_add(a, 2);
    ZT_EQ_INT(0, zl_metrics_counter_add(reg, "zl_n_total", "s=\"x\"", 3));
    ZT_EQ_INT(5, zl_metric_counter_value(b));
    zl_metrics_destroy(reg);
}

ZT_TEST(test_describe_rejects_bad_bounds_and_changed_bounds_after_use)
{
    struct zl_metrics *reg = zl_metrics_create(8);
    ZT_REQUIRE(reg != NULL);
    const double unsorted[] = {1, 0.5};
    const double dup[] = {1, 1};
    const double inf[] = {1, 1.0 / 0.0};
    const double ok[] = {0.5, 1};
    const double other[] = {0.5, 2};
    ZT_EQ_INT(-1, zl_metrics_describe_histogram(reg, "zl_h", "", unsorted, 2));
    ZT_EQ_INT(-1, zl_metrics_describe_histogram(reg, "zl_h", "", dup, 2));
    ZT_EQ_INT(-1, zl_metrics_describe_histogram(reg, "zl_h", "", inf, 2));
    ZT_EQ_INT(-1, zl_metrics_describe_histogram(reg, "zl_h", "", ok, 0));
    ZT_EQ_INT(-1, zl_metrics_describe_histogram(reg, "zl_h", "", ok,
                                                ZL_METRICS_BUCKETS_MAX + 1));
    ZT_EQ_INT(0, zl_metrics_describe_histogram(reg, "zl_h", "H.", ok, 2));
    ZT_EQ_INT(0, zl_metrics_observe(reg, "zl_h", "", 0.7));
    ZT_EQ_INT(-1, zl_metrics_describe_histogram(reg, "zl_h", "H.", other, 2));
    ZT_EQ_INT(0, zl_metrics_describe_histogram(reg, "zl_h", "H2.", ok, 2));
    ZT_EQ_INT(0, zl_metrics_describe(reg, "zl_h", ZL_METRIC_HISTOGRAM, "H3."));
    ZT_EQ_STR("# HELP zl_h H3.\n"
              "# TYPE zl_h histogram\n"
              "zl_h_bucket{le=\"0.5\"} 0\n"
              "zl_h_bucket{le=\"1\"} 1\n"
              "zl_h_bucket{le=\"+Inf\"} 1\n"
              "zl_h_sum 0.7\n"
              "zl_h_count 1\n" DROPPED_BLOCK(0, 0, 0),
              render(reg));
    zl_metrics_destroy(reg);
}

/* ---- concurrency ---- */

#define THREADS_N 4
#define INCREMENTS_PER_THREAD 100000

struct worker_arg {
    struct zl_metrics *reg;
    zl_metric *counter;
    zl_metric *gauge;
    zl_metric *hist;
    int by_name_failures;
};

static void *hammer(void *p)
{
    struct worker_arg *a = p;
    for (int i = 0; i < INCREMENTS_PER_THREAD; i++) {
        zl_metric_counter_add(a->counter, 1);
        zl_metric_gauge_add(a->gauge, 1.0);
        zl_metric_observe(a->hist, (i % 2) ? 0.5 : 0.001);
        /* The by-name path races with series creation on other threads. */
        if (i % 100 == 0 &&
            zl_metrics_counter_add(a->reg, "zl_by_name_total", "k=\"v\"", 1) != 0)
            a->by_name_failures++;
    }
    return NULL;
}

ZT_TEST(test_four_threads_times_100k_increments_give_exact_totals)
{
    struct zl_metrics *reg = zl_metrics_create(0);
    ZT_REQUIRE(reg != NULL);
    zl_metric *c = zl_metrics_counter_handle(reg, "zl_hot_total", "");
    zl_metric *g = zl_metrics_gauge_handle(reg, "zl_hot_gauge", "");
    zl_metric *h = zl_metrics_histogram_handle(reg, "zl_hot_seconds", "");
    pthread_t tid[THREADS_N];
    struct worker_arg args[THREADS_N];
    for (int t = 0; t < THREADS_N; t++) {
        args[t] = (struct worker_arg){reg, c, g, h, 0};
        ZT_REQUIRE(pthread_create(&tid[t], NULL, hammer, &args[t]) == 0);
    }
    /* Scrape while they run: render must not disturb the counts. */
    for (int i = 0; i < 20; i++)
        ZT_CHECK(strstr(render(reg), "zl_hot_total ") != NULL);
    for (int t = 0; t < THREADS_N; t++) {
        pthread_join(tid[t], NULL);
        ZT_EQ_INT(0, args[t].by_name_failures);
    }
    ZT_EQ_INT(THREADS_N * INCREMENTS_PER_THREAD, zl_metric_counter_value(c));
    ZT_CHECK(zl_metric_gauge_value(g) == (double)(THREADS_N * INCREMENTS_PER_THREAD));
    ZT_EQ_INT(THREADS_N * INCREMENTS_PER_THREAD, zl_metric_histogram_count(h));
    const char *page = render(reg);
    ZT_CHECK(strstr(page, "zl_hot_total 400000\n") != NULL);
    ZT_CHECK(strstr(page, "zl_hot_gauge 400000\n") != NULL);
    ZT_CHECK(strstr(page, "zl_hot_seconds_bucket{le=\"0.001\"} 200000\n") != NULL);
    ZT_CHECK(strstr(page, "zl_hot_seconds_count 400000\n") != NULL);
    ZT_CHECK(strstr(page, "zl_by_name_total{k=\"v\"} 4000\n") != NULL);
    ZT_EQ_INT(0, zl_metrics_dropped(reg));
    zl_metrics_destroy(reg);
}

ZT_MAIN(test_counter_renders_help_type_and_series_exactly,
        test_gauge_set_and_add_render_shortest_exact_decimal,
        test_histogram_buckets_are_cumulative_with_sum_and_count,
        test_histogram_without_bounds_uses_latency_buckets_1ms_to_10s,
        test_histogram_drops_nan_and_rejects_le_label,
        test_families_render_in_registration_order_not_name_order,
        test_help_text_backslash_and_newline_are_escaped,
        test_series_limit_drops_updates_and_counts_them,
        test_type_mismatch_is_dropped_and_counted,
        test_malformed_names_and_labels_are_rejected_not_rendered,
        test_label_escape_escapes_quote_backslash_newline,
        test_handle_is_stable_and_shared_with_by_name_updates,
        test_describe_rejects_bad_bounds_and_changed_bounds_after_use,
        test_four_threads_times_100k_increments_give_exact_totals)
