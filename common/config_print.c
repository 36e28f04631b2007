/* config_print.c: what the config loader prints: the startup dump (JSON,
 * secrets and passwords redacted), --help and --help-markdown (the README's
 * tables). The contract is in config.h. */
#include "config_int.h"

#include "log.h"

#include <inttypes.h>
#include <string.h>

/* The type column of --help and the README: room for an ENUM's choices. */
#define TYPE_TEXT_BYTES_MAX 256

/* ---- dump ------------------------------------------------------------------ */

struct out_buf {
    char *buf;
    size_t size;
    size_t len;
    bool overflow;
};

static void out_put(struct out_buf *o, const char *s, size_t n)
{
    /* One byte stays for the NUL. */
    if (o->overflow || o->size == 0 || n > o->size - 1 - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_puts(struct out_buf *o, const char *s)
{
    out_put(o, s, strlen(s));
}

static void out_escaped_n(struct out_buf *o, const char *s, size_t n)
{
    if (o->overflow || o->size == 0)
        return;
    size_t written = 0;
    size_t used = zl_log_escape_json(o->buf + o->len, o->size - o->len, s, n, &written);
    o->len += written;
    if (used < n)
        o->overflow = true;
}

static void out_escaped(struct out_buf *o, const char *s)
{
    out_escaped_n(o, s, strlen(s));
}

#define REDACTED "<redacted>"

/* Writes a string setting with any password it embeds replaced: the
 * startup line must not leak ZL_PG_DSN=postgresql://zl:pw@db/zl. Two forms
 * are recognised: URL userinfo ("scheme://user:password@host") and libpq
 * keywords or URI query ("... password=pw ...", "?password=pw"). Secrets belong in SECRET_FILE settings;
 * this is the safety net for when they are not. */
static void out_string_redacted(struct out_buf *o, const char *v)
{
    const char *scheme_end = strstr(v, "://");
    if (scheme_end != NULL) {
        const char *user = scheme_end + 3;
        size_t authority_len = strcspn(user, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < authority_len; i++) {
            if (user[i] == '@')
                at = user + i; /* the last '@' ends the userinfo */
        }
        const char *colon = at != NULL ? memchr(user, ':', (size_t)(at - user)) : NULL;
        if (colon != NULL) {
            out_escaped_n(o, v, (size_t)(colon + 1 - v));
            out_puts(o, REDACTED);
            out_escaped(o, at);
            return;
        }
    }
    const char *kw = strstr(v, "password=");
    /* A keyword starts the string or follows a blank (key=value DSN) or
     * '?'/'&' (URI query parameter). */
    if (kw != NULL && (kw == v || strchr(" \t?&", kw[-1]) != NULL)) {
        const char *pw = kw + strlen("password=");
        const char *rest = pw;
        if (*rest == '\'') {
            /* libpq quoted value: up to the closing quote (\' escapes). */
            for (rest++; *rest != '\0' && *rest != '\''; rest++) {
                if (*rest == '\\' && rest[1] != '\0')
                    rest++;
            }
            if (*rest == '\'')
                rest++;
        } else {
            rest += strcspn(rest, " \t&");
        }
        out_escaped_n(o, v, (size_t)(pw - v));
        out_puts(o, REDACTED);
        out_escaped(o, rest);
        return;
    }
    out_escaped(o, v);
}

int zl_config_dump_json(const struct zl_config_section *sections,
                        size_t nsections, char *buf, size_t size)
{
    struct out_buf o = {.buf = buf, .size = size, .len = 0, .overflow = false};
    bool first = true;
    out_puts(&o, "{");
    for (size_t s = 0; s < nsections; s++) {
        const struct zl_config_section *sec = &sections[s];
        for (size_t i = 0; i < sec->count && sec->base != NULL; i++) {
            const struct zl_setting *st = &sec->settings[i];
            const void *p = cfg_field_ptr(sec, st);
            out_puts(&o, first ? "\"" : ",\"");
            first = false;
            out_escaped(&o, st->name);
            out_puts(&o, "\":");
            switch (st->type->kind) {
            case ZL_CFG_KIND_STR: {
                const char *v = *(char *const *)p;
                if (v == NULL) {
                    out_puts(&o, "null");
                    break;
                }
                out_puts(&o, "\"");
                out_string_redacted(&o, v);
                out_puts(&o, "\"");
                break;
            }
            case ZL_CFG_KIND_ENUM:
                out_puts(&o, "\"");
                out_escaped(&o, st->type->choices[*(const int *)p]);
                out_puts(&o, "\"");
                break;
            case ZL_CFG_KIND_INT: {
                char num[32];
                snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)p);
                out_puts(&o, num);
                break;
            }
            case ZL_CFG_KIND_BOOL:
                out_puts(&o, *(const bool *)p ? "true" : "false");
                break;
            case ZL_CFG_KIND_SECRET_FILE: {
                /* The path only: the content never leaves the struct. */
                const struct zl_secret *sv = p;
                if (sv->path == NULL) {
                    out_puts(&o, "null");
                    break;
                }
                out_puts(&o, "\"<redacted: ");
                out_escaped(&o, sv->path);
                out_puts(&o, ">\"");
                break;
            }
            }
        }
    }
    out_puts(&o, "}");
    if (o.overflow) {
        if (size > 0)
            buf[0] = '\0';
        return -1;
    }
    buf[o.len] = '\0';
    return 0;
}

