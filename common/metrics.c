/* metrics.c: see metrics.h for the model, limits and threading contract. */
#include "metrics.h"

#include "zl.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most label pairs one series may carry. Checking for duplicate label names
 * needs the list; sixteen is far more than any series here uses. */
#define LABEL_PAIRS_MAX 16

/* First render buffer size in bytes; it doubles as needed. A worker's page
 * is a few KiB, so one or two allocations per scrape. */
#define RENDER_INITIAL_SIZE 4096

/* Longest formatted double ("-1.2345678901234567e-308" is 24). */
#define DOUBLE_TEXT_SIZE 32

#define DROPPED_NAME "zl_metrics_dropped_total"

/* Why an update was dropped: the reason label of zl_metrics_dropped_total. */
enum drop_reason {
    DROP_SERIES_MAX = 0,
    DROP_TYPE_MISMATCH = 1,
    DROP_INVALID = 2,
    DROP_REASONS_N = 3,
};

static const char *const drop_reason_names[DROP_REASONS_N] = {
    [DROP_SERIES_MAX] = "series_max",
    [DROP_TYPE_MISMATCH] = "type_mismatch",
    [DROP_INVALID] = "invalid",
};

/* The type of a sink handle: not a zl_metric_type, so every typed update
 * on it takes the drop path. */
#define TYPE_SINK 0

const double zl_metrics_latency_buckets_s[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t zl_metrics_latency_buckets_n =
    sizeof(zl_metrics_latency_buckets_s) / sizeof(zl_metrics_latency_buckets_s[0]);

/* A metric name with its type and HELP text. Immutable once it has a
 * series, except for help (written and read under the registry mutex). */
struct family {
    char name[ZL_METRICS_NAME_SIZE];
    char help[ZL_METRICS_HELP_SIZE]; /* "" = no HELP line */
    zl_metric_type type;
    size_t bounds_n;                           /* histograms: finite bounds */
    double bounds[ZL_METRICS_BUCKETS_MAX];     /* strictly increasing */
    int32_t first;                             /* first series, -1 = none */
    int32_t last;                              /* last series, -1 = none */
};

struct zl_metric {
    int type;                 /* zl_metric_type, or TYPE_SINK */
    int drop_reason;          /* sinks: which reason their updates count as */
    struct zl_metrics *reg;   /* for counting drops */
    const struct family *fam; /* NULL for sinks */
    int32_t next;             /* next series of the same family, -1 = end */
    /* Counter: the count. Gauge: the double's bits. Sink: drops counted. */
    _Atomic uint64_t value;
    _Atomic uint64_t sum_bits; /* histogram _sum as double bits */
    /* Histogram observations per bucket, not cumulative (one atomic add per
     * observation); render adds them up. The last one is +Inf. */
    _Atomic uint64_t buckets[ZL_METRICS_BUCKETS_MAX + 1];
    char labels[ZL_METRICS_LABELS_SIZE];
};

struct zl_metrics {
    pthread_mutex_t mu;         /* guards everything below but the atomics */
    size_t series_max;          /* slots in series and families */
    size_t series_n;            /* series in use */
    size_t families_n;          /* families in use, in registration order */
    struct family *families;    /* series_max entries */
    struct zl_metric *series;   /* series_max entries; never moves */
    int32_t *index;             /* open addressing: series index, -1 = empty */
    size_t index_mask;          /* index size - 1 (a power of two) */
    struct zl_metric sinks[DROP_REASONS_N]; /* value = drops per reason */
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void count_drop(struct zl_metrics *reg, enum drop_reason reason)
{
    atomic_fetch_add_explicit(&reg->sinks[reason].value, 1,
                              memory_order_relaxed);
}

/* Counts an update the handle cannot take: a sink counts its own reason,
 * a real series of another type counts a type mismatch. */
static void metric_drop(zl_metric *m)
{
    if (m->type == TYPE_SINK)
        count_drop(m->reg, (enum drop_reason)m->drop_reason);
    else
        count_drop(m->reg, DROP_TYPE_MISMATCH);
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= ZL_METRICS_NAME_SIZE)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || c == ':';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0))
            return false;
    }
    return true;
}

static bool label_name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Checks a pre-formatted label string: name="value" pairs joined by commas,
 * values escaped as zl_metrics_label_escape() does, no duplicate names, and
 * for histograms no "le". Runs only when a series is created. */
