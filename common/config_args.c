/* config_args.c: the config loader's command line (--config, --set, -X,
 * --help, --help-markdown); the contract is in config.h. */
#include "config_int.h"

#include <stdbool.h>
#include <string.h>

/* ---- command line --------------------------------------------------------- */

enum opt_kind { OPT_END, OPT_HELP, OPT_HELP_MARKDOWN, OPT_CONFIG, OPT_SET, OPT_X, OPT_ERROR };

/* Matches "--name VALUE" or "--name=VALUE" (or "-X VALUE" / "-XVALUE" when
 * attached is true) at argv[*i]; advances *i past what it used. When the
 * option matches but its value is missing, returns true with *value NULL. */
static bool match_opt(int argc, char **argv, int *i, const char *name,
                      bool attached, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '\0') {
        if (*i + 1 >= argc || argv[*i + 1] == NULL) {
            *value = NULL;
            return true;
        }
        *value = argv[*i + 1];
        *i += 2;
        return true;
    }
    if (a[n] == '=' && !attached) {
        *value = a + n + 1;
        *i += 1;
        return true;
    }
    if (attached) {
        *value = a + n;
        *i += 1;
        return true;
    }
    return false;
}

/* Reads the next option from argv[*i]. On OPT_ERROR, errstr says why. */
static enum opt_kind next_opt(int argc, char **argv, int *i, const char **value,
                              char *errstr, size_t errstr_size)
{
    if (*i >= argc || argv[*i] == NULL)
        return OPT_END;
    const char *a = argv[*i];
    *value = NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        *i += 1;
        return OPT_HELP;
    }
    if (strcmp(a, "--help-markdown") == 0) {
        *i += 1;
        return OPT_HELP_MARKDOWN;
    }
    if (match_opt(argc, argv, i, "--config", false, value)) {
        if (*value == NULL || (*value)[0] == '\0') {
            cfg_fail(errstr, errstr_size, "--config needs a path: --config PATH");
            return OPT_ERROR;
        }
        return OPT_CONFIG;
    }
    if (match_opt(argc, argv, i, "--set", false, value)) {
        if (*value == NULL || strchr(*value, '=') == NULL || (*value)[0] == '=') {
            cfg_fail(errstr, errstr_size, "--set expects ZL_NAME=value, got \"%s\"",
                 *value == NULL ? "" : *value);
            return OPT_ERROR;
        }
        return OPT_SET;
    }
    if (match_opt(argc, argv, i, "-X", true, value)) {
        if (*value == NULL || strchr(*value, '=') == NULL || (*value)[0] == '=') {
            /* Only the part before '=' could be printed safely; a value
             * without '=' might be a mistyped password, so print nothing. */
            cfg_fail(errstr, errstr_size, "-X expects property=value");
            return OPT_ERROR;
        }
        return OPT_X;
    }
    if (strcmp(a, "--") == 0) {
        if (*i + 1 < argc)
            cfg_fail(errstr, errstr_size, "unexpected argument \"%s\": see --help",
                 argv[*i + 1]);
        else
            cfg_fail(errstr, errstr_size, "unexpected \"--\" at the end: see --help");
        return OPT_ERROR;
    }
    if (a[0] == '-')
        cfg_fail(errstr, errstr_size, "unknown option \"%s\": see --help", a);
    else
        cfg_fail(errstr, errstr_size, "unexpected argument \"%s\": see --help", a);
    return OPT_ERROR;
}

const char *cfg_prog_name(int argc, char **argv)
{
    if (argc < 1 || argv == NULL || argv[0] == NULL)
        return "zl";
    const char *slash = strrchr(argv[0], '/');
    return slash != NULL ? slash + 1 : argv[0];
}

int cfg_scan_args(int argc, char **argv, const char **config_path,
                     char *errstr, size_t errstr_size)
{
    int i = 1;
    for (;;) {
        const char *value;
        enum opt_kind k = next_opt(argc, argv, &i, &value, errstr, errstr_size);
        if (k == OPT_END)
            return 0;
        if (k == OPT_ERROR)
            return -1;
        if (k == OPT_HELP)
            return 1;
        if (k == OPT_HELP_MARKDOWN)
            return 2;
        if (k == OPT_CONFIG)
            *config_path = value;
    }
}

int cfg_apply_args(struct loader *L, int argc, char **argv, bool x)
{
    enum opt_kind want = x ? OPT_X : OPT_SET;
    int i = 1;
    for (;;) {
        const char *value;
        enum opt_kind k = next_opt(argc, argv, &i, &value, NULL, 0);
        if (k == OPT_END || k == OPT_ERROR || k == OPT_HELP || k == OPT_HELP_MARKDOWN)
            return 0;
        if (k != want)
            continue;
        const char *eq = strchr(value, '=');
        size_t key_len = (size_t)(eq - value);
        if (k == OPT_X) {
            if (cfg_kafka_append(L, value, key_len, eq + 1, strlen(eq + 1), "-X") != 0)
                return -1;
            continue;
        }
        if (key_len == strlen(CONFIG_FILE_NAME) &&
            memcmp(value, CONFIG_FILE_NAME, key_len) == 0)
            return cfg_fail(L->errstr, L->errstr_size,
                        "%s cannot be set with --set: use --config PATH",
                        CONFIG_FILE_NAME);
        struct raw *r = cfg_find_raw(L, value, key_len);
        if (r == NULL)
            return cfg_fail(L->errstr, L->errstr_size,
                        "unknown setting %.*s (from --set): see --help",
                        (int)key_len, value);
        if (cfg_set_raw(L, r, eq + 1, strlen(eq + 1), SRC_SET, 0) != 0)
            return -1;
    }
}
