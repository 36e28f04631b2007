/* metrics.h: a small, bounded, thread-safe Prometheus registry.
 *
 * Workers count what they do (messages by stage and outcome, retries, DLQ
 * sends), set gauges (breaker state, consumer lag) and observe histograms
 * (processing latency); the health server's HTTP thread renders everything
 * as Prometheus text exposition format 0.0.4 on GET /metrics.
 *
 * Model
 *   A *family* is a metric name with one type and one HELP text. A *series*
 *   is a family plus one label set. Series are created on first use (get or
 *   create by name + labels) and live until zl_metrics_destroy(): nothing is
 *   ever removed, so a pointer to a series (a zl_metric handle) stays valid
 *   for the registry's lifetime.
 *
 * Limits
 *   Every series lives in one array allocated by zl_metrics_create() with
 *   series_max slots; families share a table of the same size. Nothing is
 *   allocated after create except the render buffer. When a table is full
 *   (or a name, label string or type is wrong), the update is dropped, never
 *   crashes, and zl_metrics_dropped_total{reason=...} counts it, so an
 *   operator sees "we lost metrics" on the same /metrics page:
 *     reason="series_max"     no free series or family slot
 *     reason="type_mismatch"  e.g. a gauge update to a counter's name
 *     reason="invalid"        bad metric name, malformed or too long labels,
 *                             a NaN histogram observation
 *
 * Labels
 *   Labels are passed pre-formatted, exactly as they appear between the
 *   braces of the exposition format: `stage="verify",outcome="ok"`, or ""
 *   (or NULL) for none. The string is the series' identity: the same labels
 *   in a different order are a different series, so build them the same way
 *   every time. Label *values* that may hold a quote, a backslash or a
 *   newline (error text, user input) must go through zl_metrics_label_escape()
 *   first; a label string that does not parse as name="value" pairs is
 *   rejected (reason="invalid") rather than rendered into a broken page.
 *   Histograms may not use the label name "le": it is theirs.
 *
 * Values
 *   Counters are uint64_t and only go up. Gauges are doubles: they hold
 *   integers exactly up to 2^53 (consumer lag, breaker state 0/1/2) and
 *   fractions (ratios) without a second gauge type. Histogram buckets and
 *   counts are uint64_t; _sum is a double.
 *
 * Threads
 *   Every function is "@locality any thread": the worker's main thread,
 *   librdkafka's callback threads and the HTTP thread may call them at the
 *   same time.
 *   @locks  Creating or looking up a series takes the registry's mutex (a
 *   hash lookup, no allocation). Updates through a zl_metric handle take no
 *   lock: they are C11 atomics, so the hot loop pays one atomic add.
 *   zl_metrics_render() holds the mutex while it walks the tables, so new
 *   series wait for a scrape to finish; handle updates never wait. A scrape
 *   may see a histogram's _sum a few observations apart from its buckets
 *   (each value is read atomically, not all together); _count is always
 *   equal to the +Inf bucket because it is computed from the buckets.
 */
#ifndef ZL_METRICS_H
#define ZL_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Default number of series (and of families) a registry holds. Five stages
 * x outcomes x a few dependencies is well under a hundred; 512 leaves room
 * for per-partition lag gauges without letting a label bug (a deposit id in
 * a label) eat memory. */
#define ZL_METRICS_SERIES_MAX_DEFAULT 512

/* A metric name's longest length in bytes, NUL included. */
#define ZL_METRICS_NAME_SIZE 128

/* A pre-formatted label string's longest length in bytes, NUL included. */
#define ZL_METRICS_LABELS_SIZE 256

/* A HELP text's longest length in bytes, NUL included; longer is cut. */
#define ZL_METRICS_HELP_SIZE 256

/* Most finite bucket bounds a histogram may have (+Inf is implicit). */
#define ZL_METRICS_BUCKETS_MAX 24

typedef enum zl_metric_type {
    ZL_METRIC_COUNTER = 1,
    ZL_METRIC_GAUGE = 2,
    ZL_METRIC_HISTOGRAM = 3,
} zl_metric_type;

/* The registry. Opaque. */
struct zl_metrics;

/* One series: a family plus one label set. Opaque; owned by the registry,
 * valid until zl_metrics_destroy(). */
typedef struct zl_metric zl_metric;

/* Bucket bounds used by a histogram described without explicit bounds, in
 * seconds, for processing latency: 1 ms .. 10 s. */
extern const double zl_metrics_latency_buckets_s[];
extern const size_t zl_metrics_latency_buckets_n;

/* Creates a registry with room for series_max series and as many families
 * (0 = ZL_METRICS_SERIES_MAX_DEFAULT). Returns NULL only when memory cannot
 * be allocated. The caller owns the registry and frees it with
 * zl_metrics_destroy(). */
struct zl_metrics *zl_metrics_create(size_t series_max);

