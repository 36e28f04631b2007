#include "pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "postgres prepare <statement name>: " before the server's message. */
#define PG_STMT_PREFIX_SIZE 160

int zl_pg_init(struct zl_pg *p, const char *dsn, int64_t connect_timeout_ms)
{
    memset(p, 0, sizeof(*p));
    p->dsn = strdup(dsn);
    if (p->dsn == NULL)
        return -1;
    p->connect_timeout_ms = connect_timeout_ms;
    return 0;
}

int zl_pg_add_stmt(struct zl_pg *p, const char *name, const char *sql, int nparams)
{
    if (p->nstmts >= ZL_PG_STMTS_MAX)
        return -1;
    p->stmts[p->nstmts].name = name;
    p->stmts[p->nstmts].sql = sql;
    p->stmts[p->nstmts].nparams = nparams;
    p->nstmts++;
    if (p->conn != NULL) {
        /* Added after connecting: force a re-prepare on the next ensure. */
        PQfinish(p->conn);
        p->conn = NULL;
    }
    return 0;
}

bool zl_pg_connected(const struct zl_pg *p)
{
    return p->conn != NULL && PQstatus(p->conn) == CONNECTION_OK;
}

static void copy_pg_message(char *errstr, size_t errstr_size, const char *prefix, const char *msg)
{
    /* libpq messages end with a newline; keep log lines on one line. */
    snprintf(errstr, errstr_size, "%s%s", prefix, msg ? msg : "(no message)");
    size_t n = strlen(errstr);
    while (n > 0 && (errstr[n - 1] == '\n' || errstr[n - 1] == ' '))
        errstr[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (errstr[i] == '\n')
            errstr[i] = ' ';
}

zl_class zl_pg_ensure(struct zl_pg *p, char *errstr, size_t errstr_size)
{
    if (zl_pg_connected(p))
        return ZL_OK;
    if (p->conn != NULL) {
        PQfinish(p->conn);
        p->conn = NULL;
        p->reconnects++;
    }
    char timeout_s[ZL_INT64_DEC_SIZE];
    long secs = (long)((p->connect_timeout_ms + 999) / 1000);
    snprintf(timeout_s, sizeof(timeout_s), "%ld", secs < 1 ? 1L : secs);
    /* expand_dbname=1: the DSN may be a URI or key=value string. */
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {p->dsn, timeout_s, "zeroloss", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1 /* expand_dbname */);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        copy_pg_message(errstr, errstr_size, "postgres connect: ", c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return ZL_OUTAGE;
    }
    for (int i = 0; i < p->nstmts; i++) {
        PGresult *r = PQprepare(c, p->stmts[i].name, p->stmts[i].sql, p->stmts[i].nparams, NULL);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK) {
            char prefix[PG_STMT_PREFIX_SIZE];
            snprintf(prefix, sizeof(prefix), "postgres prepare %s: ", p->stmts[i].name);
            copy_pg_message(errstr, errstr_size, prefix, PQresultErrorMessage(r));
            size_t used = strlen(errstr);
            if (PQstatus(c) == CONNECTION_OK && used < errstr_size)
                snprintf(errstr + used, errstr_size - used, " (is every migration applied? run zl-migrate)");
            /* Connection lost, or a relation, column, function or grant
             * missing (a migration not applied): either way a person or
             * the network must act, and nothing is wrong with any message.
             * The caller pauses and calls us again, which prepares again. */
            PQclear(r);
            PQfinish(c);
            return ZL_OUTAGE;
        }
        PQclear(r);
    }
    p->conn = c;
    return ZL_OK;
}

zl_class zl_pg_classify(struct zl_pg *p, const PGresult *res, char *errstr, size_t errstr_size)
{
    if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
        copy_pg_message(errstr, errstr_size, "postgres connection lost: ",
                        p->conn ? PQerrorMessage(p->conn) : "not connected");
        if (p->conn != NULL) {
            PQfinish(p->conn);
            p->conn = NULL;
            p->reconnects++;
        }
        return ZL_OUTAGE;
    }
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    copy_pg_message(errstr, errstr_size, "postgres: ", res ? PQresultErrorMessage(res) : PQerrorMessage(p->conn));
    if (sqlstate == NULL)
        return ZL_OUTAGE; /* no result at all: treat as a connection problem */
    /* Class 08 = connection exception, 57P = operator intervention (admin
     * shutdown, crash shutdown, cannot connect now), 53 = insufficient
     * resources: the server, not the message, is at fault. */
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0 || strncmp(sqlstate, "53", 2) == 0) {
        PQfinish(p->conn);
        p->conn = NULL;
        p->reconnects++;
        return ZL_OUTAGE;
    }
    /* Class 42 = syntax error or access rule violation (undefined table
     * 42P01, column 42703, function 42883, insufficient privilege 42501),
     * 3D/3F = no such database/schema, 26000 = no such prepared statement:
     * the schema or the grants do not match the code (a migration not
     * applied). A person must act; the deposit is fine. Outage, and the
     * connection is dropped so the next zl_pg_ensure() prepares everything
     * again against the migrated schema. */
    if (strncmp(sqlstate, "42", 2) == 0 || strncmp(sqlstate, "3D", 2) == 0 || strncmp(sqlstate, "3F", 2) == 0 ||
        strcmp(sqlstate, "26000") == 0) {
        PQfinish(p->conn);
        p->conn = NULL;
        p->reconnects++;
        return ZL_OUTAGE;
    }
    /* 40001 serialization failure, 40P01 deadlock, 55P03 lock not available:
     * a retry succeeds. */
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "55P03") == 0)
        return ZL_TRANSIENT;
    return ZL_PERMANENT;
}

