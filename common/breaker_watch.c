#include "breaker_watch.h"

#include <stdio.h>

#include "log.h"

/* A dependency name escaped as a Prometheus label value: names are short
 * ("rpc:http://host:port"), escaping at most doubles them. */
#define LABEL_VALUE_SIZE 160

static void publish(struct zl_breaker_watch *w, const char *name, zl_breaker_state s)
{
    if (w->metrics != NULL) {
        char labels[256];
        char esc[LABEL_VALUE_SIZE];
        if (zl_metrics_label_escape(name, esc, sizeof(esc)) != 0)
            snprintf(esc, sizeof(esc), "invalid");
        snprintf(labels, sizeof(labels), "stage=\"%s\",dependency=\"%s\"", w->stage ? w->stage : "", esc);
        zl_metrics_gauge_set(w->metrics, "zl_breaker_state", labels, (double)zl_breaker_state_metric(s));
    }
    if (w->health != NULL) {
        bool ok = s == ZL_BREAKER_CLOSED || s == ZL_BREAKER_HALF_OPEN;
        zl_health_set_dep(w->health, name, ok, zl_breaker_state_name(s), ok ? "" : "circuit open: calls rejected");
    }
}

void zl_breaker_watch_register(struct zl_breaker_watch *w, const char *dependency)
{
    if (w->metrics != NULL)
        zl_metrics_describe(w->metrics, "zl_breaker_state", ZL_METRIC_GAUGE,
                            "circuit breaker state: 0 closed, 1 half-open, 2 open, 3 isolated");
    publish(w, dependency, ZL_BREAKER_CLOSED);
}

void zl_breaker_watch_cb(void *opaque, const char *name, zl_breaker_state old_state, zl_breaker_state new_state)
{
    struct zl_breaker_watch *w = opaque;
    zl_log_kv(new_state == ZL_BREAKER_OPEN ? ZL_LOG_WARN : ZL_LOG_INFO, NULL, "circuit breaker state change",
              "dependency", name, "from", zl_breaker_state_name(old_state), "to", zl_breaker_state_name(new_state),
              NULL);
    publish(w, name, new_state);
}
