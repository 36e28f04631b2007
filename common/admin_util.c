/* admin_util.c: the admin API's (admin.h) parts that need none of its
 * state: token buckets and the metric descriptions, apart from admin.c so
 * that file stays within the size rule. */
#include "admin.h"

void zl_token_bucket_init(struct zl_token_bucket *b, double rate_per_s, double burst, int64_t now_ms)
{
    b->rate_per_s = rate_per_s;
    b->burst = burst < 1 ? 1 : burst;
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

int64_t zl_token_bucket_take(struct zl_token_bucket *b, int64_t now_ms)
{
    double add = (double)(now_ms - b->last_ms) * b->rate_per_s / 1000.0;
    if (add > 0) {
        b->tokens = b->tokens + add > b->burst ? b->burst : b->tokens + add;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    if (b->rate_per_s <= 0)
        return 1000;
    int64_t wait = (int64_t)((1.0 - b->tokens) * 1000.0 / b->rate_per_s) + 1;
    return wait;
}

void zl_admin_describe_metrics(struct zl_metrics *m)
{
    if (m == NULL)
        return;
    zl_metrics_describe(m, "zl_admin_requests_total", ZL_METRIC_COUNTER, "admin API calls by route and code");
    zl_metrics_describe(m, "zl_admin_auth_failures_total", ZL_METRIC_COUNTER,
                        "admin API calls refused for a missing or wrong token (401, or 429 past the"
                        " peer's budget of failed attempts)");
    zl_metrics_describe(m, "zl_pending_deposits", ZL_METRIC_GAUGE,
                        "deposits detected and not yet finished (state table)");
    zl_metrics_describe(m, "zl_oldest_pending_seconds", ZL_METRIC_GAUGE,
                        "age of the oldest pending deposit since it was detected");
    zl_metrics_describe(m, "zl_dead_deposits", ZL_METRIC_GAUGE,
                        "deposits dead-lettered and not resolved by an operator");
    zl_metrics_describe(m, "zl_failing_deposits", ZL_METRIC_GAUGE,
                        "pending deposits whose last attempt failed (retrying)");
}
