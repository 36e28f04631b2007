/* boot.h: the one start-up path of every binary: the stages (through
 * zl_runtime_main), detect, and every tool.
 *
 * In order, zl_boot_start():
 *   1. loads the config: the binary's own sections, the runtime's settings
 *      when it asks for them, and the settings every binary has
 *      (zl_boot_settings: ZL_LOG_LEVEL, ZL_FAULT_POINT, ZL_FAULT_AFTER). A
 *      bad value of any of them is a configuration error, checked before
 *      anything connects anywhere;
 *   2. sets the log level and the stage name of log lines;
 *   3. arms the fault point (common/fault.h; inert when unset);
 *   4. for a binary that stops on a signal: one handler for SIGTERM and
 *      SIGINT that only sets a flag (zl_boot_running() polls it);
 *   5. for a service: the metrics registry.
 * Then a service calls zl_boot_serve() for /health and /metrics (and the
 * port file) once its route hook's state exists, and zl_boot_stop() at the
 * end, whatever happened in between.
 *
 * Exit codes, chosen by main() alone: ZL_EXIT_OK (0) after a clean stop or
 * --help, ZL_EXIT_FATAL (1) for a fatal runtime error, ZL_EXIT_CONFIG (2) for
 * a configuration error.
 *
 * @locality main thread, at startup (config.h's rules: getenv, strerror).
 */
#ifndef ZL_BOOT_H
#define ZL_BOOT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define ZL_EXIT_OK 0
#define ZL_EXIT_FATAL 1
#define ZL_EXIT_CONFIG 2

/* Sections a binary may bring beside the runtime's and boot's own. */
#define ZL_BOOT_SECTIONS_MAX 8

struct zl_metrics;
struct zl_health;
struct zl_health_opts;
struct zl_runtime_config;

/* The settings every binary has. */
struct zl_boot_config {
    int log_level;      /* ZL_LOG_LEVEL: a zl_log_level (its choices are in that order) */
    char *fault_point;  /* ZL_FAULT_POINT: "" = none */
    int64_t fault_after;
};

extern const struct zl_setting zl_boot_settings[];
extern const size_t zl_boot_settings_count;

/* The settings every service has (one that serves HTTP). */
struct zl_boot_service_config {
    struct zl_secret admin_token; /* ZL_ADMIN_TOKEN_FILE: what /admin/... needs
                                     (health.h); empty = /admin/... answers 403 */
};

extern const struct zl_setting zl_boot_service_settings[];
extern const size_t zl_boot_service_settings_count;

struct zl_boot_opts {
    const char *name;  /* "verify", "zl-sweep": the stage field of log lines, and
                          the prefix of a tool's error messages */
    bool service;      /* runs until a signal: errors as JSON log lines, stops on
                          SIGTERM/SIGINT, ignores SIGPIPE (a peer that hangs up
                          must not kill it), gets a metrics registry and may
                          call zl_boot_serve() */
    bool stop_on_signal; /* a tool that polls zl_boot_running() (a service
                            always does); others keep the default actions, so
                            Ctrl-C ends them */
    size_t metrics_series_max;         /* service: 0 = the registry's default */
    struct zl_runtime_config *runtime; /* non-NULL: the runtime's settings are
                                          loaded into it (a service needs them:
                                          the HTTP address and port) */
    struct zl_config_section *sections; /* the binary's own; may be NULL */
    size_t nsections;                   /* at most ZL_BOOT_SECTIONS_MAX */
    struct zl_kv_list *kafka_props;     /* NULL: takes no librdkafka properties */
    int argc;     /* what the config loader sees: argv[0] and the config */
    char **argv;  /* options (a tool strips its own first) */
};

/* A started binary. Caller-owned storage (static in main: the runtime's
 * settings and sections can be large); fields are read-only to callers. */
struct zl_boot {
    struct zl_boot_config cfg;
    struct zl_boot_service_config svc; /* service only */
    struct zl_metrics *metrics;  /* service: owned; NULL otherwise */
    struct zl_health *health;    /* after zl_boot_serve(): owned */
    struct zl_runtime_config *runtime; /* borrowed from the opts */
    struct zl_config_section sections[ZL_BOOT_SECTIONS_MAX + 3]; /* + boot, service, runtime */
    size_t nsections;
    struct zl_kv_list *kafka_props;
    const char *name;
    bool service;
};

/* Steps 1-5 above. Returns 0: run. Returns -1: return *exit_code from main
 * (ZL_EXIT_OK after --help or --help-markdown, ZL_EXIT_CONFIG after a
 * configuration error, which it has reported on stderr naming the setting,
 * ZL_EXIT_FATAL when out of memory); nothing stays allocated then, and
 * zl_boot_stop() is harmless. */
int zl_boot_start(struct zl_boot *b, const struct zl_boot_opts *o, int *exit_code);

/* Starts the HTTP server of /health/live, /health/ready and /metrics on
 * ZL_HTTP_ADDR:ZL_HTTP_PORT and writes the bound port to ZL_HTTP_PORT_FILE
 * (a failed write is a warning). opts gives the stage name, the route hook
 * and the liveness timeout; boot fills in the address, port and metrics,
 * and the admin token (ZL_ADMIN_TOKEN_FILE) when opts has none.
 * Returns 0, or -1 after logging why (exit ZL_EXIT_FATAL). Service only. */
int zl_boot_serve(struct zl_boot *b, struct zl_health_opts *opts);

/* True until SIGTERM or SIGINT (for a binary that asked to stop on them).
 * @locality any thread. */
bool zl_boot_running(void);

/* Sleeps ms milliseconds in slices of at most 100 ms, returning early once
 * zl_boot_running() is false, so a loop's sleep never delays a SIGTERM.
 * @locality any thread. */
void zl_boot_sleep_ms(int64_t ms);

/* The flag behind zl_boot_running(), for code that takes one
 * (zl_replay_opts.run). */
const volatile sig_atomic_t *zl_boot_run_flag(void);

/* The whole main() of a tool whose arguments are all its own (zl-migrate,
 * zl-address): starts with only argv[0] given to the config loader (the
 * settings come from the environment and ZL_CONFIG_FILE), runs command with
 * the full argv, stops, and returns command's exit code (or boot's, when
 * starting fails). */
int zl_boot_command(const char *name, int argc, char **argv, int (*command)(int argc, char **argv));

/* Stops the HTTP server, frees the metrics and the config (the runtime's,
 * the binary's sections and kafka_props included). Safe after a failed
 * start and twice. */
void zl_boot_stop(struct zl_boot *b);

#endif /* ZL_BOOT_H */
