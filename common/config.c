/* config.c: ZL_* settings from defaults, a file, the environment and the
 * command line (see config.h for the contract). */
#include "config.h"
#include "config_int.h"

#include "log.h"
#include "zl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const struct zl_cfg_type zl_cfg_type_str = {ZL_CFG_KIND_STR, NULL};
const struct zl_cfg_type zl_cfg_type_int = {ZL_CFG_KIND_INT, NULL};
const struct zl_cfg_type zl_cfg_type_bool = {ZL_CFG_KIND_BOOL, NULL};
const struct zl_cfg_type zl_cfg_type_secret_file = {ZL_CFG_KIND_SECRET_FILE, NULL};

/* Settings of the loader itself: listed in --help and the README like any
 * other, but stored by the loader rather than in a caller's struct. */
static const struct zl_setting builtin_settings[] = {
    {CONFIG_FILE_NAME, ZL_CFG_STR, "",
     "Config file of ZL_NAME=value and kafka.<property>=value lines. "
     "Environment only; --config PATH overrides it.",
     0, 0, 0},
    {KAFKA_PROPS_FILE_NAME, ZL_CFG_STR, "",
     "File of librdkafka property=value lines for secrets such as "
     "sasl.password; must not be readable by group or others (chmod 600).",
     0, 0, 0},
};
#define BUILTIN_COUNT (sizeof(builtin_settings) / sizeof(builtin_settings[0]))
const struct zl_config_section cfg_builtin_section = {
    "Configuration sources", builtin_settings, BUILTIN_COUNT, NULL};

/* ---- errors ------------------------------------------------------------- */

int cfg_fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr != NULL && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- where a value came from -------------------------------------------- */

/* "(from environment)" etc., for the end of an error message. */
static const char *describe_source(const struct loader *L, const struct raw *r,
                                   char *buf, size_t size)
{
    switch (r->value == NULL ? SRC_DEFAULT : r->src) {
    case SRC_FILE:
        snprintf(buf, size, "config file %s:%d", L->config_path, r->line);
        break;
    case SRC_ENV:
        snprintf(buf, size, "environment");
        break;
    case SRC_SET:
        snprintf(buf, size, "--set");
        break;
    case SRC_DEFAULT:
    default:
        snprintf(buf, size, "the default");
        break;
    }
    return buf;
}

struct raw *cfg_find_raw(struct loader *L, const char *name, size_t name_len)
{
    for (size_t i = 0; i < L->nraws; i++) {
        const char *n = L->raws[i].setting->name;
        if (strlen(n) == name_len && memcmp(n, name, name_len) == 0)
            return &L->raws[i];
    }
    return NULL;
}

int cfg_set_raw(struct loader *L, struct raw *r, const char *value, size_t value_len,
                enum source_kind src, int line)
{
    char *copy = strndup(value, value_len);
    if (copy == NULL)
        return cfg_fail(L->errstr, L->errstr_size, "%s: out of memory",
                    r->setting->name);
    free(r->value);
    r->value = copy;
    r->src = src;
    r->line = line;
    return 0;
}

/* ---- value parsing ------------------------------------------------------ */

/* Whole-string decimal int64: no blanks, no trailing junk. Returns 0, -1 for
 * not a number, -2 for out of the int64 range. */