/* ---- help and markdown ----------------------------------------------------- */

static const char *type_name(zl_cfg_kind k)
{
    switch (k) {
    case ZL_CFG_KIND_STR:
        return "string";
    case ZL_CFG_KIND_INT:
        return "integer";
    case ZL_CFG_KIND_BOOL:
        return "boolean";
    case ZL_CFG_KIND_SECRET_FILE:
        return "secret file";
    case ZL_CFG_KIND_ENUM:
        return "one of";
    }
    return "unknown";
}

/* The type column: "integer 1..10000" (markdown: "integer (1..10000)"),
 * "one of debug, info, warn, error", or just the type name. */
static const char *type_text(const struct zl_setting *st, bool markdown, char *buf, size_t size)
{
    char list[TYPE_TEXT_BYTES_MAX - 16];
    if (st->type == ZL_CFG_INT && cfg_int_bounded(st))
        snprintf(buf, size, markdown ? "integer (%" PRId64 "..%" PRId64 ")" : "integer %" PRId64 "..%" PRId64,
                 st->min, st->max);
    else if (st->type == ZL_CFG_SECRET_FILE && !markdown)
        snprintf(buf, size, "secret file (path; mode 0600)");
    else if (st->type->kind == ZL_CFG_KIND_ENUM)
        snprintf(buf, size, "one of %s", cfg_choices_text(st->type->choices, list, sizeof(list)));
    else
        snprintf(buf, size, "%s", type_name(st->type->kind));
    return buf;
}

static void help_section(FILE *out, const struct zl_config_section *sec)
{
    fprintf(out, "\n%s:\n", sec->title);
    for (size_t i = 0; i < sec->count; i++) {
        const struct zl_setting *st = &sec->settings[i];
        char type[TYPE_TEXT_BYTES_MAX];
        type_text(st, false /* markdown */, type, sizeof(type));
        if (st->default_value == NULL)
            fprintf(out, "  %s  (%s, required)\n", st->name, type);
        else if (st->default_value[0] == '\0')
            fprintf(out, "  %s  (%s, default empty)\n", st->name, type);
        else
            fprintf(out, "  %s  (%s, default %s)\n", st->name, type,
                    st->default_value);
        fprintf(out, "      %s\n", st->help);
    }
}

void zl_config_print_help(FILE *out, const char *prog,
                          const struct zl_config_section *sections,
                          size_t nsections)
{
    fprintf(out,
            "Usage: %s [--config PATH] [--set ZL_NAME=value]... "
            "[-X property=value]... [--help]\n"
            "\n"
            "Settings come from, lowest to highest precedence: the defaults "
            "below,\n"
            "the config file (--config PATH, else $" CONFIG_FILE_NAME "; "
            "ZL_NAME=value lines),\n"
            "environment variables ZL_NAME, then --set ZL_NAME=value.\n"
            "librdkafka properties come from kafka.<property>=value lines "
            "of the config file,\n"
            "then the file $" KAFKA_PROPS_FILE_NAME " (property=value, "
            "mode 0600), then -X property=value.\n",
            prog != NULL ? prog : "zl");
    for (size_t s = 0; s < nsections; s++)
        help_section(out, &sections[s]);
    help_section(out, &cfg_builtin_section);
}

/* Markdown table cell text: '|' would end the cell, a newline the row, and
 * "<property>" would be taken for an HTML tag and vanish. */
static void md_cell(FILE *out, const char *s)
{
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == '|')
            fputs("\\|", out);
        else if (*c == '<')
            fputs("&lt;", out);
        else if (*c == '>')
            fputs("&gt;", out);
        else if (*c == '\n' || *c == '\r')
            fputc(' ', out);
        else
            fputc(*c, out);
    }
}

static void md_section(FILE *out, const struct zl_config_section *sec)
{
    fprintf(out, "### %s\n\n", sec->title);
    fputs("| Setting | Type | Default | Meaning |\n", out);
    fputs("|---|---|---|---|\n", out);
    for (size_t i = 0; i < sec->count; i++) {
        const struct zl_setting *st = &sec->settings[i];
        char type[TYPE_TEXT_BYTES_MAX];
        type_text(st, true /* markdown */, type, sizeof(type));
        fprintf(out, "| `%s` | %s | ", st->name, type);
        if (st->default_value == NULL) {
            fputs("*required*", out);
        } else if (st->default_value[0] == '\0') {
            fputs("(empty)", out);
        } else {
            fputc('`', out);
            md_cell(out, st->default_value);
            fputc('`', out);
        }
        fputs(" | ", out);
        md_cell(out, st->help);
        fputs(" |\n", out);
    }
    fputc('\n', out);
}

void zl_config_print_markdown(FILE *out,
                              const struct zl_config_section *sections,
                              size_t nsections)
{
    for (size_t s = 0; s < nsections; s++)
        md_section(out, &sections[s]);
    md_section(out, &cfg_builtin_section);
}
