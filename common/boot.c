/* boot.c: the one start-up path (see boot.h for the contract). */
#include "boot.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fault.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "runtime.h"
#include "zl.h"

#define OFF(f) offsetof(struct zl_boot_config, f)
const struct zl_setting zl_boot_settings[] = {
    {"ZL_LOG_LEVEL", ZL_CFG_ENUM(zl_log_level_names), "info", "lowest level of the log lines written",
     OFF(log_level), 0, 0},
    {"ZL_FAULT_POINT", ZL_CFG_STR, "", "tests only: SIGKILL self at this named step (see common/fault.h)",
     OFF(fault_point), 0, 0},
    {"ZL_FAULT_AFTER", ZL_CFG_INT, "1", "tests only: at the Nth pass of ZL_FAULT_POINT", OFF(fault_after), 1,
     1000000000},
};
const size_t zl_boot_settings_count = sizeof(zl_boot_settings) / sizeof(zl_boot_settings[0]);
#undef OFF

const struct zl_setting zl_boot_service_settings[] = {
    {"ZL_ADMIN_TOKEN_FILE", ZL_CFG_SECRET_FILE, "",
     "file holding the bearer token /admin/... needs on this HTTP port, or one per line (empty: /admin/..."
     " answers 403; zl-admin requires one, each >= 16 characters)",
     offsetof(struct zl_boot_service_config, admin_token), 0, 0},
};
const size_t zl_boot_service_settings_count = sizeof(zl_boot_service_settings) / sizeof(zl_boot_service_settings[0]);

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
    (void)sig;
    run = 0; /* loops poll with a short timeout and see this quickly */
}

bool zl_boot_running(void)
{
    return run != 0;
}

void zl_boot_sleep_ms(int64_t ms)
{
    while (ms > 0 && zl_boot_running()) {
        int64_t slice = ms > 100 ? 100 : ms;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

const volatile sig_atomic_t *zl_boot_run_flag(void)
{
    return &run;
}

static void install_signals(bool service)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (service) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* A service reports in JSON log lines (what its supervisor collects), a tool
 * in a plain line for the person who ran it. */
static void report(const struct zl_boot *b, const char *what, const char *err)
{
    if (b->service)
        zl_log(ZL_LOG_ERROR, NULL, "%s: %s", what, err);
    else
        fprintf(stderr, "%s: %s: %s\n", b->name, what, err);
}

int zl_boot_start(struct zl_boot *b, const struct zl_boot_opts *o, int *exit_code)
{
    ZL_ASSERT(o->nsections <= ZL_BOOT_SECTIONS_MAX);
    ZL_ASSERT(!o->service || o->runtime != NULL); /* the HTTP settings are the runtime's */
    memset(b, 0, sizeof(*b));
    b->name = o->name;
    b->service = o->service;
    b->runtime = o->runtime;
    b->kafka_props = o->kafka_props;
    /* Boot's own settings first: the loader reports the first bad setting,
     * and a bad log level must be named whatever else is missing. */
    b->sections[b->nsections++] =
        (struct zl_config_section){"every binary", zl_boot_settings, zl_boot_settings_count, &b->cfg};
    if (o->service)
        b->sections[b->nsections++] = (struct zl_config_section){"every service", zl_boot_service_settings,
                                                                 zl_boot_service_settings_count, &b->svc};
    for (size_t i = 0; i < o->nsections; i++)
        b->sections[b->nsections++] = o->sections[i];
    if (o->runtime != NULL)
        b->sections[b->nsections++] =
            (struct zl_config_section){"runtime", zl_runtime_settings, zl_runtime_settings_count, o->runtime};
    if (o->service)
        zl_log_init(o->name, ZL_LOG_INFO); /* so a config error is a line of this stage */

    char err[ZL_ERRSTR_SIZE];
    int rc = zl_config_load(b->sections, b->nsections, o->argc, o->argv, o->kafka_props, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            report(b, "configuration", err);
        *exit_code = rc == 1 ? ZL_EXIT_OK /* --help */ : ZL_EXIT_CONFIG;
        return -1;
    }
    zl_log_init(o->name, (zl_log_level)b->cfg.log_level);
    zl_fault_configure(b->cfg.fault_point, b->cfg.fault_after);
    if (o->service || o->stop_on_signal)
        install_signals(o->service);
    if (o->service) {
        b->metrics = zl_metrics_create(o->metrics_series_max);
        if (b->metrics == NULL) {
            report(b, "startup", "out of memory");
            zl_boot_stop(b);
            *exit_code = ZL_EXIT_FATAL;
            return -1;
        }
    }
    return 0;
}

int zl_boot_serve(struct zl_boot *b, struct zl_health_opts *opts)
{
    ZL_ASSERT(b->service && b->metrics != NULL && b->health == NULL);
    opts->bind_addr = b->runtime->http_addr;
    opts->port = (uint16_t)b->runtime->http_port;
    opts->metrics = b->metrics;
    if (opts->admin_token == NULL)
        opts->admin_token = b->svc.admin_token.value;
    char err[ZL_ERRSTR_SIZE];
    if (zl_health_start(&b->health, opts, err, sizeof(err)) != 0) {
        report(b, "startup: HTTP server", err);
        return -1;
    }
    if (zl_health_write_port_file(b->health, b->runtime->http_port_file) != 0)
        zl_log(ZL_LOG_WARN, NULL, "could not write the HTTP port to %s", b->runtime->http_port_file);
    return 0;
}

int zl_boot_command(const char *name, int argc, char **argv, int (*command)(int argc, char **argv))
{
    static struct zl_boot b;
    struct zl_boot_opts opts = {.name = name, .argc = 1 /* argv[0] only */, .argv = argv};
    int rc = ZL_EXIT_OK;
    if (zl_boot_start(&b, &opts, &rc) != 0)
        return rc;
    rc = command(argc, argv);
    zl_boot_stop(&b);
    return rc;
}

void zl_boot_stop(struct zl_boot *b)
{
    if (b->health != NULL)
        zl_health_stop(b->health);
    b->health = NULL;
    if (b->metrics != NULL)
        zl_metrics_destroy(b->metrics);
    b->metrics = NULL;
    zl_config_free(b->sections, b->nsections, b->kafka_props);
}