static int parse_int(const char *s, int64_t *out)
{
    if (s[0] == '\0' || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return -1;
    if (errno == ERANGE)
        return -2;
    *out = (int64_t)v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Parses and range-checks an INT value; the error names the setting, the
 * value and the source. */
static int check_int(const struct zl_setting *st, const char *v, int64_t *out,
                     const char *source, char *errstr, size_t errstr_size)
{
    int rc = parse_int(v, out);
    if (rc == -2)
        return cfg_fail(errstr, errstr_size,
                    "%s: \"%s\" is out of the 64-bit integer range (from %s)",
                    st->name, v, source);
    if (rc != 0)
        return cfg_fail(errstr, errstr_size, "%s: \"%s\" is not an integer (from %s)",
                    st->name, v, source);
    if (cfg_int_bounded(st) && *out < st->min)
        return cfg_fail(errstr, errstr_size,
                    "%s: %" PRId64 " is below the minimum %" PRId64 " (from %s)",
                    st->name, *out, st->min, source);
    if (cfg_int_bounded(st) && *out > st->max)
        return cfg_fail(errstr, errstr_size,
                    "%s: %" PRId64 " is above the maximum %" PRId64 " (from %s)",
                    st->name, *out, st->max, source);
    return 0;
}

int zl_cfg_choice_index(const char *const *choices, const char *name)
{
    for (int i = 0; choices != NULL && name != NULL && choices[i] != NULL; i++)
        if (strcasecmp(choices[i], name) == 0)
            return i;
    return -1;
}

const char *cfg_choices_text(const char *const *choices, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; choices[i] != NULL && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i == 0 ? "" : ", ", choices[i]);
    return buf;
}

/* Stores the index of an ENUM value; the error names the setting, the
 * value, every choice and the source. */
static int check_choice(const struct zl_setting *st, const char *v, int *out,
                        const char *source, char *errstr, size_t errstr_size)
{
    int i = zl_cfg_choice_index(st->type->choices, v);
    if (i < 0) {
        char list[ZL_ERRSTR_SIZE / 2];
        return cfg_fail(errstr, errstr_size, "%s: \"%s\" is not one of %s (from %s)",
                        st->name, v, cfg_choices_text(st->type->choices, list, sizeof(list)),
                        source);
    }
    *out = i;
    return 0;
}

/* ---- files -------------------------------------------------------------- */

/* Reads a whole regular file of at most max_bytes into a NUL-terminated
 * malloc'd buffer (*out, owned by the caller). With must_be_private, refuses
 * a file that group or others may access: it holds a secret. Checks are made
 * on the opened descriptor, so the file cannot be swapped in between.
 * what names the setting or role in errors; source is the "(from ...)". */
static int read_file_limited(const char *path, size_t max_bytes,
                             bool must_be_private, const char *what,
                             const char *source, char **out, size_t *out_len,
                             char *errstr, size_t errstr_size)
{
    int rc = -1;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cfg_fail(errstr, errstr_size, "%s: cannot open %s: %s (from %s)",
                    what, path, strerror(errno), source);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        cfg_fail(errstr, errstr_size, "%s: cannot stat %s: %s (from %s)", what,
             path, strerror(errno), source);
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        cfg_fail(errstr, errstr_size, "%s: %s is not a regular file (from %s)",
             what, path, source);
        goto out_close;
    }
    if (must_be_private && (st.st_mode & 077) != 0) {
        cfg_fail(errstr, errstr_size,
             "%s: %s is %s by group or others (mode %04o): chmod 600 it",
             what, path, (st.st_mode & 044) ? "readable" : "accessible",
             (unsigned)(st.st_mode & 07777));
        goto out_close;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
        cfg_fail(errstr, errstr_size, "%s: %s is larger than %zu bytes (from %s)",
             what, path, max_bytes, source);
        goto out_close;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (buf == NULL) {
        cfg_fail(errstr, errstr_size, "%s: out of memory reading %s", what, path);
        goto out_close;
    }
    size_t got = 0;
    /* Bounded by size: a file that grew after fstat() is read up to the
     * size it had; one that shrank ends at EOF. */
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cfg_fail(errstr, errstr_size, "%s: cannot read %s: %s (from %s)", what,
                 path, strerror(errno), source);
            goto out_free_buffer;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *out_len = got;
    buf = NULL; /* now owned by the caller */
    rc = 0;

out_free_buffer:
    if (buf != NULL) {
        explicit_bzero(buf, size);
        free(buf);
    }
out_close:
    close(fd);
    return rc;
}

static void wipe_free(char *s, size_t len)
{
    if (s == NULL)
        return;
    explicit_bzero(s, len);
    free(s);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One "name=value" line of a config or properties file, trimmed. */
struct line_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

enum line_kind { LINE_SKIP, LINE_KV, LINE_BAD };

static enum line_kind split_line(const char *line, size_t len, struct line_kv *kv)
{
    while (len > 0 && is_blank(line[0])) {
        line++;
        len--;
    }
    while (len > 0 && is_blank(line[len - 1]))
        len--;
    if (len == 0 || line[0] == '#')
        return LINE_SKIP;
    const char *eq = memchr(line, '=', len);
    if (eq == NULL)
        return LINE_BAD;
    size_t key_len = (size_t)(eq - line);
    while (key_len > 0 && is_blank(line[key_len - 1]))
        key_len--;
    const char *value = eq + 1;
    size_t value_len = len - (size_t)(value - line);
    while (value_len > 0 && is_blank(value[0])) {
        value++;
        value_len--;
    }
    if (key_len == 0)
        return LINE_BAD;
    kv->key = line;
    kv->key_len = key_len;
    kv->value = value;
    kv->value_len = value_len;
    return LINE_KV;
}

/* Calls fn for each line of buf; stops at the first error. Lines are
 * bounded by ZL_CONFIG_LINE_BYTES_MAX, the count by the file size limit. */
typedef int (*line_fn)(struct loader *L, const char *line, size_t len,
                       int line_no, void *arg);

static int for_each_line(struct loader *L, const char *buf, size_t len,
                         const char *what, const char *path, line_fn fn,
                         void *arg)
{
    int line_no = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *start = buf + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t line_len = nl != NULL ? (size_t)(nl - start) : len - pos;
        line_no++;
        if (line_len > ZL_CONFIG_LINE_BYTES_MAX)
            return cfg_fail(L->errstr, L->errstr_size,
                        "%s %s:%d: line longer than %d bytes", what, path,
                        line_no, ZL_CONFIG_LINE_BYTES_MAX);
        if (memchr(start, '\0', line_len) != NULL)
            return cfg_fail(L->errstr, L->errstr_size,
                        "%s %s:%d: contains a NUL byte", what, path, line_no);
        if (fn(L, start, line_len, line_no, arg) != 0)
            return -1;
        pos += line_len + (nl != NULL ? 1 : 0);
    }
    return 0;
}

int cfg_kafka_append(struct loader *L, const char *key, size_t key_len, const char *value,
                     size_t value_len, const char *source)
{
    if (L->kafka == NULL)
        return cfg_fail(L->errstr, L->errstr_size,
                    "%.*s: this program takes no librdkafka properties (from %s)",
                    (int)key_len, key, source);
    if (L->kafka->count >= ZL_KV_MAX)
        return cfg_fail(L->errstr, L->errstr_size,
                    "%.*s: more than %d librdkafka properties (from %s)",
                    (int)key_len, key, ZL_KV_MAX, source);
    char *k = strndup(key, key_len);
    char *v = strndup(value, value_len);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return cfg_fail(L->errstr, L->errstr_size, "%.*s: out of memory",
                    (int)key_len, key);
    }
    struct zl_kv *item = &L->kafka->items[L->kafka->count++];
    item->key = k;
    item->value = v;
    return 0;
}