zl_class zl_pg_exec(struct zl_pg *p, const char *sql, char *errstr, size_t errstr_size)
{
    if (!zl_pg_connected(p)) {
        snprintf(errstr, errstr_size, "postgres: not connected");
        return ZL_OUTAGE;
    }
    PGresult *r = PQexec(p->conn, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
        PQclear(r);
        return ZL_OK;
    }
    zl_class c = zl_pg_classify(p, r, errstr, errstr_size);
    PQclear(r);
    return c;
}

PGresult *zl_pg_prepared(struct zl_pg *p, const char *name, int nparams, const char *const *values,
                         int expect, zl_class *cls, char *errstr, size_t errstr_size)
{
    if (!zl_pg_connected(p)) {
        snprintf(errstr, errstr_size, "postgres: not connected");
        *cls = ZL_OUTAGE;
        return NULL;
    }
    PGresult *r = PQexecPrepared(p->conn, name, nparams, values, NULL, NULL, 0 /* text results */);
    if ((int)PQresultStatus(r) == expect) {
        *cls = ZL_OK;
        return r;
    }
    *cls = zl_pg_classify(p, r, errstr, errstr_size);
    PQclear(r);
    return NULL;
}

zl_class zl_pg_lock_ensure(struct zl_pg *p, const char *stmt, const char *key, struct zl_pg_lock *lock, char *errstr,
                           size_t errstr_size)
{
    lock->asked = false;
    zl_class c = zl_pg_ensure(p, errstr, errstr_size);
    if (c != ZL_OK) {
        lock->held = false;
        return c;
    }
    if (lock->held && p->reconnects == lock->reconnects)
        return ZL_OK;
    lock->held = false;
    const char *vals[1] = {key};
    PGresult *r = zl_pg_prepared(p, stmt, 1, vals, PGRES_TUPLES_OK, &c, errstr, errstr_size);
    if (r == NULL)
        return c;
    lock->asked = true;
    lock->held = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    lock->reconnects = p->reconnects;
    PQclear(r);
    return ZL_OK;
}

void zl_pg_rollback(struct zl_pg *p)
{
    if (!zl_pg_connected(p))
        return;
    PGresult *r = PQexec(p->conn, "ROLLBACK");
    PQclear(r);
}

void zl_pg_close(struct zl_pg *p)
{
    if (p->conn != NULL)
        PQfinish(p->conn);
    p->conn = NULL;
    free(p->dsn);
    p->dsn = NULL;
}

int zl_pg_copy_value(char *dst, size_t dst_size, const PGresult *r, int row, int col)
{
    const char *v = PQgetvalue(r, row, col);
    size_t len = strlen(v);
    int cut = len >= dst_size ? -1 : 0;
    if (cut != 0)
        len = dst_size - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return cut;
}

int zl_pg_int_value(const PGresult *r, int row, int col, long long min, long long max, long long *out,
                    char *errstr, size_t errstr_size)
{
    const char *v = PQgetvalue(r, row, col);
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (v[0] == '\0' || end == NULL || *end != '\0' || errno != 0 || x < min || x > max) {
        snprintf(errstr, errstr_size, "postgres: column %s holds \"%.40s\", not an integer in %lld..%lld",
                 PQfname(r, col), v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

/* Builds a Postgres array literal {"a","b"} from ids. Elements are quoted and
 * backslash-escaped, so any text is safe; the result is a bound parameter,
 * never SQL. Returns a malloc'd string or NULL when out of memory. */
char *zl_pg_array_literal(const char *const *ids, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(ids[i]) + 3;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    size_t k = 0;
    s[k++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            s[k++] = ',';
        s[k++] = '"';
        for (const char *c = ids[i]; *c != '\0'; c++) {
            if (*c == '"' || *c == '\\')
                s[k++] = '\\';
            s[k++] = *c;
        }
        s[k++] = '"';
    }
    s[k++] = '}';
    s[k] = '\0';
    return s;
}