static bool valid_labels(const char *s, bool histogram)
{
    const char *names[LABEL_PAIRS_MAX];
    size_t lens[LABEL_PAIRS_MAX];
    size_t pairs = 0;
    const char *p = s;

    if (*p == '\0')
        return true;
    for (;;) {
        const char *name = p;
        if (!label_name_char(*p, true))
            return false;
        while (label_name_char(*p, false))
            p++;
        size_t name_len = (size_t)(p - name);
        if (p[0] != '=' || p[1] != '"')
            return false;
        p += 2;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return false;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return false;
                p++;
            }
            p++;
        }
        p++; /* closing quote */
        if (pairs == LABEL_PAIRS_MAX)
            return false;
        if (histogram && name_len == 2 && memcmp(name, "le", 2) == 0)
            return false;
        for (size_t i = 0; i < pairs; i++) {
            if (lens[i] == name_len && memcmp(names[i], name, name_len) == 0)
                return false;
        }
        names[pairs] = name;
        lens[pairs] = name_len;
        pairs++;
        if (*p == '\0')
            return true;
        if (*p != ',')
            return false;
        p++;
    }
}

/* FNV-1a over name, a separator no name contains, and labels. */
static uint64_t series_hash(const char *name, const char *labels)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = name; *p != '\0'; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    h ^= 0xffu;
    h *= 1099511628211ULL;
    for (const char *p = labels; *p != '\0'; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    return h;
}

static bool valid_bounds(const double *bounds, size_t bounds_n)
{
    if (bounds == NULL || bounds_n == 0 || bounds_n > ZL_METRICS_BUCKETS_MAX)
        return false;
    for (size_t i = 0; i < bounds_n; i++) {
        if (!isfinite(bounds[i]))
            return false;
        if (i > 0 && !(bounds[i] > bounds[i - 1]))
            return false;
    }
    return true;
}

/* ---- create / destroy ---------------------------------------------------- */

struct zl_metrics *zl_metrics_create(size_t series_max)
{
    if (series_max == 0)
        series_max = ZL_METRICS_SERIES_MAX_DEFAULT;
    /* Series indices are int32_t; a registry this large is a bug anyway. */
    if (series_max > (size_t)1 << 20)
        return NULL;

    struct zl_metrics *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return NULL;
    /* The index stays at most half full so probes stay short. */
    size_t index_size = 1;
    while (index_size < series_max * 2)
        index_size <<= 1;

    reg->families = calloc(series_max, sizeof(*reg->families));
    reg->series = calloc(series_max, sizeof(*reg->series));
    reg->index = malloc(index_size * sizeof(*reg->index));
    if (reg->families == NULL || reg->series == NULL || reg->index == NULL)
        goto out_free;
    if (pthread_mutex_init(&reg->mu, NULL) != 0)
        goto out_free;

    reg->series_max = series_max;
    reg->index_mask = index_size - 1;
    for (size_t i = 0; i < index_size; i++)
        reg->index[i] = -1;
    for (int r = 0; r < DROP_REASONS_N; r++) {
        struct zl_metric *s = &reg->sinks[r];
        s->type = TYPE_SINK;
        s->drop_reason = r;
        s->reg = reg;
        s->next = -1;
        atomic_init(&s->value, 0);
    }
    return reg;

out_free:
    free(reg->index);
    free(reg->series);
    free(reg->families);
    free(reg);
    return NULL;
}

void zl_metrics_destroy(struct zl_metrics *reg)
{
    if (reg == NULL)
        return;
    pthread_mutex_destroy(&reg->mu);
    free(reg->index);
    free(reg->series);
    free(reg->families);
    free(reg);
}

/* ---- families ------------------------------------------------------------ */

/* @locks reg->mu held */
static struct family *family_find(struct zl_metrics *reg, const char *name)
{
    for (size_t i = 0; i < reg->families_n; i++) {
        if (strcmp(reg->families[i].name, name) == 0)
            return &reg->families[i];
    }
    return NULL;
}

/* Creates a family with default buckets; NULL when the table is full.
 * The name must already be valid.
 * @locks reg->mu held */