/* Frees the registry and every series. Every zl_metric handle becomes
 * invalid; no other thread may be using the registry (stop the health
 * server first). NULL is a no-op. */
void zl_metrics_destroy(struct zl_metrics *reg);

/* Declares a family's type and HELP text (copied, cut at
 * ZL_METRICS_HELP_SIZE - 1 bytes). A histogram described here gets
 * zl_metrics_latency_buckets_s. Describing again with the same type updates
 * the HELP text and returns 0. Families render in the order they were first
 * described or used, so describe everything at startup to fix the page's
 * order.
 * Returns 0, or -1 (nothing changed) when the name is not a valid Prometheus
 * name ([a-zA-Z_:][a-zA-Z0-9_:]*, shorter than ZL_METRICS_NAME_SIZE) or is
 * reserved (zl_metrics_dropped_total), when the name already has another
 * type, or when the family table is full. All of these are programmer
 * errors: check the result at startup. */
int zl_metrics_describe(struct zl_metrics *reg, const char *name,
                        zl_metric_type type, const char *help);

/* Declares a histogram with explicit finite, strictly increasing bucket
 * bounds (bounds_n from 1 to ZL_METRICS_BUCKETS_MAX; the +Inf bucket is
 * added). Returns -1 (nothing changed) for the reasons zl_metrics_describe()
 * gives, for bad bounds, or when series of this histogram already exist
 * with different bounds. */
int zl_metrics_describe_histogram(struct zl_metrics *reg, const char *name,
                                  const char *help, const double *bounds,
                                  size_t bounds_n);

/* Get-or-create handles. Each returns a pointer that stays valid until
 * zl_metrics_destroy() and never returns NULL: when the series cannot be
 * created (see "Limits"), it returns a sink handle on which every update is
 * counted in zl_metrics_dropped_total instead, so the hot loop needs no
 * check. labels may be NULL or "" for none. An undescribed name is created
 * with no HELP text (and default buckets for a histogram). */
zl_metric *zl_metrics_counter_handle(struct zl_metrics *reg, const char *name,
                                     const char *labels);
zl_metric *zl_metrics_gauge_handle(struct zl_metrics *reg, const char *name,
                                   const char *labels);
zl_metric *zl_metrics_histogram_handle(struct zl_metrics *reg,
                                       const char *name, const char *labels);

/* Lock-free updates through a handle. An update that does not fit the
 * handle's type (zl_metric_gauge_set on a counter) is dropped and counted as
 * reason="type_mismatch"; a NaN observation is dropped as reason="invalid"
 * (it would turn _sum into NaN for good). */
void zl_metric_counter_add(zl_metric *m, uint64_t n);
void zl_metric_gauge_set(zl_metric *m, double value);
void zl_metric_gauge_add(zl_metric *m, double delta);
void zl_metric_observe(zl_metric *m, double value);

/* Current values, for tests and for code that reports what it counted.
 * 0 for a handle of another type or a sink. */
uint64_t zl_metric_counter_value(const zl_metric *m);
double zl_metric_gauge_value(const zl_metric *m);
uint64_t zl_metric_histogram_count(const zl_metric *m);

/* By-name updates: a get-or-create lookup (mutex + hash) then the handle
 * update. Convenient off the hot path (callbacks, rare events). Return 0
 * when applied, -1 when dropped (and counted; see "Limits"). */
int zl_metrics_counter_add(struct zl_metrics *reg, const char *name,
                           const char *labels, uint64_t n);
int zl_metrics_gauge_set(struct zl_metrics *reg, const char *name,
                         const char *labels, double value);
int zl_metrics_gauge_add(struct zl_metrics *reg, const char *name,
                         const char *labels, double delta);
int zl_metrics_observe(struct zl_metrics *reg, const char *name,
                       const char *labels, double value);

/* Total updates dropped so far, over every reason. */
uint64_t zl_metrics_dropped(const struct zl_metrics *reg);

/* Renders every family in registration order, each with "# HELP" (when it
 * has a HELP text) and "# TYPE" lines then its series in creation order,
 * then zl_metrics_dropped_total. Families with no series yet are left out.
 * On success returns 0, sets *out to a NUL-terminated malloc()ed buffer the
 * caller frees with free(), and *len to its length without the NUL. Returns
 * -1 only when memory runs out; *out is then NULL and *len 0. */
int zl_metrics_render(struct zl_metrics *reg, char **out, size_t *len);

/* Escapes a label value for the exposition format: backslash -> \\,
 * double quote -> \", newline -> \n; everything else is copied. Writes the
 * NUL-terminated result into out. Returns 0, or -1 when out_size is too
 * small, and then out holds "" (never a value cut in the middle of an
 * escape). The caller adds the quotes: snprintf(l, n, "error=\"%s\"", esc). */
int zl_metrics_label_escape(const char *value, char *out, size_t out_size);

#endif /* ZL_METRICS_H */