/* ---- config file ---------------------------------------------------------- */

static int config_file_line(struct loader *L, const char *line, size_t len,
                            int line_no, void *arg)
{
    (void)arg;
    struct line_kv kv;
    enum line_kind kind = split_line(line, len, &kv);
    if (kind == LINE_SKIP)
        return 0;
    if (kind == LINE_BAD)
        return cfg_fail(L->errstr, L->errstr_size,
                    "config file %s:%d: expected NAME=value", L->config_path,
                    line_no);
    size_t prefix_len = strlen(KAFKA_PREFIX);
    if (kv.key_len >= prefix_len && memcmp(kv.key, KAFKA_PREFIX, prefix_len) == 0) {
        if (kv.key_len == prefix_len)
            return cfg_fail(L->errstr, L->errstr_size,
                        "config file %s:%d: expected kafka.<property>=value",
                        L->config_path, line_no);
        char source[ZL_ERRSTR_SIZE];
        snprintf(source, sizeof(source), "config file %s:%d", L->config_path,
                 line_no);
        return cfg_kafka_append(L, kv.key + prefix_len, kv.key_len - prefix_len,
                            kv.value, kv.value_len, source);
    }
    if (kv.key_len == strlen(CONFIG_FILE_NAME) &&
        memcmp(kv.key, CONFIG_FILE_NAME, kv.key_len) == 0)
        return cfg_fail(L->errstr, L->errstr_size,
                    "config file %s:%d: %s cannot be set in a config file: set "
                    "it in the environment or use --config PATH",
                    L->config_path, line_no, CONFIG_FILE_NAME);
    struct raw *r = cfg_find_raw(L, kv.key, kv.key_len);
    if (r == NULL)
        return cfg_fail(L->errstr, L->errstr_size,
                    "unknown setting %.*s (line %d of %s): see --help",
                    (int)kv.key_len, kv.key, line_no, L->config_path);
    return cfg_set_raw(L, r, kv.value, kv.value_len, SRC_FILE, line_no);
}

