/* zl-migrate: applies schemas/sql/NNN_*.sql in order, once each, recording
 * each in zl_schema_migrations with a SHA-256 of its text. A migration whose
 * text changed after it was applied is an error: schema history is append-only.
 *
 * Usage: zl-migrate [up|status] [--dir DIR]
 *   ZL_PG_DSN   the database (required)
 *   DIR         default $ZL_SCHEMA_DIR or schemas/sql
 * Exit: 0 ok, 1 a migration failed or was edited, 2 usage or connection error.
 * Several copies may run at once (every worker's init does): an advisory lock
 * makes them take turns, and the second finds nothing to do.
 */
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "hex.h"
#include "zl.h"

/* Enough migrations for the life of the project; a bound on the dir scan. */
#define MIGRATIONS_MAX 512
/* A migration file larger than this is a data dump, not a schema change. */
#define MIGRATION_BYTES_MAX (1024 * 1024)
/* Arbitrary constant shared by every copy of zl-migrate: "zlmigrat". */
#define MIGRATE_LOCK_KEY "8245937291384401"
/* A migration's checksum: sha256 as bare lowercase hex, NUL included, as
 * zl_schema_migrations.checksum stores it. */
#define SHA256_HEX_SIZE (2 * SHA256_DIGEST_SIZE + 1)

struct migration {
    char name[256];
    int version;
};

static int cmp_migration(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Accepts NNN_name.sql with NNN exactly three digits. */
static int parse_name(const char *name, int *version)
{
    size_t n = strlen(name);
    if (n < 9 || strcmp(name + n - 4, ".sql") != 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (name[i] < '0' || name[i] > '9')
            return -1;
    if (name[3] != '_')
        return -1;
    *version = (name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0');
    return 0;
}

static char *read_file(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MIGRATION_BYTES_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    size_t n = fread(buf, 1, MIGRATION_BYTES_MAX + 1, f);
    fclose(f);
    if (n > MIGRATION_BYTES_MAX) {
        free(buf);
        snprintf(errstr, errstr_size, "%s: larger than %d bytes", path, MIGRATION_BYTES_MAX);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void sha256_hex(const char *data, size_t len, char out[SHA256_HEX_SIZE])
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)data);
    sha256_digest(&ctx, sizeof(digest), digest);
    zl_hex_encode_bare(digest, sizeof(digest), out, SHA256_HEX_SIZE);
}

static int exec_ok(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "zl-migrate: %s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static int list_migrations(const char *dir, struct migration *out, int *count)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "zl-migrate: cannot open %s: %s (set ZL_SCHEMA_DIR or --dir)\n", dir, strerror(errno));
        return -1;
    }
    *count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int v;
        if (parse_name(e->d_name, &v) != 0)
            continue;
        if (*count >= MIGRATIONS_MAX || strlen(e->d_name) >= sizeof(out[0].name)) {
            fprintf(stderr, "zl-migrate: too many migrations or name too long: %s\n", e->d_name);
            closedir(d);
            return -1;
        }
        memcpy(out[*count].name, e->d_name, strlen(e->d_name) + 1);
        out[*count].version = v;
        (*count)++;
    }
    closedir(d);
    qsort(out, (size_t)*count, sizeof(out[0]), cmp_migration);
    for (int i = 1; i < *count; i++) {
        if (out[i].version == out[i - 1].version) {
            fprintf(stderr, "zl-migrate: two migrations share version %03d: %s and %s\n", out[i].version,
                    out[i - 1].name, out[i].name);
            return -1;
        }
    }
    return 0;
}

/* Applies (or, with dry_run, reports) each migration. Returns 0, or 1 on a
 * failed or edited migration. */
