/* pg.h: one PostgreSQL connection that reconnects, with prepared statements
 * that are re-prepared after every reconnect.
 *
 * Failures split two ways, because they go different places (architecture §6):
 *  - the connection is gone (server down, restart, network): ZL_OUTAGE. The
 *    caller pauses its stage and calls zl_pg_ensure() until it succeeds.
 *  - the schema or grants do not match the code (a missing relation, column,
 *    function or privilege: a migration not applied): ZL_OUTAGE too. A
 *    person must act; nothing is wrong with the message, so it never goes
 *    to the DLQ. The connection is dropped, so the next zl_pg_ensure()
 *    prepares every statement again.
 *  - the statement failed on a healthy connection (constraint, bad data):
 *    ZL_TRANSIENT for serialization/deadlock/lock timeout, ZL_PERMANENT
 *    otherwise.
 * Callers pass these classes on as they are: the class is decided here.
 *
 * @locality the thread that owns the struct; libpq connections are not shared.
 */
#ifndef ZL_PG_H
#define ZL_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "zl.h"

/* Prepared statements per connection: the runtime and one stage need a dozen. */
#define ZL_PG_STMTS_MAX 32

struct zl_pg_stmt {
    const char *name; /* borrowed: string literal */
    const char *sql;  /* borrowed: string literal */
    int nparams;
};

struct zl_pg {
    PGconn *conn;                               /* NULL while disconnected */
    char *dsn;                                  /* owned */
    struct zl_pg_stmt stmts[ZL_PG_STMTS_MAX];   /* re-prepared on reconnect */
    int nstmts;
    int64_t connect_timeout_ms;
    unsigned long reconnects;                   /* for metrics */
};

/* Initialises p (no connection yet). dsn is copied. Returns 0, or -1 when out
 * of memory. */
int zl_pg_init(struct zl_pg *p, const char *dsn, int64_t connect_timeout_ms);

/* Registers a statement to prepare on every connection. Call before the first
 * zl_pg_ensure(). Returns -1 when ZL_PG_STMTS_MAX is reached (a programmer
 * error the caller reports). */
int zl_pg_add_stmt(struct zl_pg *p, const char *name, const char *sql, int nparams);

/* Makes sure the connection is up and every statement prepared: connects or
 * reconnects as needed. Returns ZL_OK, or ZL_OUTAGE when the server cannot be
 * reached or a statement fails to prepare (a missing migration or grant;
 * errstr names the statement). Never ZL_PERMANENT: no message is at fault. */
zl_class zl_pg_ensure(struct zl_pg *p, char *errstr, size_t errstr_size);

/* Classifies a failed result (or NULL result) on p's connection. Writes the
 * server's message into errstr. Closes the connection when it is broken, so
 * the next zl_pg_ensure() reconnects. */
zl_class zl_pg_classify(struct zl_pg *p, const PGresult *res, char *errstr, size_t errstr_size);

/* Runs a command with no result rows (BEGIN, COMMIT, ...). Returns ZL_OK or
 * the class of the failure. */
zl_class zl_pg_exec(struct zl_pg *p, const char *sql, char *errstr, size_t errstr_size);

/* Runs a prepared statement. On success returns the result (caller PQclear()s
 * it); on failure returns NULL, sets *cls and errstr. */
PGresult *zl_pg_prepared(struct zl_pg *p, const char *name, int nparams, const char *const *values,
                         int expect /* PGRES_COMMAND_OK or PGRES_TUPLES_OK */, zl_class *cls,
                         char *errstr, size_t errstr_size);

/* A session advisory lock that lets one copy of several be active (detect's
 * scan lock). The caller owns the struct (zeroed to start). */
struct zl_pg_lock {
    bool held;                /* this copy holds it */
    bool asked;               /* the last zl_pg_lock_ensure asked the server */
    unsigned long reconnects; /* p->reconnects when it was taken */
};

/* Ensures p's connection and asks for the lock through stmt (a prepared
 * statement of one parameter, key, returning pg_try_advisory_lock's
 * boolean) unless this connection already holds it: a new connection does
 * not hold the old one's session lock. Returns ZL_OK with lock->held and
 * lock->asked set, or the class of what failed (lock->held false). */
zl_class zl_pg_lock_ensure(struct zl_pg *p, const char *stmt, const char *key, struct zl_pg_lock *lock, char *errstr,
                           size_t errstr_size);

/* Best-effort ROLLBACK after a failed transaction; ignores errors (a broken
 * connection rolls back by itself). */
void zl_pg_rollback(struct zl_pg *p);

/* True when p has a live connection. */
bool zl_pg_connected(const struct zl_pg *p);

/* Builds a Postgres text array literal {"a","b"} for binding as one
 * parameter (e.g. "= ANY($1::text[])"), so a batch is one round trip.
 * Elements are quoted and escaped: any text is safe, and it is never SQL.
 * Returns a malloc'd string the caller frees, or NULL when out of memory. */
char *zl_pg_array_literal(const char *const *items, size_t n);

/* Copies the text of column col of row `row` of r into dst, cut to
 * dst_size - 1 bytes and always NUL-terminated (a NULL column is "").
 * Returns 0, or -1 when it had to cut (a caller that must not read a cut
 * value checks it). */
int zl_pg_copy_value(char *dst, size_t dst_size, const PGresult *r, int row, int col);

/* Reads column col of row `row` of r as a decimal integer in [min, max].
 * Returns 0 with *out set, or -1 when it is not one (errstr names the value):
 * a stored number the code cannot read is the schema's or a person's to fix,
 * never guessed at (atoi read "x" as 0). */
int zl_pg_int_value(const PGresult *r, int row, int col, long long min, long long max, long long *out,
                    char *errstr, size_t errstr_size);

/* Closes the connection and frees the DSN. p may be reused after zl_pg_init. */
void zl_pg_close(struct zl_pg *p);

#endif /* ZL_PG_H */
