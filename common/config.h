/* config.h: every ZL_* setting of every worker and tool, from one
 * declarative table (like PgBouncer's), which is also the documentation:
 * --help and the README's configuration table are printed from it.
 *
 * Sources, lowest to highest precedence:
 *   1. the table's defaults;
 *   2. a config file: path from `--config PATH`, else env ZL_CONFIG_FILE.
 *      Lines `ZL_NAME=value`, `kafka.<librdkafka.property>=value`, `#`
 *      comments and blank lines; whitespace around names and values is
 *      trimmed, quotes are not special (the value is taken literally);
 *   3. environment variables ZL_NAME;
 *   4. command line `--set ZL_NAME=value` (repeatable; the last one wins).
 * librdkafka properties, collected in this order into a zl_kv_list (apply
 * them in order: a later entry for the same property wins):
 *   a. `kafka.<property>=value` lines of the config file;
 *   b. the file named by ZL_KAFKA_PROPERTIES_FILE (`property=value` lines,
 *      `#` comments): for SASL/SSL passwords, so it must not be readable by
 *      group or others. ZL_KAFKA_PROPERTIES_FILE itself is set like any
 *      setting (config file, environment, --set); ZL_CONFIG_FILE only from
 *      the environment;
 *   c. command line `-X property=value` (as kcat's -X).
 *
 * A name in the config file or --set that is not in the tables is an error
 * (a typo must not silently fall back to a default). Unknown ZL_* environment
 * variables are ignored, because one environment is often shared by several
 * workers that each read only their own settings.
 *
 * Secrets are never values: a ZL_CFG_SECRET_FILE setting holds a path, and
 * the file's content is read at load. No message, dump or help text ever
 * contains a secret's content. librdkafka properties may hold passwords too
 * (sasl.password): never log a zl_kv_list's values.
 *
 * @locality main thread, at startup, before other threads exist: loading
 * reads the environment (getenv) and uses strerror().
 */
#ifndef ZL_CONFIG_H
#define ZL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most librdkafka properties a program takes: far more than a real
 * deployment sets (kcat users rarely pass a dozen). */
#define ZL_KV_MAX 128
/* Largest secret file read (a PEM key or a token is a few KiB). */
#define ZL_SECRET_BYTES_MAX (64 * 1024)
/* Largest config file and librdkafka properties file read. */
#define ZL_CONFIG_FILE_BYTES_MAX (1024 * 1024)
/* Longest line of either file (a value can be a list of RPC URLs). */
#define ZL_CONFIG_LINE_BYTES_MAX 8192

/* What kind of value a setting holds, and so the C type of its field. */
typedef enum zl_cfg_kind {
    ZL_CFG_KIND_STR,         /* storage: char * (owned by the config) */
    ZL_CFG_KIND_INT,         /* storage: int64_t, checked against min..max */
    ZL_CFG_KIND_BOOL,        /* storage: bool; true/false/1/0/yes/no/on/off */
    ZL_CFG_KIND_SECRET_FILE, /* storage: struct zl_secret */
    ZL_CFG_KIND_ENUM,        /* storage: int, the index of the chosen name */
} zl_cfg_kind;

/* A setting's type, as PgBouncer's CF_LOOKUP: a kind plus, for a choice,
 * the names it takes. Tables name a type with the macros below. */
struct zl_cfg_type {
    zl_cfg_kind kind;
    const char *const *choices; /* ENUM only: names, ended by NULL */
};

extern const struct zl_cfg_type zl_cfg_type_str, zl_cfg_type_int, zl_cfg_type_bool,
    zl_cfg_type_secret_file;
#define ZL_CFG_STR (&zl_cfg_type_str)
#define ZL_CFG_INT (&zl_cfg_type_int)
#define ZL_CFG_BOOL (&zl_cfg_type_bool)
#define ZL_CFG_SECRET_FILE (&zl_cfg_type_secret_file)
/* A choice among fixed names: choices is a NULL-ended array of names, e.g.
 *     static const char *const tx_types[] = {"auto", "legacy", "eip1559", NULL};
 *     {"ZL_TX_TYPE", ZL_CFG_ENUM(tx_types), "auto", "...", OFF(tx_type), 0, 0},
 * with `int tx_type;` in the struct. A value is accepted in any case and
 * stored as the index of its name (0 for "auto" above), so a C enum whose
 * values are 0, 1, ... in the same order can be cast from the field. Any
 * other value is an error naming the setting and every choice, and --help
 * and the README list the choices. The array must outlive the table (make
 * it static). Use it only in a table at file scope or a static one: the
 * type is a compound literal, which lives as long as its scope. */
#define ZL_CFG_ENUM(choices) (&(const struct zl_cfg_type){ZL_CFG_KIND_ENUM, (choices)})

/* Index of name among choices (NULL-ended), compared in any case; -1 when it
 * is not one of them. */
int zl_cfg_choice_index(const char *const *choices, const char *name);

/* Storage of a ZL_CFG_SECRET_FILE setting. Both pointers are NULL when the
 * setting is empty (allowed only when its default is ""): the stage decides
 * whether it needs the secret. */