static int load_config_file(struct loader *L, const char *source)
{
    char *buf = NULL;
    size_t len = 0;
    if (read_file_limited(L->config_path, ZL_CONFIG_FILE_BYTES_MAX,
                          false /* must_be_private */, "config file", source,
                          &buf, &len, L->errstr, L->errstr_size) != 0)
        return -1;
    int rc = for_each_line(L, buf, len, "config file", L->config_path,
                           config_file_line, NULL);
    /* kafka.* lines may hold passwords. */
    wipe_free(buf, len);
    return rc;
}

/* ---- librdkafka properties file --------------------------------------- */

static int kafka_props_line(struct loader *L, const char *line, size_t len,
                            int line_no, void *arg)
{
    const char *path = arg;
    struct line_kv kv;
    enum line_kind kind = split_line(line, len, &kv);
    if (kind == LINE_SKIP)
        return 0;
    if (kind == LINE_BAD)
        return cfg_fail(L->errstr, L->errstr_size,
                    "%s %s:%d: expected property=value", KAFKA_PROPS_FILE_NAME,
                    path, line_no);
    char source[ZL_ERRSTR_SIZE];
    snprintf(source, sizeof(source), "%s %s:%d", KAFKA_PROPS_FILE_NAME, path,
             line_no);
    return cfg_kafka_append(L, kv.key, kv.key_len, kv.value, kv.value_len, source);
}

static int load_kafka_props_file(struct loader *L, const struct raw *r)
{
    char source[ZL_ERRSTR_SIZE];
    describe_source(L, r, source, sizeof(source));
    char *buf = NULL;
    size_t len = 0;
    if (read_file_limited(r->value, ZL_CONFIG_FILE_BYTES_MAX,
                          true /* must_be_private */, KAFKA_PROPS_FILE_NAME,
                          source, &buf, &len, L->errstr, L->errstr_size) != 0)
        return -1;
    int rc = for_each_line(L, buf, len, KAFKA_PROPS_FILE_NAME, r->value,
                           kafka_props_line, r->value);
    wipe_free(buf, len);
    return rc;
}

/* ---- table ---------------------------------------------------------------- */

/* Puts every field in its empty state, so that a failed load, and a free
 * after it, never see garbage. */
static void clear_storage(struct zl_config_section *sections, size_t nsections)
{
    for (size_t s = 0; s < nsections; s++) {
        const struct zl_config_section *sec = &sections[s];
        if (sec->base == NULL || sec->settings == NULL)
            continue;
        for (size_t i = 0; i < sec->count; i++) {
            const struct zl_setting *st = &sec->settings[i];
            void *p = cfg_field_ptr(sec, st);
            switch (st->type->kind) {
            case ZL_CFG_KIND_STR:
                *(char **)p = NULL;
                break;
            case ZL_CFG_KIND_INT:
                *(int64_t *)p = 0;
                break;
            case ZL_CFG_KIND_BOOL:
                *(bool *)p = false;
                break;
            case ZL_CFG_KIND_ENUM:
                *(int *)p = 0;
                break;
            case ZL_CFG_KIND_SECRET_FILE:
                ((struct zl_secret *)p)->path = NULL;
                ((struct zl_secret *)p)->value = NULL;
                break;
            }
        }
    }
}

static bool valid_name(const char *name)
{
    if (name == NULL || strncmp(name, "ZL_", 3) != 0 || name[3] == '\0')
        return false;
    for (const char *c = name; *c != '\0'; c++) {
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    }
    return true;
}

