#include "state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
    [ZL_STATE_UNKNOWN] = "unknown",
    [ZL_STATE_DETECTED] = "detected",
    [ZL_STATE_VERIFIED] = "verified",
    [ZL_STATE_PINNED] = "pinned",
    [ZL_STATE_MINT_SUBMITTED] = "mint_submitted",
    [ZL_STATE_MINTED] = "minted",
    [ZL_STATE_CREDITED] = "credited",
    [ZL_STATE_REORGED] = "reorged",
    [ZL_STATE_DEAD] = "dead",
    [ZL_STATE_BELOW_MINIMUM] = "below_minimum",
};
#define STATE_COUNT ((int)(sizeof(state_names) / sizeof(state_names[0])))

const char *zl_state_name(zl_state s)
{
    if ((int)s < 0 || (int)s >= STATE_COUNT)
        return "unknown";
    return state_names[s];
}

int zl_state_parse(const char *name, zl_state *out)
{
    for (int i = 1; i < STATE_COUNT; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (zl_state)i;
            return 0;
        }
    }
    return -1;
}

int zl_state_rank(zl_state s)
{
    if (s >= ZL_STATE_DETECTED && s <= ZL_STATE_CREDITED)
        return (int)s;
    return 0;
}

bool zl_state_off_path(zl_state s)
{
    return s == ZL_STATE_REORGED || s == ZL_STATE_DEAD || s == ZL_STATE_BELOW_MINIMUM;
}

/* Rows come back with the 1-based position of their id in the batch
 * (WITH ORDINALITY), so matching them is O(1) per row, not a search. */
static const char SQL_READ[] =
    "SELECT u.ord, state, attempts,"
    " coalesce(credit_id::text, ''), coalesce(credit_eggs::text, ''), coalesce(dead_from_state, ''),"
    " block_number, block_hash, coalesce(confirmations, -1), (min_waived_at IS NOT NULL)::text, " ZL_FACTS_COLUMNS
    " FROM unnest($1::text[]) WITH ORDINALITY AS u(id, ord) JOIN deposits d ON d.deposit_id = u.id";

static const char SQL_CAS[] =
    "UPDATE deposits d SET state = $2, attempts = 0, last_error = NULL, last_error_class = NULL,"
    " next_attempt_at = NULL, updated_at = now()"
    " FROM (SELECT DISTINCT ON (id) id, ord FROM unnest($1::text[]) WITH ORDINALITY AS x(id, ord)"
    "       ORDER BY id, ord) u"
    " WHERE d.deposit_id = u.id AND d.state = ANY($3::text[])"
    " RETURNING u.ord";

static const char SQL_SETTLE[] =
    "UPDATE deposits SET state = $2, attempts = 0, last_error = left($4, 2000), last_error_class = NULL,"
    " next_attempt_at = NULL, updated_at = now() WHERE deposit_id = $1 AND state = ANY($3::text[])";

static const char SQL_FAILURE[] =
    "UPDATE deposits SET attempts = attempts + 1, last_error = left($3, 2000), last_error_class = $2,"
    " next_attempt_at = CASE WHEN $4::bigint < 0 THEN NULL"
    "   ELSE now() + make_interval(secs => $4::bigint / 1000.0) END,"
    " updated_at = now() WHERE deposit_id = $1";

static const char SQL_DEAD[] =
    "UPDATE deposits SET dead_from_state = state, state = 'dead', attempts = attempts + 1,"
    " last_error = left($3, 2000), last_error_class = $2, next_attempt_at = NULL,"
    " dlq_topic = $4, dlq_partition = $5::int, dlq_offset = $6::bigint, updated_at = now()"
    " WHERE deposit_id = $1 AND state NOT IN ('credited', 'reorged', 'dead', 'below_minimum') AND NOT (state = ANY ($7::text[]))"
    " AND lower(coalesce(block_hash, '')) = lower($8)";

int zl_state_prepare(struct zl_pg *p)
{
    if (zl_pg_add_stmt(p, "zl_state_read", SQL_READ, 1) != 0 || zl_pg_add_stmt(p, "zl_state_cas", SQL_CAS, 3) != 0 ||
        zl_pg_add_stmt(p, "zl_state_failure", SQL_FAILURE, 4) != 0 ||
        zl_pg_add_stmt(p, "zl_state_settle", SQL_SETTLE, 4) != 0 ||
        zl_pg_add_stmt(p, "zl_state_dead", SQL_DEAD, 8) != 0)
        return -1;
    return 0;
}

