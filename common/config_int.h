/* config_int.h: the config loader's internals, shared by config.c (load,
 * resolve, free), config_args.c (the command line) and config_print.c
 * (--help, --help-markdown, the startup dump). Not for other modules: the
 * contract is config.h. */
#ifndef ZL_CONFIG_INT_H
#define ZL_CONFIG_INT_H

#include "config.h"

#define CONFIG_FILE_NAME "ZL_CONFIG_FILE"
#define KAFKA_PROPS_FILE_NAME "ZL_KAFKA_PROPERTIES_FILE"
#define KAFKA_PREFIX "kafka."

enum source_kind { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_SET };

/* The winning raw text of one setting, before it is parsed. */
struct raw {
    const struct zl_setting *setting;
    void *base;   /* the section's struct; NULL for a builtin */
    char *value;  /* owned; NULL: not set by any source (use the default) */
    enum source_kind src;
    int line;     /* SRC_FILE: line number in the config file */
};

struct loader {
    struct raw *raws; /* every section's settings, then the builtins */
    size_t nraws;
    const char *config_path; /* NULL: no config file */
    struct zl_kv_list *kafka;
    char *errstr;
    size_t errstr_size;
};

/* The loader's own settings (ZL_CONFIG_FILE, ZL_KAFKA_PROPERTIES_FILE),
 * listed in --help and the README like any other. */
extern const struct zl_config_section cfg_builtin_section;

/* Formats errstr (when not NULL) and returns -1. */
int cfg_fail(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The raw slot of the setting called name (name_len bytes), or NULL. */
struct raw *cfg_find_raw(struct loader *L, const char *name, size_t name_len);

/* Makes value the winning text of r, from src (line for SRC_FILE).
 * Returns 0, or -1 with L->errstr (out of memory). */
int cfg_set_raw(struct loader *L, struct raw *r, const char *value, size_t value_len,
                enum source_kind src, int line);

/* Appends a librdkafka property; source names it in errors (never the
 * value: it may be a password). Returns 0 or -1 with L->errstr. */
int cfg_kafka_append(struct loader *L, const char *key, size_t key_len, const char *value,
                     size_t value_len, const char *source);

/* Command line, first pass: syntax errors, --help, and the last --config.
 * Returns 0, 1 for --help, 2 for --help-markdown, -1 for an error (errstr). */
int cfg_scan_args(int argc, char **argv, const char **config_path, char *errstr, size_t errstr_size);

/* Second pass: applies every --set (x false) or -X (x true) in order. argv
 * was checked by cfg_scan_args(). Returns 0 or -1 with L->errstr. */
int cfg_apply_args(struct loader *L, int argc, char **argv, bool x);

/* The program's name from argv[0] without its directory ("zl" if none). */
const char *cfg_prog_name(int argc, char **argv);

/* Writes an ENUM's choices as "a, b, c" into buf (cut to size); returns buf. */
const char *cfg_choices_text(const char *const *choices, char *buf, size_t size);

static inline void *cfg_field_ptr(const struct zl_config_section *sec, const struct zl_setting *st)
{
    return (char *)sec->base + st->offset;
}

/* An INT setting with a range (min and max not both 0). */
static inline bool cfg_int_bounded(const struct zl_setting *st)
{
    return !(st->min == 0 && st->max == 0);
}

#endif /* ZL_CONFIG_INT_H */
