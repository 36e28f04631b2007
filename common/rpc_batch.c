/* rpc_batch.c: JSON-RPC batches and quorum reads (see rpc.h), built on the
 * engine in rpc.c (rpc_int.h). A quorum read asks one endpoint after another,
 * never hedged, skipping those that already answered, until opts.quorum
 * answers are equal as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_int.h"

/* One round of a quorum read: what the endpoint's answer (class c, from
 * endpoint ep, why on failure) means for the rounds. */
enum quorum_step { Q_STOP, Q_NEXT, Q_VOTE };

struct quorum_rounds {
    bool skip[ZL_RPC_ENDPOINTS_MAX];
    zl_class worst;
    bool any_reached;
    char last[ZL_ERRSTR_SIZE];
};

static enum quorum_step quorum_step(struct quorum_rounds *q, zl_class c, int ep, const char *why)
{
    if (ep < 0) {
        /* nobody left who answered */
        snprintf(q->last, sizeof(q->last), "%s", why);
        if (c == ZL_OUTAGE && !q->any_reached)
            q->worst = ZL_OUTAGE;
        return Q_STOP;
    }
    q->any_reached = true;
    q->skip[ep] = true;
    if (c != ZL_OK) {
        snprintf(q->last, sizeof(q->last), "%s", why);
        return Q_NEXT; /* a JSON-RPC error is not a vote */
    }
    return Q_VOTE;
}

/* One round of a single call's quorum: method asked of the best endpoint
 * not asked yet; *res is its answer (the caller's) when it is a vote. */
static enum quorum_step call_round(struct zl_rpc *r, struct quorum_rounds *q, const char *method, json_t *params,
                                   json_t **res, struct zl_rpc_error *rpc_err)
{
    int ep = -1;
    char why[ZL_ERRSTR_SIZE];
    *res = NULL;
    zl_class c = rpc_call_once(r, method, params, q->skip, false, res, &ep, rpc_err, why, sizeof(why));
    return quorum_step(q, c, ep, why);
}

/* One batch request to the best endpoint not in skip; *endpoint is the one
 * that answered (-1 when none did). */
static zl_class batch_once(struct zl_rpc *r, size_t n, const char *const *methods, json_t *const *params,
                           const bool *skip, bool hedge, json_t **results, struct zl_rpc_error *errs, int *endpoint,
                           char *errstr, size_t errstr_size)
{
    *endpoint = -1;
    for (size_t i = 0; i < n; i++) {
        results[i] = NULL;
        if (errs != NULL)
            memset(&errs[i], 0, sizeof(errs[i]));
    }
    if (n == 0)
        return ZL_OK;
    if (n > ZL_RPC_BATCH_MAX) {
        snprintf(errstr, errstr_size, "rpc batch: %zu calls, more than ZL_RPC_BATCH_MAX %d", n, ZL_RPC_BATCH_MAX);
        return ZL_PERMANENT;
    }
    struct batch_ctx bc = {.n = n, .first_id = r->next_id};
    r->next_id += n;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, rpc_make_request(bc.first_id + i, methods[i], params[i]));
    char *body = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (body == NULL) {
        snprintf(errstr, errstr_size, "rpc batch: cannot encode request (out of memory)");
        return ZL_TRANSIENT;
    }
    struct engine_result res;
    zl_class c = rpc_run_request(r, body, &bc, skip, hedge, &res, NULL, errstr, errstr_size);
    free(body);
    *endpoint = res.endpoint;
    if (c != ZL_OK) {
        json_decref(res.body);
        return c;
    }
    size_t i;
    json_t *item;
    json_array_foreach(res.body, i, item) {
        size_t k = (size_t)(json_integer_value(json_object_get(item, "id")) - (json_int_t)bc.first_id);
        json_t *e = json_object_get(item, "error");
        if (e != NULL && !json_is_null(e)) {
            if (errs != NULL) {
                rpc_fill_error(e, &errs[k]);
                errs[k].answered = true;
            }
            continue;
        }
        if (results[k] == NULL)
            results[k] = json_incref(json_object_get(item, "result"));
    }
    json_decref(res.body);
    return ZL_OK;
}

zl_class zl_rpc_batch(struct zl_rpc *r, size_t n, const char *const *methods, json_t *const *params,
                      json_t **results, struct zl_rpc_error *errs, char *errstr, size_t errstr_size)
{
    int ep;
    return batch_once(r, n, methods, params, NULL, true, results, errs, &ep, errstr, errstr_size);
}