static int check_setting(const struct zl_config_section *sec,
                         const struct zl_setting *st, char *errstr,
                         size_t errstr_size)
{
    if (!valid_name(st->name))
        return cfg_fail(errstr, errstr_size,
                    "settings table: section \"%s\": name \"%s\" is not "
                    "ZL_ followed by A-Z, 0-9 or _",
                    sec->title, st->name ? st->name : "(null)");
    for (size_t b = 0; b < BUILTIN_COUNT; b++) {
        if (strcmp(st->name, builtin_settings[b].name) == 0)
            return cfg_fail(errstr, errstr_size,
                        "settings table: %s is reserved by the loader", st->name);
    }
    if (st->help == NULL || st->help[0] == '\0')
        return cfg_fail(errstr, errstr_size, "settings table: %s has no help text",
                    st->name);
    if (st->type == NULL || st->type->kind > ZL_CFG_KIND_ENUM)
        return cfg_fail(errstr, errstr_size, "settings table: %s has no known type",
                    st->name);
    if (st->type->kind == ZL_CFG_KIND_ENUM &&
        (st->type->choices == NULL || st->type->choices[0] == NULL))
        return cfg_fail(errstr, errstr_size, "settings table: %s has no choices",
                    st->name);
    if (st->type == ZL_CFG_INT && st->min > st->max)
        return cfg_fail(errstr, errstr_size,
                    "settings table: %s has min %" PRId64 " > max %" PRId64,
                    st->name, st->min, st->max);
    if (st->default_value == NULL)
        return 0;
    if (st->type == ZL_CFG_INT) {
        int64_t v;
        char msg[ZL_ERRSTR_SIZE];
        if (check_int(st, st->default_value, &v, "the default", msg, sizeof(msg)) != 0)
            return cfg_fail(errstr, errstr_size, "settings table: %s", msg);
    }
    if (st->type == ZL_CFG_BOOL) {
        bool v;
        if (parse_bool(st->default_value, &v) != 0)
            return cfg_fail(errstr, errstr_size,
                        "settings table: %s: default \"%s\" is not a boolean",
                        st->name, st->default_value);
    }
    if (st->type->kind == ZL_CFG_KIND_ENUM &&
        zl_cfg_choice_index(st->type->choices, st->default_value) < 0)
        return cfg_fail(errstr, errstr_size,
                    "settings table: %s: default \"%s\" is not one of its choices",
                    st->name, st->default_value);
    return 0;
}

/* Checks the tables (programmer errors, reported rather than asserted so a
 * test can see them) and counts the settings. */
static int check_tables(const struct zl_config_section *sections,
                        size_t nsections, size_t *total, char *errstr,
                        size_t errstr_size)
{
    *total = 0;
    for (size_t s = 0; s < nsections; s++) {
        const struct zl_config_section *sec = &sections[s];
        if (sec->title == NULL)
            return cfg_fail(errstr, errstr_size, "settings table: section %zu has no title", s);
        if (sec->count > 0 && (sec->settings == NULL || sec->base == NULL))
            return cfg_fail(errstr, errstr_size,
                        "settings table: section \"%s\" has no settings or no base",
                        sec->title);
        for (size_t i = 0; i < sec->count; i++) {
            if (check_setting(sec, &sec->settings[i], errstr, errstr_size) != 0)
                return -1;
            /* Names are unique across sections: earlier ones only. */
            for (size_t s2 = 0; s2 <= s; s2++) {
                size_t end = s2 == s ? i : sections[s2].count;
                for (size_t j = 0; j < end; j++) {
                    if (strcmp(sections[s2].settings[j].name, sec->settings[i].name) == 0)
                        return cfg_fail(errstr, errstr_size,
                                    "settings table: %s is defined twice",
                                    sec->settings[i].name);
                }
            }
        }
        *total += sec->count;
    }
    return 0;
}

/* ---- resolving ------------------------------------------------------------ */

