#include "zl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "YYYY-MM-DDTHH:MM:SS" and its NUL (20 bytes), with room for a year past
 * 9999 so strftime never fails. */
#define RFC3339_SECONDS_SIZE 24

static const char *const class_names[] = {
    [ZL_OK] = "ok",
    [ZL_TRANSIENT] = "transient",
    [ZL_DEFER] = "defer",
    [ZL_PERMANENT] = "permanent",
    [ZL_POISON] = "poison",
    [ZL_OUTAGE] = "outage",
};

const char *zl_class_name(zl_class c)
{
    if ((unsigned)c >= sizeof(class_names) / sizeof(class_names[0]))
        return "unknown";
    return class_names[c];
}

int zl_class_parse(const char *name, zl_class *out)
{
    for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++) {
        if (strcmp(name, class_names[i]) == 0) {
            *out = (zl_class)i;
            return 0;
        }
    }
    return -1;
}

int64_t zl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t zl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *zl_rfc3339_now(char *buf, size_t buf_size)
{
    int64_t ms = zl_wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[RFC3339_SECONDS_SIZE];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, buf_size, "%s.%03dZ", base, (int)(ms % 1000));
    return buf;
}

void zl_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed: %s\",\"at\":\"%s:%d\"}\n",
            expr, file, line);
    fflush(stderr);
    abort(); /* a programmer error: the core dump is the report */
}