struct zl_secret {
    char *path;  /* owned; as configured */
    char *value; /* owned; file content without trailing CR/LF; NUL-free;
                    never logged; wiped by zl_config_free() */
};

/* One row of a settings table. A section's table is usually a static const
 * array next to the struct it fills:
 *     {"ZL_BATCH_SIZE_MAX", ZL_CFG_INT, "500", "Messages handled per batch.",
 *      offsetof(struct verify_cfg, batch_size_max), 1, 10000},
 */
struct zl_setting {
    const char *name;          /* "ZL_BATCH_SIZE_MAX": must start with ZL_,
                                  unique across all sections */
    const struct zl_cfg_type *type; /* ZL_CFG_STR, ZL_CFG_ENUM(names), ... */
    const char *default_value; /* NULL: required, must be set by a source
                                  (and not empty); "": empty by default
                                  (STR "" / SECRET_FILE unset); otherwise a
                                  valid value of the type, checked at load */
    const char *help;          /* one sentence for --help and the README */
    size_t offset;             /* offsetof() the field in the section's
                                  struct; the field's C type follows type */
    int64_t min, max;          /* INT only, inclusive; both 0 = unbounded */
};

/* A group of settings filling one struct (e.g. "Kafka", "Verify stage"). */
struct zl_config_section {
    const char *title;                 /* heading in --help and README */
    const struct zl_setting *settings; /* borrowed; outlives the config */
    size_t count;
    void *base; /* the struct the offsets point into; owned by the caller,
                   its STR/SECRET fields owned by the config after load */
};

/* librdkafka pass-through properties, in the order given (see above). */
struct zl_kv {
    char *key;   /* owned */
    char *value; /* owned; may be a password: never log it */
};
struct zl_kv_list {
    struct zl_kv items[ZL_KV_MAX];
    size_t count;
};

/* Fills every section's struct from the sources above, in that order of
 * precedence. argv is the program's own: argv[0] is its name; options are
 * --config PATH, --set ZL_NAME=value, -X property=value (each also as
 * --opt=value / -Xproperty=value), -h/--help, and --help-markdown (the
 * settings as the markdown table the README is generated from). kafka_props
 * may be NULL for
 * a program that talks to no broker: then any librdkafka property is an
 * error, and ZL_KAFKA_PROPERTIES_FILE is ignored.
 *
 * Returns:
 *   0  loaded; every field is set; free with zl_config_free();
 *   1  --help or --help-markdown was given: it went to stdout; nothing is
 *      loaded (fields are zero/NULL); the program should exit 0;
 *  -1  error: errstr says which setting or line, what is wrong, and where it
 *      came from, e.g.
 *        ZL_BATCH_SIZE_MAX: "abc" is not an integer (from environment)
 *        unknown setting ZL_BATCH_SIZ (line 3 of /etc/zl.conf): see --help
 *      Nothing stays allocated (fields are zero/NULL).
 * In every case calling zl_config_free() afterwards is harmless.
 * A broken table (bad name, duplicate, default not valid for its type) is
 * reported the same way (-1, "settings table: ...").
 */
int zl_config_load(struct zl_config_section *sections, size_t nsections,
                   int argc, char **argv, struct zl_kv_list *kafka_props,
                   char *errstr, size_t errstr_size);

/* Frees what zl_config_load() allocated (strings, secrets, which are wiped
 * first, kafka properties, also wiped) and sets those fields to NULL and
 * kafka_props->count to 0. kafka_props may be NULL. Safe to call twice. */
void zl_config_free(struct zl_config_section *sections, size_t nsections,
                    struct zl_kv_list *kafka_props);

/* Writes the effective settings as one JSON object into buf, for the
 * startup log line: {"ZL_BATCH_SIZE_MAX":500,"ZL_DRY_RUN":false,
 * "ZL_TOPIC_PREFIX":"zl.","ZL_SIGNER_KEY_FILE":"<redacted: /run/key>"}.
 * Secrets show only their path (null when unset). In strings, a password
 * embedded as URL userinfo (postgresql://user:PW@host) or as a libpq keyword
 * (password=PW) shows as "<redacted>". Strings are escaped as log.h's
 * zl_log_escape_json(). Returns 0, or -1 when buf is too small (buf then
 * holds "" when size > 0). */
int zl_config_dump_json(const struct zl_config_section *sections,
                        size_t nsections, char *buf, size_t size);

/* Prints the --help text (usage, sources, then every section's settings
 * with type, default and help) to out. prog is the name shown in usage. */
void zl_config_print_help(FILE *out, const char *prog,
                          const struct zl_config_section *sections,
                          size_t nsections);

/* Prints a markdown table per section (Setting | Type | Default | Meaning),
 * headed "### <title>", plus one for the built-in source settings
 * (ZL_CONFIG_FILE, ZL_KAFKA_PROPERTIES_FILE): the README's configuration
 * table is generated from this. */
void zl_config_print_markdown(FILE *out,
                              const struct zl_config_section *sections,
                              size_t nsections);

#endif /* ZL_CONFIG_H */
