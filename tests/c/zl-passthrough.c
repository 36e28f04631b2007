/* zl-passthrough: a test stage that proves the runtime's claims without any
 * chain or IPFS. It consumes zl.deposits.detected-shaped events, moves rows
 * detected -> verified, and publishes zl.deposits.verified-shaped events.
 *
 * Its side effect is deliberately NOT idempotent: it adds 1 to
 * pt_effects.n for the deposit inside the CAS transaction. If the runtime
 * ever applied a deposit twice, n would be 2; the tests check n = 1 for
 * every deposit after SIGKILLs at every fault point.
 *
 * Test knobs (settings, so they show in --help):
 *   ZL_PT_TRANSIENT_USER  messages of this user_id always fail transiently
 *   ZL_PT_PERMANENT_USER  messages of this user_id fail permanently
 *   ZL_PT_DEFER_USER      messages of this user_id defer ZL_PT_DEFERS times,
 *                         then fail transiently once (the first time they are
 *                         tried after the defers), then succeed: a deposit
 *                         that waited for confirmations and then met one
 *                         timeout
 *   ZL_PT_DEFER_MS        the defer_ms those defers give (0: none)
 *   ZL_PT_QUEUED          1: those defers are waits in the stage's own queue
 *                         (w->queued), which ZL_DEFERS_MAX does not count
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

struct pt_config {
    char *transient_user;
    char *permanent_user;
    char *defer_user;
    int64_t defers;
    int64_t defer_ms;
    int64_t queued;
};

static const struct zl_setting pt_settings[] = {
    {"ZL_PT_TRANSIENT_USER", ZL_CFG_STR, "", "tests: user_id whose messages always fail transiently",
     offsetof(struct pt_config, transient_user), 0, 0},
    {"ZL_PT_PERMANENT_USER", ZL_CFG_STR, "", "tests: user_id whose messages fail permanently",
     offsetof(struct pt_config, permanent_user), 0, 0},
    {"ZL_PT_DEFER_USER", ZL_CFG_STR, "", "tests: user_id whose messages defer, fail transiently once, then succeed",
     offsetof(struct pt_config, defer_user), 0, 0},
    {"ZL_PT_DEFERS", ZL_CFG_INT, "3", "tests: defers before ZL_PT_DEFER_USER's one transient failure",
     offsetof(struct pt_config, defers), 0, 1000},
    {"ZL_PT_DEFER_MS", ZL_CFG_INT, "0", "tests: the defer_ms of ZL_PT_DEFER_USER's defers (0: no estimate)",
     offsetof(struct pt_config, defer_ms), 0, 600000},
    {"ZL_PT_QUEUED", ZL_CFG_INT, "0", "tests: 1 = ZL_PT_DEFER_USER's defers are queue waits (not counted)",
     offsetof(struct pt_config, queued), 0, 1},
};

static struct pt_config cfg;

static zl_class pt_republish(void *ctx, struct zl_work *w)
{
    (void)ctx;
    zl_event_derive(&w->out, &w->in, ZL_TOPIC_VERIFIED);
    w->out.confirmations = 0;
    return ZL_OK;
}

/* Queue waits so far per deposit, in this process (the test runs one copy). */
enum { PT_WAITS_MAX = 64 };
static struct {
    char id[ZL_DEPOSIT_ID_SIZE];
    int64_t n;
} pt_waits[PT_WAITS_MAX];

/* The deposit's queue waits before this one; counts this one. */
static int64_t pt_waits_bump(const char *deposit_id)
{
    for (size_t i = 0; i < PT_WAITS_MAX; i++) {
        if (pt_waits[i].id[0] == '\0')
            snprintf(pt_waits[i].id, sizeof(pt_waits[i].id), "%s", deposit_id);
        if (strcmp(pt_waits[i].id, deposit_id) == 0)
            return pt_waits[i].n++;
    }
    return INT64_MAX; /* table full: no more waits */
}

static zl_class pt_process(void *ctx, struct zl_work *w)
{
    if (cfg.transient_user[0] != '\0' && strcmp(w->in.user_id, cfg.transient_user) == 0) {
        snprintf(w->error, sizeof(w->error), "injected transient failure for user %s", w->in.user_id);
        return ZL_TRANSIENT;
    }
    if (cfg.permanent_user[0] != '\0' && strcmp(w->in.user_id, cfg.permanent_user) == 0) {
        snprintf(w->error, sizeof(w->error), "injected permanent failure for user %s", w->in.user_id);
        return ZL_PERMANENT;
    }
    if (cfg.defer_user[0] != '\0' && strcmp(w->in.user_id, cfg.defer_user) == 0) {
        /* Queue waits leave w->defers as it was: this process counts them
         * itself (pt_waits), to know when to stop. */
        int64_t done = cfg.queued ? pt_waits_bump(w->in.deposit_id) : w->defers;
        if (done < cfg.defers) {
            snprintf(w->error, sizeof(w->error), "injected defer %d of %d", (int)done + 1, (int)cfg.defers);
            w->defer_ms = cfg.defer_ms;
            w->queued = cfg.queued != 0;
            return ZL_DEFER;
        }
        if (w->attempt == 0) {
            snprintf(w->error, sizeof(w->error), "injected transient failure after %d defers", w->defers);
            return ZL_TRANSIENT;
        }
    }
    return pt_republish(ctx, w);
}

static int pt_prepare(void *ctx, struct zl_pg *pg)
{
    (void)ctx;
    return zl_pg_add_stmt(pg, "pt_effect",
                          "INSERT INTO pt_effects (deposit_id, n) SELECT unnest($1::text[]), 1"
                          " ON CONFLICT (deposit_id) DO UPDATE SET n = pt_effects.n + 1",
                          1);
}

static zl_class pt_in_tx(void *ctx, struct zl_pg *pg, struct zl_work *const *moved, size_t n, char *errstr,
                         size_t errstr_size)
{
    (void)ctx;
    const char **ids = calloc(n, sizeof(*ids));
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = moved[i]->in.deposit_id;
    char *arr = zl_pg_array_literal(ids, n);
    free(ids);
    if (arr == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    const char *params[1] = {arr};
    zl_class c;
    PGresult *r = zl_pg_prepared(pg, "pt_effect", 1, params, PGRES_COMMAND_OK, &c, errstr, errstr_size);
    free(arr);
    if (r != NULL)
        PQclear(r);
    return c;
}

int main(int argc, char **argv)
{
    const struct zl_stage stage = {
        .name = "passthrough",
        .in_kind = ZL_TOPIC_DETECTED,
        .out_kind = ZL_TOPIC_VERIFIED,
        .accept_states = "{detected}",
        .done_state = ZL_STATE_VERIFIED,
        .process = pt_process,
        .republish = pt_republish,
        .in_tx = pt_in_tx,
        .prepare = pt_prepare,
    };
    struct zl_config_section extra = {"passthrough test stage", pt_settings,
                                      sizeof(pt_settings) / sizeof(pt_settings[0]), &cfg};
    return zl_runtime_main(&stage, &extra, 1, argc, argv);
}