zl_class zl_rpc_batch_quorum(struct zl_rpc *r, size_t n, const char *const *methods, json_t *const *params,
                             json_t **results, struct zl_rpc_error *errs, char *errstr, size_t errstr_size)
{
    if (r->opts.quorum <= 1)
        return zl_rpc_batch(r, n, methods, params, results, errs, errstr, errstr_size);
    for (size_t i = 0; i < n; i++) {
        results[i] = NULL;
        if (errs != NULL)
            memset(&errs[i], 0, sizeof(errs[i]));
    }
    if (n > ZL_RPC_BATCH_MAX) {
        snprintf(errstr, errstr_size, "rpc batch: %zu calls, more than ZL_RPC_BATCH_MAX %d", n, ZL_RPC_BATCH_MAX);
        return ZL_PERMANENT;
    }
    /* answers[round][i]: what the round's endpoint said to call i (NULL: an
     * error, which is not a vote). A call is decided once quorum answers to
     * it are equal; the rest stay NULL with errs[i] saying so. */
    json_t *answers[ZL_RPC_ENDPOINTS_MAX][ZL_RPC_BATCH_MAX];
    struct zl_rpc_error *round_errs = calloc(n, sizeof(*round_errs)); /* 1.3 KiB each: not on the stack */
    if (round_errs == NULL) {
        snprintf(errstr, errstr_size, "rpc batch: out of memory");
        return ZL_TRANSIENT;
    }
    struct quorum_rounds q = {.worst = ZL_TRANSIENT};
    int rounds = 0;
    size_t decided = 0;
    while (rounds < r->n && decided < n) {
        int ep = -1;
        char why[ZL_ERRSTR_SIZE];
        zl_class c = batch_once(r, n, methods, params, q.skip, false, answers[rounds], round_errs, &ep, why,
                                sizeof(why));
        enum quorum_step st = quorum_step(&q, c, ep, why);
        if (st == Q_STOP)
            break;
        if (st == Q_NEXT)
            continue;
        int me = rounds++;
        for (size_t i = 0; i < n; i++) {
            json_t *a = answers[me][i];
            if (a == NULL) {
                if (errs != NULL && results[i] == NULL)
                    errs[i] = round_errs[i];
                continue;
            }
            if (results[i] != NULL)
                continue;
            int agree = 0;
            for (int k = 0; k <= me; k++)
                if (answers[k][i] != NULL && json_equal(answers[k][i], a))
                    agree++;
            if (agree >= r->opts.quorum) {
                results[i] = json_incref(a);
                decided++;
            }
        }
    }
    for (int k = 0; k < rounds; k++)
        for (size_t i = 0; i < n; i++)
            json_decref(answers[k][i]);
    free(round_errs);
    if (!q.any_reached) {
        snprintf(errstr, errstr_size, "rpc batch: quorum of %d not reached (last error: %s)", r->opts.quorum,
                 q.last[0] != '\0' ? q.last : "none");
        return q.worst;
    }
    /* Calls short of a quorum fail one by one, like an error answer. */
    for (size_t i = 0; errs != NULL && i < n; i++)
        if (results[i] == NULL && errs[i].message[0] == '\0')
            snprintf(errs[i].message, sizeof(errs[i].message), "%s: quorum of %d not reached (%d answers)",
                     methods[i], r->opts.quorum, rounds);
    if (decided == 0 && rounds == 0) {
        snprintf(errstr, errstr_size, "rpc batch: quorum of %d not reached (last error: %s)", r->opts.quorum,
                 q.last[0] != '\0' ? q.last : "none");
        return ZL_TRANSIENT;
    }
    return ZL_OK;
}

zl_class zl_rpc_call_quorum(struct zl_rpc *r, const char *method, json_t *params, json_t **result,
                            struct zl_rpc_error *rpc_err, char *errstr, size_t errstr_size)
{
    *result = NULL;
    if (r->opts.quorum <= 1)
        return zl_rpc_call(r, method, params, result, rpc_err, errstr, errstr_size);
    if (rpc_err != NULL)
        memset(rpc_err, 0, sizeof(*rpc_err));
    struct quorum_rounds q = {.worst = ZL_TRANSIENT};
    json_t *answers[ZL_RPC_ENDPOINTS_MAX];
    int n_answers = 0;
    for (int round = 0; round < r->n; round++) {
        json_t *res = NULL;
        enum quorum_step st = call_round(r, &q, method, params, &res, rpc_err);
        if (st == Q_STOP)
            break;
        if (st == Q_NEXT)
            continue;
        answers[n_answers++] = res;
        int agree = 0;
        for (int i = 0; i < n_answers; i++)
            if (json_equal(answers[i], res))
                agree++;
        if (agree >= r->opts.quorum) {
            *result = json_incref(res);
            for (int i = 0; i < n_answers; i++)
                json_decref(answers[i]);
            return ZL_OK;
        }
    }
    for (int i = 0; i < n_answers; i++)
        json_decref(answers[i]);
    snprintf(errstr, errstr_size, "%s: quorum of %d not reached (%d answers; last error: %s)", method,
             r->opts.quorum, n_answers, q.last[0] != '\0' ? q.last : "none");
    return q.worst;
}
zl_class zl_rpc_call_each(struct zl_rpc *r, const char *method, json_t *params, json_t **answers, int *n_answers,
                          char *errstr, size_t errstr_size)
{
    *n_answers = 0;
    struct quorum_rounds q = {.worst = ZL_TRANSIENT};
    for (int round = 0; round < r->n; round++) {
        json_t *res = NULL;
        enum quorum_step st = call_round(r, &q, method, params, &res, NULL);
        if (st == Q_STOP)
            break;
        if (st == Q_VOTE)
            answers[(*n_answers)++] = res;
    }
    if (*n_answers > 0)
        return ZL_OK;
    snprintf(errstr, errstr_size, "%s: no endpoint answered (last error: %s)", method,
             q.last[0] != '\0' ? q.last : "none");
    return q.worst;
}

int zl_rpc_quorum(const struct zl_rpc *r)
{
    return r->opts.quorum;
}
