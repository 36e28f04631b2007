/* zlctl: the admin API (common/admin.h) from a terminal.
 *
 * Usage: zlctl [--set ZL_ADMIN_URL=...] COMMAND [ARGS]
 *   health                               aggregated worker health
 *   deposit ID                           status, history, audit, replays
 *   dead [--stage S] [--limit N] [--all] dead letters from the state table
 *   resolve ID --reason TEXT [--requeue] handled by hand, or back into the flow
 *   sweep [--stale-ms N] --reason TEXT   ask the active sweeper to sweep now
 *   sweep-status REQUEST_ID
 *   breaker-reset --worker W [--dependency D] --reason TEXT
 *   claim TX_HASH [--reason TEXT]        "I paid, where are my eggs?": records
 *                                        the deposits in that transaction that
 *                                        detect missed, and says where each
 *                                        one is (state, last error)
 *   below-minimum [--token SYMBOL] [--limit N]
 *                                        deposits under their token's minimum
 *                                        (id, user, token, amount, since), with
 *                                        the count and sum per token
 *   credit-below-minimum ID --reason TEXT
 *                                        waives the minimum for that deposit:
 *                                        it goes on to credited, once (409 when
 *                                        it is not below_minimum)
 *   webhook add --url U --secret-file F  a webhook subscriber (issue 21)
 *   webhook list                         subscribers (never their secrets)
 *   webhook rotate ID --secret-file F    new secret; the old one stays valid
 *                                        until retire-secret (or 7 days)
 *   webhook retire-secret ID | webhook disable ID
 *   webhook deliveries ID [--state pending|delivered|failed] [--limit N]
 *   webhook redeliver DELIVERY_ID        re-arms a delivery (a failed one,
 *                                        or one the subscriber says it lost)
 * Every POST carries an Idempotency-Key (--key K, else a fresh UUID), so a
 * retried command never acts twice. Prints the JSON answer.
 * Exit: 0 on a 2xx answer, 1 otherwise, 2 usage or configuration error.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "boot.h"
#include "config.h"
#include "envelope.h"
#include "httpbuf.h"

/* Largest answer printed (a dead-letter listing of 1000 rows fits). */
#define BODY_MAX_BYTES (8 * 1024 * 1024)
#define ARGS_MAX 64

struct ctl_config {
    char *url;
    struct zl_secret token;
    int64_t timeout_ms;
};

static const struct zl_setting ctl_settings[] = {
    {"ZL_ADMIN_URL", ZL_CFG_STR, "http://127.0.0.1:8080", "base URL of zl-admin", offsetof(struct ctl_config, url),
     0, 0},
    {"ZL_ADMIN_TOKEN_FILE", ZL_CFG_SECRET_FILE, "", "file holding the admin API bearer token",
     offsetof(struct ctl_config, token), 0, 0},
    {"ZL_ADMIN_HTTP_TIMEOUT_MS", ZL_CFG_INT, "30000", "bound on one admin call",
     offsetof(struct ctl_config, timeout_ms), 100, 600000},
};