zl_class zl_state_read(struct zl_pg *p, const char *const *ids, size_t n, struct zl_row *rows, char *errstr,
                       size_t errstr_size)
{
    memset(rows, 0, n * sizeof(rows[0]));
    if (n == 0)
        return ZL_OK;
    char *arr = zl_pg_array_literal(ids, n);
    if (arr == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    zl_class cls;
    const char *params[1] = {arr};
    PGresult *r = zl_pg_prepared(p, "zl_state_read", 1, params, PGRES_TUPLES_OK, &cls, errstr, errstr_size);
    free(arr);
    if (r == NULL)
        return cls;
    int nrows = PQntuples(r);
    for (int j = 0; j < nrows; j++) {
        long ord = strtol(PQgetvalue(r, j, 0), NULL, 10);
        ZL_ASSERT(ord >= 1 && (size_t)ord <= n); /* the database echoes our own positions */
        struct zl_row *row = &rows[ord - 1];
        row->found = true;
        if (zl_state_parse(PQgetvalue(r, j, 1), &row->state) != 0)
            row->state = ZL_STATE_UNKNOWN;
        row->attempts = (int)strtol(PQgetvalue(r, j, 2), NULL, 10);
        zl_pg_copy_value(row->credit_id, sizeof(row->credit_id), r, j, 3);
        zl_pg_copy_value(row->credit_eggs, sizeof(row->credit_eggs), r, j, 4);
        zl_pg_copy_value(row->dead_from_state, sizeof(row->dead_from_state), r, j, 5);
        row->block_number = strtoull(PQgetvalue(r, j, 6), NULL, 10);
        zl_pg_copy_value(row->block_hash, sizeof(row->block_hash), r, j, 7);
        row->confirmations = strtoll(PQgetvalue(r, j, 8), NULL, 10);
        row->min_waived = strcmp(PQgetvalue(r, j, 9), "true") == 0;
        zl_facts_from_result(r, j, 10, &row->facts);
    }
    PQclear(r);
    return ZL_OK;
}

zl_class zl_state_cas(struct zl_pg *p, const char *const *ids, size_t n, const char *from, zl_state to,
                      bool *moved, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++)
        moved[i] = false;
    if (n == 0)
        return ZL_OK;
    char *arr = zl_pg_array_literal(ids, n);
    if (arr == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return ZL_TRANSIENT;
    }
    zl_class cls;
    const char *params[3] = {arr, zl_state_name(to), from};
    PGresult *r = zl_pg_prepared(p, "zl_state_cas", 3, params, PGRES_TUPLES_OK, &cls, errstr, errstr_size);
    free(arr);
    if (r == NULL)
        return cls;
    /* A deposit twice in one batch moves once: DISTINCT ON keeps its first
     * position, so only that copy counts as moved and the second is then
     * "already done". */
    int nrows = PQntuples(r);
    for (int j = 0; j < nrows; j++) {
        long ord = strtol(PQgetvalue(r, j, 0), NULL, 10);
        ZL_ASSERT(ord >= 1 && (size_t)ord <= n);
        moved[ord - 1] = true;
    }
    PQclear(r);
    return ZL_OK;
}

zl_class zl_state_settle(struct zl_pg *p, const char *id, const char *from, zl_state to, const char *why,
                         bool *moved, char *errstr, size_t errstr_size)
{
    const char *params[4] = {id, zl_state_name(to), from, why};
    zl_class rc;
    *moved = false;
    PGresult *r = zl_pg_prepared(p, "zl_state_settle", 4, params, PGRES_COMMAND_OK, &rc, errstr, errstr_size);
    if (r != NULL) {
        *moved = strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
    }
    return rc;
}

zl_class zl_state_record_failure(struct zl_pg *p, const char *id, zl_class cls, const char *error,
                                 int64_t delay_ms, char *errstr, size_t errstr_size)
{
    char delay[ZL_INT64_DEC_SIZE];
    snprintf(delay, sizeof(delay), "%" PRId64, delay_ms);
    const char *params[4] = {id, zl_class_name(cls), error, delay};
    zl_class rc;
    PGresult *r = zl_pg_prepared(p, "zl_state_failure", 4, params, PGRES_COMMAND_OK, &rc, errstr, errstr_size);
    if (r != NULL)
        PQclear(r);
    return rc;
}

zl_class zl_state_mark_dead(struct zl_pg *p, const char *id, zl_class cls, const char *error, const char *dlq_topic,
                            int32_t dlq_partition, int64_t dlq_offset, const char *past_states,
                            const char *block_hash, bool *marked, char *errstr, size_t errstr_size)
{
    char part[ZL_INT64_DEC_SIZE], off[ZL_INT64_DEC_SIZE];
    snprintf(part, sizeof(part), "%" PRId32, dlq_partition);
    snprintf(off, sizeof(off), "%" PRId64, dlq_offset);
    const char *params[8] = {id, zl_class_name(cls), error, dlq_topic, part, off, past_states, block_hash};
    zl_class rc;
    *marked = false;
    PGresult *r = zl_pg_prepared(p, "zl_state_dead", 8, params, PGRES_COMMAND_OK, &rc, errstr, errstr_size);
    if (r != NULL) {
        *marked = strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
    }
    return rc;
}
