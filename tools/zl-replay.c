/* zl-replay: re-publishes dead letters to the input topic of the stage
 * whose DLQ they are in, once their cause is fixed. Policy in
 * common/replay.h; this is the command line.
 *
 * Usage: zl-replay (--topic DLQ_TOPIC | --from-stage STAGE) [filters] [options]
 *   --deposit ID        only this deposit (the message key)
 *   --class CLASS       only this zl-dlq-error-class (transient, permanent, ...)
 *   --stage STAGE       only this zl-dlq-stage
 *   --since TIME        only dead letters failed at or after TIME (RFC 3339)
 *   --until TIME        ... and before TIME
 *   --max N             stop after N matching messages
 *   --rate N[/s|/m]     at most N sends per second (or minute); 0 = unlimited
 *   --dry-run           print what would be sent; send nothing, move nothing
 *   --force             publish even when the deposit's row is not 'dead'
 *   --set NAME=VALUE, -X prop=value, --config PATH, --help: as every tool
 * Progress: a bar on a terminal (stderr), one line per message otherwise.
 * Exit: 0 done, 1 stopped early (run again to continue), 2 usage/config.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot.h"
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "replay.h"
#include "runtime.h"

/* Longest command line we take: options plus their values. */
#define ARGS_MAX 256
/* Width of the progress bar in characters. */
#define BAR_WIDTH 30

struct replay_config {
    char *group_id;
    int64_t count_max;
    char *rate;
};

static const struct zl_setting replay_settings[] = {
    {"ZL_REPLAY_GROUP_ID", ZL_CFG_STR, "zl-replay", "the replay tool's own consumer group",
     offsetof(struct replay_config, group_id), 0, 0},
    {"ZL_REPLAY_COUNT_MAX", ZL_CFG_INT, "3", "refuse dead letters already replayed this many times",
     offsetof(struct replay_config, count_max), 1, 1000},
    {"ZL_REPLAY_RATE", ZL_CFG_STR, "50/s", "default --rate: sends per second (N, N/s or N/m; 0 = unlimited)",
     offsetof(struct replay_config, rate), 0, 0},
};

struct ui {
    bool tty;
};

static void progress(void *opaque, const char *id, zl_replay_outcome o, const char *detail,
                     const struct zl_replay_summary *s)
{
    struct ui *ui = opaque;
    int64_t handled = s->scanned;
    if (ui->tty) {
        int fill = s->total > 0 ? (int)(handled * BAR_WIDTH / s->total) : BAR_WIDTH;
        if (fill > BAR_WIDTH)
            fill = BAR_WIDTH;
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        fprintf(stderr, "\r[%s] %" PRId64 "/%" PRId64 "  sent %" PRId64 "  skipped %" PRId64 "  refused %" PRId64 " ",
                bar, handled, s->total, s->by_outcome[ZL_REPLAY_SENT] + s->by_outcome[ZL_REPLAY_DRY_RUN],
                s->by_outcome[ZL_REPLAY_ALREADY] + s->by_outcome[ZL_REPLAY_SUPERSEDED] +
                    s->by_outcome[ZL_REPLAY_NOT_DEAD],
                s->by_outcome[ZL_REPLAY_REFUSED] + s->by_outcome[ZL_REPLAY_MISDIRECTED] +
                    s->by_outcome[ZL_REPLAY_UNTRUSTED]);
        fflush(stderr);
        return;
    }
    if (o == ZL_REPLAY_FILTERED)
        fprintf(stderr, "scanned %" PRId64 "/%" PRId64 "\n", handled, s->total);
    else
        fprintf(stderr, "%s %s: %s\n", zl_replay_outcome_name(o), id[0] ? id : "(no key)", detail);
}

static int usage(const char *msg)
{
    fprintf(stderr, "zl-replay: %s\nusage: zl-replay (--topic DLQ_TOPIC | --from-stage STAGE) [--deposit ID]"
                    " [--class C] [--stage S] [--since T] [--until T] [--max N] [--rate N/s] [--dry-run]"
                    " [--force]\n       zl-replay --help   (settings)\n",
            msg);
    return 2;
}