static int call(const struct ctl_config *c, const char *method, const char *path, const char *query,
                json_t *body, const char *key)
{
    char url[2048], auth[ZL_SECRET_BYTES_MAX + 32], idem[256];
    char *esc_path = NULL;
    snprintf(url, sizeof(url), "%s%s%s%s", c->url, path, query != NULL ? "?" : "", query != NULL ? query : "");
    CURL *h = curl_easy_init();
    if (h == NULL)
        return 1;
    struct curl_slist *hdrs = NULL;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token.value != NULL ? c->token.value : "");
    hdrs = curl_slist_append(hdrs, auth);
    char *payload = NULL;
    if (strcmp(method, "POST") == 0) {
        char k[ZL_UUID_TEXT_SIZE];
        if (key == NULL) {
            uuid_t u;
            uuid_generate_random(u);
            uuid_unparse_lower(u, k);
            key = k;
        }
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
        hdrs = curl_slist_append(hdrs, idem);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        payload = json_dumps(body, JSON_COMPACT);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload != NULL ? payload : "{}");
    }
    struct zl_httpbuf b;
    zl_httpbuf_init(&b, BODY_MAX_BYTES);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, zl_httpbuf_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    int exit_code = 1;
    if (rc != CURLE_OK) {
        fprintf(stderr, "zlctl: %s %s: %s\n", method, url, cerr[0] ? cerr : curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        json_t *j = b.data != NULL ? json_loads(b.data, 0, NULL) : NULL;
        if (j != NULL) {
            json_dumpf(j, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
            json_decref(j);
        } else if (b.data != NULL) {
            fputs(b.data, stdout);
        }
        if (status < 200 || status >= 300)
            fprintf(stderr, "zlctl: %s %s answered %ld\n", method, path, status);
        else
            exit_code = 0;
    }
    memset(auth, 0, sizeof(auth));
    free(esc_path);
    free(payload);
    zl_httpbuf_free(&b);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return exit_code;
}

/* ------------------------------------------------------------ webhook */

/* Largest secret file read (a secret is at most 200 characters). */
#define SECRET_FILE_BYTES_MAX 1024

/* The secret in path, without its trailing newline, into out. Returns 0,
 * or -1 with a message on stderr. */
static int read_secret(const char *path, char *out, size_t out_size)
{
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "zlctl: --secret-file %s: cannot read it\n", path != NULL ? path : "(missing)");
        return -1;
    }
    size_t n = fread(out, 1, out_size - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

struct webhook_args {
    const char *url, *secret_file, *state, *limit, *reason, *key;
};

/* zlctl webhook SUB [ARG]: pos[0] is "webhook". Returns the exit code. */
static int webhook_cmd(const struct ctl_config *c, char **pos, int npos, const struct webhook_args *a)
{
    const char *sub = npos > 1 ? pos[1] : "", *id = npos > 2 ? pos[2] : NULL;
    const char *reason = a->reason != NULL ? a->reason : "zlctl webhook";
    char path[512], query[256], secret[SECRET_FILE_BYTES_MAX];
    json_t *b = NULL;
    int status = 2;
    if (strcmp(sub, "list") == 0 && npos == 2)
        return call(c, "GET", "/admin/webhooks", NULL, NULL, NULL);
    if (strcmp(sub, "deliveries") == 0 && id != NULL) {
        char *es = a->state != NULL ? curl_easy_escape(NULL, a->state, 0) : NULL;
        snprintf(path, sizeof(path), "/admin/webhooks/%s/deliveries", id);
        snprintf(query, sizeof(query), "limit=%s%s%s", a->limit != NULL ? a->limit : "100",
                 es != NULL ? "&state=" : "", es != NULL ? es : "");
        curl_free(es);
        return call(c, "GET", path, query, NULL, NULL);
    }
    bool needs_secret = strcmp(sub, "add") == 0 || strcmp(sub, "rotate") == 0;
    if (needs_secret && read_secret(a->secret_file, secret, sizeof(secret)) != 0)
        return 2;
    if (strcmp(sub, "add") == 0 && a->url != NULL) {
        b = json_pack("{s:s,s:s,s:s}", "url", a->url, "secret", secret, "reason", reason);
        snprintf(path, sizeof(path), "/admin/webhooks");
    } else if (strcmp(sub, "rotate") == 0 && id != NULL) {
        b = json_pack("{s:s,s:s}", "secret", secret, "reason", reason);
        snprintf(path, sizeof(path), "/admin/webhooks/%s/rotate", id);
    } else if ((strcmp(sub, "retire-secret") == 0 || strcmp(sub, "disable") == 0) && id != NULL) {
        b = json_pack("{s:s}", "reason", reason);
        snprintf(path, sizeof(path), "/admin/webhooks/%s/%s", id, sub);
    } else if (strcmp(sub, "redeliver") == 0 && id != NULL) {
        b = json_pack("{s:s}", "reason", reason);
        snprintf(path, sizeof(path), "/admin/webhooks/deliveries/%s/redeliver", id);
    } else {
        fprintf(stderr, "zlctl: webhook add --url U --secret-file F | list | rotate ID --secret-file F\n"
                        "       | retire-secret ID | disable ID | deliveries ID [--state S] | redeliver DELIVERY_ID\n");
    }
    if (b != NULL)
        status = call(c, "POST", path, NULL, b, a->key);
    json_decref(b);
    memset(secret, 0, sizeof(secret));
    return status;
}

static int usage(const char *msg)
{
    fprintf(stderr, "zlctl: %s\nusage: zlctl health | deposit ID | dead [--stage S] [--limit N] [--all]\n"
                    "       | resolve ID --reason TEXT [--requeue] | sweep [--stale-ms N] --reason TEXT\n"
                    "       | sweep-status ID | breaker-reset --worker W [--dependency D] --reason TEXT\n"
                    "       | claim TX_HASH [--reason TEXT] | webhook ... (zlctl webhook: its commands)\n"
                    "       | below-minimum [--token SYMBOL] [--limit N] | credit-below-minimum ID --reason TEXT\n"
                    "       [--key IDEMPOTENCY_KEY] [--set ZL_ADMIN_URL=...]   (zlctl --help: settings)\n",
            msg);
    return 2;
}

/* ---- below-minimum deposits (common/admin_dust.c) */

static int dust_list(const struct ctl_config *cfg, const char *token, const char *limit)
{
    char query[256];
    char *et = token != NULL ? curl_easy_escape(NULL, token, 0) : NULL;
    snprintf(query, sizeof(query), "limit=%s%s%s", limit != NULL ? limit : "100", et != NULL ? "&token=" : "",
             et != NULL ? et : "");
    curl_free(et);
    return call(cfg, "GET", "/admin/below-minimum", query, NULL, NULL);
}

static int dust_credit(const struct ctl_config *cfg, const char *id, const char *reason, const char *key)
{
    char path[512];
    snprintf(path, sizeof(path), "/admin/below-minimum/%s/credit", id);
    json_t *b = json_pack("{s:s}", "reason", reason);
    int status = call(cfg, "POST", path, NULL, b, key);
    json_decref(b);
    return status;
}

int main(int argc, char **argv)
{
    static struct ctl_config cfg;
    static struct zl_boot boot;
    struct zl_config_section sections[] = {{"zlctl", ctl_settings, sizeof(ctl_settings) / sizeof(ctl_settings[0]), &cfg}};
    char *opts[ARGS_MAX], *pos[ARGS_MAX];
    int nopts = 0, npos = 0;
    const char *reason = NULL, *stage = NULL, *limit = NULL, *stale = NULL, *worker = NULL, *dep = NULL, *key = NULL;
    const char *token = NULL; /* below-minimum --token */
    const char *url = NULL, *secret_file = NULL, *state = NULL;
    bool requeue = false, all = false;
    opts[nopts++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char **dst = NULL;
        if (strcmp(argv[i], "--requeue") == 0) { requeue = true; continue; }
        if (strcmp(argv[i], "--all") == 0) { all = true; continue; }
        if (strcmp(argv[i], "--reason") == 0) dst = &reason;
        else if (strcmp(argv[i], "--stage") == 0) dst = &stage;
        else if (strcmp(argv[i], "--limit") == 0) dst = &limit;
        else if (strcmp(argv[i], "--stale-ms") == 0) dst = &stale;
        else if (strcmp(argv[i], "--worker") == 0) dst = &worker;
        else if (strcmp(argv[i], "--dependency") == 0) dst = &dep;
        else if (strcmp(argv[i], "--key") == 0) dst = &key;
        else if (strcmp(argv[i], "--token") == 0) dst = &token;
        else if (strcmp(argv[i], "--url") == 0) dst = &url;
        else if (strcmp(argv[i], "--secret-file") == 0) dst = &secret_file;
        else if (strcmp(argv[i], "--state") == 0) dst = &state;
        if (dst != NULL) {
            if (i + 1 >= argc)
                return usage("an option needs a value");
            *dst = argv[++i];
            continue;
        }
        if (nopts >= ARGS_MAX - 2 || npos >= ARGS_MAX)
            return usage("too many arguments");
        if (argv[i][0] == '-') {
            opts[nopts++] = argv[i];
            if (i + 1 < argc && (strcmp(argv[i], "--set") == 0 || strcmp(argv[i], "--config") == 0))
                opts[nopts++] = argv[++i];
        } else {
            pos[npos++] = argv[i];
        }
    }
    opts[nopts] = NULL;
    struct zl_boot_opts bopts = {.name = "zlctl", .sections = sections, .nsections = 1, .argc = nopts, .argv = opts};
    int rc = ZL_EXIT_OK;
    if (zl_boot_start(&boot, &bopts, &rc) != 0)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int status = 2;
    const char *cmd = npos > 0 ? pos[0] : "";
    char path[512], query[256];
    if (cfg.token.value == NULL) {
        status = usage("set ZL_ADMIN_TOKEN_FILE to the file holding the admin token");
    } else if (strcmp(cmd, "health") == 0) {
        status = call(&cfg, "GET", "/admin/health", NULL, NULL, NULL);
    } else if (strcmp(cmd, "deposit") == 0 && npos == 2) {
        snprintf(path, sizeof(path), "/admin/deposits/%s", pos[1]);
        status = call(&cfg, "GET", path, NULL, NULL, NULL);
    } else if (strcmp(cmd, "dead") == 0) {
        char *es = stage != NULL ? curl_easy_escape(NULL, stage, 0) : NULL;
        snprintf(query, sizeof(query), "limit=%s%s%s%s", limit != NULL ? limit : "100", es != NULL ? "&stage=" : "",
                 es != NULL ? es : "", all ? "&include_resolved=1" : "");
        curl_free(es);
        status = call(&cfg, "GET", "/admin/dead", query, NULL, NULL);
    } else if (strcmp(cmd, "resolve") == 0 && npos == 2 && reason != NULL) {
        snprintf(path, sizeof(path), "/admin/dead/%s/resolve", pos[1]);
        json_t *b = json_pack("{s:s,s:s}", "action", requeue ? "requeue" : "resolve", "reason", reason);
        status = call(&cfg, "POST", path, NULL, b, key);
        json_decref(b);
    } else if (strcmp(cmd, "sweep") == 0 && reason != NULL) {
        json_t *b = json_pack("{s:s}", "reason", reason);
        if (stale != NULL)
            json_object_set_new(b, "stale_ms", json_integer(strtoll(stale, NULL, 10)));
        status = call(&cfg, "POST", "/admin/sweep", NULL, b, key);
        json_decref(b);
    } else if (strcmp(cmd, "sweep-status") == 0 && npos == 2) {
        snprintf(path, sizeof(path), "/admin/sweep/%s", pos[1]);
        status = call(&cfg, "GET", path, NULL, NULL, NULL);
    } else if (strcmp(cmd, "breaker-reset") == 0 && worker != NULL && reason != NULL) {
        json_t *b = json_pack("{s:s,s:s?,s:s}", "worker", worker, "dependency", dep, "reason", reason);
        status = call(&cfg, "POST", "/admin/breakers/reset", NULL, b, key);
        json_decref(b);
    } else if (strcmp(cmd, "claim") == 0 && npos == 2) {
        json_t *b = json_pack("{s:s,s:s}", "tx_hash", pos[1], "reason",
                              reason != NULL ? reason : "support: customer says they paid in this transaction");
        status = call(&cfg, "POST", "/admin/claims", NULL, b, key);
        json_decref(b);
    } else if (strcmp(cmd, "below-minimum") == 0) {
        status = dust_list(&cfg, token, limit);
    } else if (strcmp(cmd, "credit-below-minimum") == 0 && npos == 2 && reason != NULL) {
        status = dust_credit(&cfg, pos[1], reason, key);
    } else if (strcmp(cmd, "webhook") == 0) {
        struct webhook_args wa = {url, secret_file, state, limit, reason, key};
        status = webhook_cmd(&cfg, pos, npos, &wa);
    } else {
        status = usage("unknown command or missing argument (resolve, sweep, breaker-reset and"
                       " credit-below-minimum need --reason)");
    }
    curl_global_cleanup();
    zl_boot_stop(&boot);
    return status;
}