static int read_secret(struct loader *L, const struct raw *r, const char *path,
                       const char *source, struct zl_secret *out)
{
    const char *name = r->setting->name;
    char *buf = NULL;
    size_t len = 0;
    if (read_file_limited(path, ZL_SECRET_BYTES_MAX, true /* must_be_private */,
                          name, source, &buf, &len, L->errstr,
                          L->errstr_size) != 0)
        return -1;
    size_t full_len = len;
    if (memchr(buf, '\0', len) != NULL) {
        wipe_free(buf, full_len);
        return cfg_fail(L->errstr, L->errstr_size,
                    "%s: %s contains a NUL byte (from %s)", name, path, source);
    }
    /* Editors and `echo` add a final newline that is not part of a key. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (len == 0) {
        wipe_free(buf, full_len);
        return cfg_fail(L->errstr, L->errstr_size, "%s: %s is empty (from %s)",
                    name, path, source);
    }
    char *path_copy = strdup(path);
    if (path_copy == NULL) {
        wipe_free(buf, full_len);
        return cfg_fail(L->errstr, L->errstr_size, "%s: out of memory", name);
    }
    out->path = path_copy;
    out->value = buf; /* now owned by the config */
    return 0;
}

/* Parses the winning value of one setting into its field. */
static int resolve(struct loader *L, const struct raw *r)
{
    const struct zl_setting *st = r->setting;
    const char *v = r->value != NULL ? r->value : st->default_value;
    char source[ZL_ERRSTR_SIZE];
    describe_source(L, r, source, sizeof(source));
    if (v == NULL)
        return cfg_fail(L->errstr, L->errstr_size,
                    "%s is required: set it in the environment, the config "
                    "file or with --set %s=value",
                    st->name, st->name);
    bool required = st->default_value == NULL;
    void *p = (char *)r->base + st->offset;

    switch (st->type->kind) {
    case ZL_CFG_KIND_STR: {
        if (required && v[0] == '\0')
            return cfg_fail(L->errstr, L->errstr_size,
                        "%s is required but empty (from %s)", st->name, source);
        char *copy = strdup(v);
        if (copy == NULL)
            return cfg_fail(L->errstr, L->errstr_size, "%s: out of memory", st->name);
        *(char **)p = copy;
        return 0;
    }
    case ZL_CFG_KIND_INT:
        return check_int(st, v, (int64_t *)p, source, L->errstr, L->errstr_size);
    case ZL_CFG_KIND_ENUM:
        return check_choice(st, v, (int *)p, source, L->errstr, L->errstr_size);
    case ZL_CFG_KIND_BOOL:
        if (parse_bool(v, (bool *)p) != 0)
            return cfg_fail(L->errstr, L->errstr_size,
                        "%s: \"%s\" is not a boolean: use true or false (from %s)",
                        st->name, v, source);
        return 0;
    case ZL_CFG_KIND_SECRET_FILE:
        if (v[0] == '\0') {
            if (required)
                return cfg_fail(L->errstr, L->errstr_size,
                            "%s is required but empty: give the path of a "
                            "file holding the secret (from %s)",
                            st->name, source);
            return 0; /* unset: the stage decides whether it needs it */
        }
        return read_secret(L, r, v, source, (struct zl_secret *)p);
    }
    return cfg_fail(L->errstr, L->errstr_size, "%s: unknown type", st->name);
}

/* ---- load --------------------------------------------------------------- */

static void free_raws(struct loader *L)
{
    if (L->raws == NULL)
        return;
    for (size_t i = 0; i < L->nraws; i++)
        free(L->raws[i].value);
    free(L->raws);
    L->raws = NULL;
}

static int build_raws(struct loader *L, struct zl_config_section *sections,
                      size_t nsections, size_t total)
{
    L->nraws = total + BUILTIN_COUNT;
    L->raws = calloc(L->nraws, sizeof(L->raws[0]));
    if (L->raws == NULL)
        return cfg_fail(L->errstr, L->errstr_size, "out of memory loading the config");
    size_t k = 0;
    for (size_t s = 0; s < nsections; s++) {
        for (size_t i = 0; i < sections[s].count; i++) {
            L->raws[k].setting = &sections[s].settings[i];
            L->raws[k].base = sections[s].base;
            k++;
        }
    }
    for (size_t b = 0; b < BUILTIN_COUNT; b++)
        L->raws[k++].setting = &builtin_settings[b];
    ZL_ASSERT(k == L->nraws);
    return 0;
}

static int load_env(struct loader *L)
{
    for (size_t i = 0; i < L->nraws; i++) {
        const char *name = L->raws[i].setting->name;
        if (strcmp(name, CONFIG_FILE_NAME) == 0)
            continue; /* already used to find the config file */
        const char *v = getenv(name);
        if (v != NULL && cfg_set_raw(L, &L->raws[i], v, strlen(v), SRC_ENV, 0) != 0)
            return -1;
    }
    return 0;
}