static struct family *family_add(struct zl_metrics *reg, const char *name,
                                 zl_metric_type type)
{
    if (reg->families_n == reg->series_max)
        return NULL;
    struct family *f = &reg->families[reg->families_n];
    size_t name_len = strlen(name);
    memcpy(f->name, name, name_len + 1);
    f->help[0] = '\0';
    f->type = type;
    f->first = -1;
    f->last = -1;
    if (type == ZL_METRIC_HISTOGRAM) {
        f->bounds_n = zl_metrics_latency_buckets_n;
        memcpy(f->bounds, zl_metrics_latency_buckets_s,
               zl_metrics_latency_buckets_n * sizeof(double));
    } else {
        f->bounds_n = 0;
    }
    reg->families_n++;
    return f;
}

static void copy_help(struct family *f, const char *help)
{
    if (help == NULL)
        help = "";
    /* Cut, as documented: a long HELP text is not worth failing for. */
    snprintf(f->help, sizeof(f->help), "%s", help);
}

/* @locks takes reg->mu */
static int describe(struct zl_metrics *reg, const char *name,
                    zl_metric_type type, const char *help,
                    const double *bounds, size_t bounds_n)
{
    ZL_ASSERT(reg != NULL);
    if (name == NULL || !valid_name(name) || strcmp(name, DROPPED_NAME) == 0)
        return -1;
    if (type != ZL_METRIC_COUNTER && type != ZL_METRIC_GAUGE &&
        type != ZL_METRIC_HISTOGRAM)
        return -1;
    if (bounds != NULL && !valid_bounds(bounds, bounds_n))
        return -1;

    int rc = -1;
    pthread_mutex_lock(&reg->mu);
    struct family *f = family_find(reg, name);
    if (f != NULL && f->type != type)
        goto out_unlock;
    if (f != NULL && bounds != NULL && f->first != -1) {
        /* Series already count into the old buckets: moving the bounds
         * would mislabel them. Same bounds are fine (idempotent). */
        if (f->bounds_n != bounds_n ||
            memcmp(f->bounds, bounds, bounds_n * sizeof(double)) != 0)
            goto out_unlock;
    }
    if (f == NULL)
        f = family_add(reg, name, type);
    if (f == NULL)
        goto out_unlock;
    copy_help(f, help);
    if (bounds != NULL) {
        memcpy(f->bounds, bounds, bounds_n * sizeof(double));
        f->bounds_n = bounds_n;
    }
    rc = 0;
out_unlock:
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

int zl_metrics_describe(struct zl_metrics *reg, const char *name,
                        zl_metric_type type, const char *help)
{
    return describe(reg, name, type, help, NULL, 0);
}

int zl_metrics_describe_histogram(struct zl_metrics *reg, const char *name,
                                  const char *help, const double *bounds,
                                  size_t bounds_n)
{
    if (bounds == NULL)
        return -1;
    return describe(reg, name, ZL_METRIC_HISTOGRAM, help, bounds, bounds_n);
}

/* ---- series -------------------------------------------------------------- */

/* Returns the series, creating it if needed, or the sink for why it cannot.
 * @locks reg->mu held */
static zl_metric *series_get_locked(struct zl_metrics *reg, const char *name,
                                    const char *labels, zl_metric_type type)
{
    uint64_t h = series_hash(name, labels);
    size_t slot = (size_t)h & reg->index_mask;

    /* The index is never more than half full, so an empty slot ends every
     * probe; nothing is ever removed, so there are no tombstones. */
    for (;;) {
        int32_t i = reg->index[slot];
        if (i < 0)
            break;
        zl_metric *m = &reg->series[i];
        if (strcmp(m->fam->name, name) == 0 && strcmp(m->labels, labels) == 0) {
            if (m->type != (int)type)
                return &reg->sinks[DROP_TYPE_MISMATCH];
            return m;
        }
        slot = (slot + 1) & reg->index_mask;
    }

    if (!valid_name(name) || strcmp(name, DROPPED_NAME) == 0)
        return &reg->sinks[DROP_INVALID];
    size_t labels_len = strlen(labels);
    if (labels_len >= ZL_METRICS_LABELS_SIZE ||
        !valid_labels(labels, type == ZL_METRIC_HISTOGRAM))
        return &reg->sinks[DROP_INVALID];

    struct family *f = family_find(reg, name);
    if (f != NULL && f->type != type)
        return &reg->sinks[DROP_TYPE_MISMATCH];
    if (reg->series_n == reg->series_max)
        return &reg->sinks[DROP_SERIES_MAX];
    if (f == NULL)
        f = family_add(reg, name, type);
    if (f == NULL)
        return &reg->sinks[DROP_SERIES_MAX];

    int32_t idx = (int32_t)reg->series_n;
    zl_metric *m = &reg->series[idx];
    m->type = (int)type;
    m->drop_reason = 0;
    m->reg = reg;
    m->fam = f;
    m->next = -1;
    atomic_init(&m->value, type == ZL_METRIC_GAUGE ? double_bits(0.0) : 0);
    atomic_init(&m->sum_bits, double_bits(0.0));
    for (size_t b = 0; b <= ZL_METRICS_BUCKETS_MAX; b++)
        atomic_init(&m->buckets[b], 0);
    memcpy(m->labels, labels, labels_len + 1);

    reg->index[slot] = idx;
    if (f->last >= 0)
        reg->series[f->last].next = idx;
    else
        f->first = idx;
    f->last = idx;
    reg->series_n++;
    return m;
}

/* @locks takes reg->mu */
static zl_metric *series_get(struct zl_metrics *reg, const char *name,
                             const char *labels, zl_metric_type type)
{
    ZL_ASSERT(reg != NULL);
    if (name == NULL)
        return &reg->sinks[DROP_INVALID];
    if (labels == NULL)
        labels = "";
    pthread_mutex_lock(&reg->mu);
    zl_metric *m = series_get_locked(reg, name, labels, type);
    pthread_mutex_unlock(&reg->mu);
    return m;
}

zl_metric *zl_metrics_counter_handle(struct zl_metrics *reg, const char *name,
                                     const char *labels)
{
    return series_get(reg, name, labels, ZL_METRIC_COUNTER);
}

zl_metric *zl_metrics_gauge_handle(struct zl_metrics *reg, const char *name,
                                   const char *labels)
{
    return series_get(reg, name, labels, ZL_METRIC_GAUGE);
}

zl_metric *zl_metrics_histogram_handle(struct zl_metrics *reg,
                                       const char *name, const char *labels)
{
    return series_get(reg, name, labels, ZL_METRIC_HISTOGRAM);
}

/* ---- updates (lock-free) ------------------------------------------------- */

static bool counter_add(zl_metric *m, uint64_t n)
{
    ZL_ASSERT(m != NULL);
    if (m->type != ZL_METRIC_COUNTER) {
        metric_drop(m);
        return false;
    }
    atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
    return true;
}

static bool gauge_set(zl_metric *m, double value)
{
    ZL_ASSERT(m != NULL);
    if (m->type != ZL_METRIC_GAUGE) {
        metric_drop(m);
        return false;
    }
    atomic_store_explicit(&m->value, double_bits(value), memory_order_relaxed);
    return true;
}

/* Adds to a double kept as bits: a compare-and-swap loop, since there is no
 * atomic floating-point add. Retries only while other threads win races. */
static void atomic_double_add(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    for (;;) {
        uint64_t next = double_bits(bits_double(old) + delta);
        if (atomic_compare_exchange_weak_explicit(bits, &old, next,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

static bool gauge_add(zl_metric *m, double delta)
{
    ZL_ASSERT(m != NULL);
    if (m->type != ZL_METRIC_GAUGE) {
        metric_drop(m);
        return false;
    }
    atomic_double_add(&m->value, delta);
    return true;
}

static bool observe(zl_metric *m, double value)
{
    ZL_ASSERT(m != NULL);
    if (m->type != ZL_METRIC_HISTOGRAM) {
        metric_drop(m);
        return false;
    }
    if (isnan(value)) {
        count_drop(m->reg, DROP_INVALID);
        return false;
    }
    const struct family *f = m->fam;
    size_t b = 0;
    /* "le" is inclusive: a value equal to a bound falls in that bucket. */
    while (b < f->bounds_n && value > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
    atomic_double_add(&m->sum_bits, value);
    return true;
}

void zl_metric_counter_add(zl_metric *m, uint64_t n) { (void)counter_add(m, n); }
void zl_metric_gauge_set(zl_metric *m, double value) { (void)gauge_set(m, value); }
void zl_metric_gauge_add(zl_metric *m, double delta) { (void)gauge_add(m, delta); }
void zl_metric_observe(zl_metric *m, double value) { (void)observe(m, value); }

uint64_t zl_metric_counter_value(const zl_metric *m)
{
    ZL_ASSERT(m != NULL);
    if (m->type != ZL_METRIC_COUNTER)
        return 0;
    return atomic_load_explicit(&m->value, memory_order_relaxed);
}

double zl_metric_gauge_value(const zl_metric *m)
{
    ZL_ASSERT(m != NULL);
    if (m->type != ZL_METRIC_GAUGE)
        return 0.0;
    return bits_double(atomic_load_explicit(&m->value, memory_order_relaxed));
}

uint64_t zl_metric_histogram_count(const zl_metric *m)
{
    ZL_ASSERT(m != NULL);
    if (m->type != ZL_METRIC_HISTOGRAM)
        return 0;
    uint64_t total = 0;
    for (size_t b = 0; b <= m->fam->bounds_n; b++)
        total += atomic_load_explicit(&m->buckets[b], memory_order_relaxed);
    return total;
}

int zl_metrics_counter_add(struct zl_metrics *reg, const char *name,
                           const char *labels, uint64_t n)
{
    zl_metric *m = series_get(reg, name, labels, ZL_METRIC_COUNTER);
    return counter_add(m, n) ? 0 : -1;
}

int zl_metrics_gauge_set(struct zl_metrics *reg, const char *name,
                         const char *labels, double value)
{
    zl_metric *m = series_get(reg, name, labels, ZL_METRIC_GAUGE);
    return gauge_set(m, value) ? 0 : -1;
}

int zl_metrics_gauge_add(struct zl_metrics *reg, const char *name,
                         const char *labels, double delta)
{
    zl_metric *m = series_get(reg, name, labels, ZL_METRIC_GAUGE);
    return gauge_add(m, delta) ? 0 : -1;
}

int zl_metrics_observe(struct zl_metrics *reg, const char *name,
                       const char *labels, double value)
{
    zl_metric *m = series_get(reg, name, labels, ZL_METRIC_HISTOGRAM);
    return observe(m, value) ? 0 : -1;
}

uint64_t zl_metrics_dropped(const struct zl_metrics *reg)
{
    ZL_ASSERT(reg != NULL);
    uint64_t total = 0;
    for (int r = 0; r < DROP_REASONS_N; r++)
        total += atomic_load_explicit(&reg->sinks[r].value,
                                      memory_order_relaxed);
    return total;
}

/* ---- rendering ----------------------------------------------------------- */

/* A growing text buffer. After a failed allocation it stays failed and
 * every append is a no-op, so callers check once at the end. */
struct text {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

static bool text_reserve(struct text *t, size_t extra)
{
    if (t->failed)
        return false;
    if (t->len + extra + 1 <= t->cap)
        return true;
    size_t cap = t->cap == 0 ? RENDER_INITIAL_SIZE : t->cap;
    while (cap < t->len + extra + 1)
        cap *= 2;
    char *p = realloc(t->p, cap);
    if (p == NULL) {
        t->failed = true;
        return false;
    }
    t->p = p;
    t->cap = cap;
    return true;
}

static void text_append(struct text *t, const char *s, size_t n)
{
    if (!text_reserve(t, n))
        return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
    text_append(t, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void text_printf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if (!text_reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Formats a double as Prometheus reads it: NaN, +Inf, -Inf, else the
 * shortest of %.15g / %.17g that reads back as the same value (0.1 stays
 * "0.1", integers have no decimal point). */
static void format_double(char *out, size_t out_size, double v)
{
    if (isnan(v)) {
        snprintf(out, out_size, "NaN");
    } else if (isinf(v)) {
        snprintf(out, out_size, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, out_size, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, out_size, "%.17g", v);
    }
}

/* HELP text escaping per format 0.0.4: backslash and newline only. */
static void render_help(struct text *t, const struct family *f)
{
    if (f->help[0] == '\0')
        return;
    text_printf(t, "# HELP %s ", f->name);
    for (const char *p = f->help; *p != '\0'; p++) {
        if (*p == '\\')
            text_puts(t, "\\\\");
        else if (*p == '\n')
            text_puts(t, "\\n");
        else
            text_append(t, p, 1);
    }
    text_puts(t, "\n");
}

static const char *type_name(zl_metric_type type)
{
    switch (type) {
    case ZL_METRIC_COUNTER: return "counter";
    case ZL_METRIC_GAUGE: return "gauge";
    case ZL_METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

/* "name{labels}" or "name" when there are no labels; suffix is "_sum" etc. */
static void render_series_name(struct text *t, const char *name,
                               const char *suffix, const char *labels)
{
    if (labels[0] == '\0')
        text_printf(t, "%s%s ", name, suffix);
    else
        text_printf(t, "%s%s{%s} ", name, suffix, labels);
}

static void render_histogram(struct text *t, const struct family *f,
                             const zl_metric *m)
{
    char num[DOUBLE_TEXT_SIZE];
    const char *sep = m->labels[0] == '\0' ? "" : ",";
    uint64_t cumulative = 0;

    for (size_t b = 0; b <= f->bounds_n; b++) {
        cumulative += atomic_load_explicit(&m->buckets[b],
                                           memory_order_relaxed);
        if (b < f->bounds_n)
            format_double(num, sizeof(num), f->bounds[b]);
        else
            snprintf(num, sizeof(num), "+Inf");
        text_printf(t, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name,
                    m->labels, sep, num, cumulative);
    }
    format_double(num, sizeof(num),
                  bits_double(atomic_load_explicit(&m->sum_bits,
                                                   memory_order_relaxed)));
    render_series_name(t, f->name, "_sum", m->labels);
    text_printf(t, "%s\n", num);
    /* _count from the buckets, so it always equals the +Inf bucket. */
    render_series_name(t, f->name, "_count", m->labels);
    text_printf(t, "%" PRIu64 "\n", cumulative);
}

/* @locks reg->mu held */
static void render_family(struct text *t, const struct zl_metrics *reg,
                          const struct family *f)
{
    char num[DOUBLE_TEXT_SIZE];

    render_help(t, f);
    text_printf(t, "# TYPE %s %s\n", f->name, type_name(f->type));
    for (int32_t i = f->first; i >= 0; i = reg->series[i].next) {
        const zl_metric *m = &reg->series[i];
        uint64_t v = atomic_load_explicit(&m->value, memory_order_relaxed);
        switch (f->type) {
        case ZL_METRIC_COUNTER:
            render_series_name(t, f->name, "", m->labels);
            text_printf(t, "%" PRIu64 "\n", v);
            break;
        case ZL_METRIC_GAUGE:
            format_double(num, sizeof(num), bits_double(v));
            render_series_name(t, f->name, "", m->labels);
            text_printf(t, "%s\n", num);
            break;
        case ZL_METRIC_HISTOGRAM:
            render_histogram(t, f, m);
            break;
        }
    }
}

static void render_dropped(struct text *t, const struct zl_metrics *reg)
{
    text_puts(t, "# HELP " DROPPED_NAME " Metric updates dropped: "
                 "series_max = no free series slot, type_mismatch = wrong "
                 "type for the name, invalid = bad name, labels or value.\n");
    text_puts(t, "# TYPE " DROPPED_NAME " counter\n");
    for (int r = 0; r < DROP_REASONS_N; r++) {
        text_printf(t, DROPPED_NAME "{reason=\"%s\"} %" PRIu64 "\n",
                    drop_reason_names[r],
                    atomic_load_explicit(&reg->sinks[r].value,
                                         memory_order_relaxed));
    }
}

int zl_metrics_render(struct zl_metrics *reg, char **out, size_t *len)
{
    ZL_ASSERT(reg != NULL && out != NULL && len != NULL);
    struct text t = {0};

    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->families_n; i++) {
        if (reg->families[i].first >= 0)
            render_family(&t, reg, &reg->families[i]);
    }
    pthread_mutex_unlock(&reg->mu);
    render_dropped(&t, reg);

    if (t.failed) {
        free(t.p);
        *out = NULL;
        *len = 0;
        return -1;
    }
    *out = t.p;
    *len = t.len;
    return 0;
}

int zl_metrics_label_escape(const char *value, char *out, size_t out_size)
{
    ZL_ASSERT(value != NULL && out != NULL);
    size_t o = 0;
    for (const char *p = value; *p != '\0'; p++) {
        char esc = 0;
        if (*p == '\\')
            esc = '\\';
        else if (*p == '"')
            esc = '"';
        else if (*p == '\n')
            esc = 'n';
        size_t need = esc != 0 ? 2 : 1;
        if (o + need + 1 > out_size) {
            if (out_size > 0)
                out[0] = '\0';
            return -1;
        }
        if (esc != 0) {
            out[o++] = '\\';
            out[o++] = esc;
        } else {
            out[o++] = *p;
        }
    }
    if (out_size == 0)
        return -1;
    out[o] = '\0';
    return 0;
}