static int migrate(PGconn *c, const char *dir, const struct migration *m, int count, int dry_run)
{
    int applied = 0, pending = 0;
    for (int i = 0; i < count; i++) {
        char path[4096], errstr[512], sum[SHA256_HEX_SIZE], version[ZL_INT64_DEC_SIZE];
        snprintf(path, sizeof(path), "%s/%s", dir, m[i].name);
        size_t len = 0;
        char *sql = read_file(path, &len, errstr, sizeof(errstr));
        if (sql == NULL) {
            fprintf(stderr, "zl-migrate: %s\n", errstr);
            return 1;
        }
        sha256_hex(sql, len, sum);
        snprintf(version, sizeof(version), "%d", m[i].version);
        const char *params[3] = {version, m[i].name, sum};
        PGresult *r = PQexecParams(c, "SELECT checksum FROM zl_schema_migrations WHERE version = $1::int", 1,
                                   NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "zl-migrate: reading zl_schema_migrations: %s", PQresultErrorMessage(r));
            PQclear(r);
            free(sql);
            return 1;
        }
        if (PQntuples(r) == 1) {
            int same = strcmp(PQgetvalue(r, 0, 0), sum) == 0;
            PQclear(r);
            free(sql);
            if (!same) {
                fprintf(stderr,
                        "zl-migrate: %s was changed after it was applied (checksum differs): "
                        "write a new migration instead of editing an applied one\n",
                        m[i].name);
                return 1;
            }
            if (dry_run)
                printf("applied  %s\n", m[i].name);
            continue;
        }
        PQclear(r);
        if (dry_run) {
            printf("pending  %s\n", m[i].name);
            pending++;
            free(sql);
            continue;
        }
        /* One transaction per migration: all of it or none of it. */
        int rc = exec_ok(c, "BEGIN", "BEGIN");
        if (rc == 0)
            rc = exec_ok(c, sql, m[i].name);
        free(sql);
        if (rc == 0) {
            r = PQexecParams(c, "INSERT INTO zl_schema_migrations (version, name, checksum) VALUES ($1::int, $2, $3)",
                             3, NULL, params, NULL, NULL, 0);
            rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
            if (rc != 0)
                fprintf(stderr, "zl-migrate: recording %s: %s", m[i].name, PQresultErrorMessage(r));
            PQclear(r);
        }
        if (rc == 0)
            rc = exec_ok(c, "COMMIT", "COMMIT");
        if (rc != 0) {
            exec_ok(c, "ROLLBACK", "ROLLBACK");
            fprintf(stderr, "zl-migrate: %s failed; nothing of it was applied\n", m[i].name);
            return 1;
        }
        printf("applied  %s\n", m[i].name);
        applied++;
    }
    if (dry_run)
        printf("%d pending\n", pending);
    else
        printf("%d applied, %d already present\n", applied, count - applied);
    return 0;
}

static int migrate_main(int argc, char **argv)
{
    const char *cmd = "up";
    const char *dir = getenv("ZL_SCHEMA_DIR") ? getenv("ZL_SCHEMA_DIR") : "schemas/sql";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "up") == 0 || strcmp(argv[i], "status") == 0) {
            cmd = argv[i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: zl-migrate [up|status] [--dir DIR]   (database from ZL_PG_DSN)\n");
            return 0;
        } else {
            fprintf(stderr, "zl-migrate: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    const char *dsn = getenv("ZL_PG_DSN");
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "zl-migrate: ZL_PG_DSN is not set\n");
        return 2;
    }
    static struct migration m[MIGRATIONS_MAX];
    int count = 0;
    if (list_migrations(dir, m, &count) != 0)
        return 2;

    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "zl-migrate: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return 2;
    }
    int rc = 1;
    if (exec_ok(c, "SET client_min_messages = warning", "settings") != 0 ||
        exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "advisory lock") != 0)
        goto out;
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS zl_schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                "creating zl_schema_migrations") != 0)
        goto out;
    rc = migrate(c, dir, m, count, strcmp(cmd, "status") == 0);
out:
    PQfinish(c); /* also releases the advisory lock */
    return rc;
}

/* The start-up every binary shares (boot.h), then the command: its
 * arguments are all its own, its settings come from the environment. */
int main(int argc, char **argv)
{
    return zl_boot_command("zl-migrate", argc, argv, migrate_main);
}