static int load_sources(struct loader *L, int argc, char **argv,
                        const char *cli_config)
{
    const char *env_config = getenv(CONFIG_FILE_NAME);
    if (cli_config != NULL) {
        L->config_path = cli_config;
        if (load_config_file(L, "--config") != 0)
            return -1;
    } else if (env_config != NULL && env_config[0] != '\0') {
        L->config_path = env_config;
        if (load_config_file(L, "environment " CONFIG_FILE_NAME) != 0)
            return -1;
    }
    if (load_env(L) != 0)
        return -1;
    if (cfg_apply_args(L, argc, argv, false /* --set */) != 0)
        return -1;
    const struct raw *props = cfg_find_raw(L, KAFKA_PROPS_FILE_NAME,
                                       strlen(KAFKA_PROPS_FILE_NAME));
    ZL_ASSERT(props != NULL);
    if (L->kafka != NULL && props->value != NULL && props->value[0] != '\0' &&
        load_kafka_props_file(L, props) != 0)
        return -1;
    if (cfg_apply_args(L, argc, argv, true /* -X */) != 0)
        return -1;
    for (size_t i = 0; i < L->nraws; i++) {
        if (L->raws[i].base == NULL)
            continue; /* builtin: used above */
        if (resolve(L, &L->raws[i]) != 0)
            return -1;
    }
    return 0;
}

int zl_config_load(struct zl_config_section *sections, size_t nsections,
                   int argc, char **argv, struct zl_kv_list *kafka_props,
                   char *errstr, size_t errstr_size)
{
    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    clear_storage(sections, nsections);
    if (kafka_props != NULL)
        kafka_props->count = 0;

    size_t total = 0;
    if (check_tables(sections, nsections, &total, errstr, errstr_size) != 0)
        return -1;
    const char *cli_config = NULL;
    int rc = cfg_scan_args(argc, argv, &cli_config, errstr, errstr_size);
    if (rc == 1) {
        zl_config_print_help(stdout, cfg_prog_name(argc, argv), sections, nsections);
        fflush(stdout);
        return 1;
    }
    if (rc == 2) {
        /* The README's configuration tables are generated from this. */
        zl_config_print_markdown(stdout, sections, nsections);
        fflush(stdout);
        return 1;
    }
    if (rc != 0)
        return -1;

    struct loader L = {
        .kafka = kafka_props, .errstr = errstr, .errstr_size = errstr_size};
    rc = build_raws(&L, sections, nsections, total);
    if (rc == 0)
        rc = load_sources(&L, argc, argv, cli_config);
    free_raws(&L);
    if (rc != 0) {
        zl_config_free(sections, nsections, kafka_props);
        return -1;
    }
    return 0;
}

void zl_config_free(struct zl_config_section *sections, size_t nsections,
                    struct zl_kv_list *kafka_props)
{
    for (size_t s = 0; s < nsections; s++) {
        const struct zl_config_section *sec = &sections[s];
        if (sec->base == NULL || sec->settings == NULL)
            continue;
        for (size_t i = 0; i < sec->count; i++) {
            const struct zl_setting *st = &sec->settings[i];
            void *p = cfg_field_ptr(sec, st);
            if (st->type == ZL_CFG_STR) {
                free(*(char **)p);
                *(char **)p = NULL;
            } else if (st->type == ZL_CFG_SECRET_FILE) {
                struct zl_secret *sec_val = p;
                if (sec_val->value != NULL)
                    wipe_free(sec_val->value, strlen(sec_val->value));
                free(sec_val->path);
                sec_val->value = NULL;
                sec_val->path = NULL;
            }
        }
    }
    if (kafka_props == NULL)
        return;
    for (size_t i = 0; i < kafka_props->count && i < ZL_KV_MAX; i++) {
        struct zl_kv *kv = &kafka_props->items[i];
        free(kv->key);
        if (kv->value != NULL)
            wipe_free(kv->value, strlen(kv->value));
        kv->key = NULL;
        kv->value = NULL;
    }
    kafka_props->count = 0;
}

