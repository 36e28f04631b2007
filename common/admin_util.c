/* admin_util.c: the admin API's (admin.h) parts that need none of its
 * state: token buckets, the metric descriptions and HTTP calls to the
 * workers, apart from admin.c so that file stays within the size rule. */
#include "admin.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "httpbuf.h"

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
    zl_metrics_describe(m, "zl_below_minimum_deposits", ZL_METRIC_GAUGE,
                        "deposits settled under their token's minimum (below_minimum, never dead-lettered)");
}

long zl_admin_http_call(const char *url, const char *post_body, const char *bearer, int64_t timeout_ms, char **body,
                        char *err, size_t err_size)
{
    char *auth = NULL; /* "Authorization: Bearer <token>", wiped and freed */
    size_t auth_size = 0;
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, ZL_ADMIN_WORKER_BODY_MAX_BYTES); /* past it curl reports a write error */
    CURL *h = curl_easy_init();
    long status = 0;
    *body = NULL;
    if (h == NULL) {
        snprintf(err, err_size, "curl init failed");
        return 0;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, zl_httpbuf_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (post_body != NULL) {
        auth_size = strlen(bearer) + sizeof("Authorization: Bearer ");
        auth = malloc(auth_size);
        if (auth != NULL) {
            snprintf(auth, auth_size, "Authorization: Bearer %s", bearer);
            hdrs = curl_slist_append(hdrs, auth);
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, err_size, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (auth != NULL)
        memset(auth, 0, auth_size); /* the token does not linger in freed memory */
    free(auth);
    *body = zl_httpbuf_take(&b);
    return status;
}