int main(int argc, char **argv)
{
    static struct zl_boot boot;
    static struct zl_runtime_config rcfg;
    static struct replay_config pcfg;
    static struct zl_kv_list props;
    struct zl_config_section sections[] = {
        {"zl-replay", replay_settings, sizeof(replay_settings) / sizeof(replay_settings[0]), &pcfg},
    };
    struct zl_replay_opts o = {0};
    const char *topic = NULL, *from_stage = NULL, *since = NULL, *until = NULL, *rate = NULL, *max = NULL;

    /* Our own flags first; the rest goes to the config loader. */
    char *opts[ARGS_MAX];
    int nopts = 0;
    opts[nopts++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--dry-run") == 0) {
            o.dry_run = true;
            continue;
        }
        if (strcmp(a, "--force") == 0) {
            o.force = true;
            continue;
        }
        if (strcmp(a, "--topic") == 0) dst = &topic;
        else if (strcmp(a, "--from-stage") == 0) dst = &from_stage;
        else if (strcmp(a, "--deposit") == 0) dst = &o.filter.deposit_id;
        else if (strcmp(a, "--class") == 0) dst = &o.filter.error_class;
        else if (strcmp(a, "--stage") == 0) dst = &o.filter.stage;
        else if (strcmp(a, "--since") == 0) dst = &since;
        else if (strcmp(a, "--until") == 0) dst = &until;
        else if (strcmp(a, "--max") == 0) dst = &max;
        else if (strcmp(a, "--rate") == 0) dst = &rate;
        if (dst != NULL) {
            if (i + 1 >= argc)
                return usage("an option needs a value");
            *dst = argv[++i];
            continue;
        }
        if (nopts >= ARGS_MAX - 2)
            return usage("too many arguments");
        opts[nopts++] = argv[i];
    }
    opts[nopts] = NULL;
    struct zl_boot_opts bopts = {.name = "zl-replay", .stop_on_signal = true, .runtime = &rcfg,
                                 .sections = sections, .nsections = 1, .kafka_props = &props,
                                 .argc = nopts, .argv = opts};
    int status = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &bopts, &status) != 0)
        return status;
    char err[ZL_ERRSTR_SIZE];

    char dlq[ZL_TOPIC_NAME_MAX];
    status = ZL_EXIT_CONFIG;
    if ((topic == NULL) == (from_stage == NULL)) {
        status = usage("give exactly one of --topic and --from-stage");
        goto out;
    }
    if (topic != NULL)
        snprintf(dlq, sizeof(dlq), "%s", topic);
    else if (zl_topic_dlq(dlq, sizeof(dlq), rcfg.topic_prefix, from_stage) != 0) {
        status = usage("--from-stage: not a valid stage name");
        goto out;
    }
    char target[ZL_TOPIC_NAME_MAX];
    if (zl_replay_target(rcfg.topic_prefix, dlq, rcfg.in_topic, target, sizeof(target), &o.target_kind, err,
                         sizeof(err)) != 0) {
        status = usage(err);
        goto out;
    }
    if (since != NULL && zl_rfc3339_parse_ms(since, &o.filter.since_ms) != 0) {
        status = usage("--since: expected an RFC 3339 time, e.g. 2026-11-23T10:00:00Z");
        goto out;
    }
    if (until != NULL && zl_rfc3339_parse_ms(until, &o.filter.until_ms) != 0) {
        status = usage("--until: expected an RFC 3339 time, e.g. 2026-11-23T11:00:00Z");
        goto out;
    }
    if (max != NULL) {
        char *end = NULL;
        long long v = strtoll(max, &end, 10);
        if (end == max || *end != '\0' || v < 1) {
            status = usage("--max: expected a positive integer");
            goto out;
        }
        o.max_count = v;
    }
    const char *rate_s = rate != NULL ? rate : pcfg.rate;
    if (strcmp(rate_s, "0") != 0 && zl_replay_parse_rate(rate_s, &o.rate_per_s) != 0) {
        status = usage("--rate: expected N, N/s or N/m with N > 0 (or 0 for unlimited)");
        goto out;
    }
    if (o.filter.error_class != NULL) {
        zl_class c;
        if (zl_class_parse(o.filter.error_class, &c) != 0) {
            status = usage("--class: expected transient, defer, permanent, poison or outage");
            goto out;
        }
    }

    o.brokers = rcfg.kafka_brokers;
    o.kafka_props = &props;
    o.pg_dsn = rcfg.pg_dsn;
    o.group_id = pcfg.group_id;
    o.dlq_topic = dlq;
    o.target_topic = target;
    o.replay_count_max = pcfg.count_max;
    o.delivery_timeout_ms = rcfg.delivery_timeout_ms;
    o.pg_connect_timeout_ms = rcfg.pg_connect_timeout_ms;
    o.run = zl_boot_run_flag();
    struct ui ui = {.tty = isatty(STDERR_FILENO) == 1};
    o.progress = progress;
    o.progress_opaque = &ui;
    struct zl_replay_summary s;
    int rc = zl_replay_run(&o, &s, err, sizeof(err));
    if (ui.tty)
        fputc('\n', stderr);
    printf("zl-replay %s%s: scanned %" PRId64 ", matched %" PRId64, dlq, o.dry_run ? " (dry run)" : "", s.scanned,
           s.matched);
    for (int i = ZL_REPLAY_SENT; i <= ZL_REPLAY_OUTCOME_LAST; i++)
        printf(", %s %" PRId64, zl_replay_outcome_name((zl_replay_outcome)i), s.by_outcome[i]);
    printf(" in %.1f s\n", s.elapsed_s);
    if (rc != 0) {
        fprintf(stderr, "zl-replay: stopped: %s\n", err);
        status = 1;
    } else {
        status = 0;
    }
out:
    zl_boot_stop(&boot);
    return status;
}
