/* tokens.c: see tokens.h. Parses an operator's setting: every field is
 * checked, and an error names the entry (by position and text) so a typo in
 * the fifth of six tokens is found without guessing. */
#include "tokens.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "chain.h"
#include "envelope.h"

/* Bytes of one entry's text kept for a message. */
#define ENTRY_TEXT_MAX 200
/* Fields of an entry: SYMBOL:ADDRESS:DECIMALS[:MIN_AMOUNT]. */
#define ENTRY_FIELDS_MAX 4

static bool symbol_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= ZL_TOKEN_SYMBOL_SIZE)
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* decimals: 1 to 3 digits, 0..255 (decimals() is a uint8). */
static int decimals_of(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3)
        return -1;
    int v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v <= 255 ? v : -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* One "SYMBOL:ADDRESS:DECIMALS[:MIN]" into t. Returns NULL, or what is wrong. */
static const char *parse_entry(char *text, const char *default_min, struct zl_token *t)
{
    char *field[ENTRY_FIELDS_MAX] = {NULL};
    size_t nf = 0;
    char *p = text;
    while (p != NULL) {
        if (nf == ENTRY_FIELDS_MAX)
            return "more than 4 fields (SYMBOL:ADDRESS:DECIMALS[:MIN_AMOUNT])";
        field[nf++] = trim(p);
        p = strchr(p, ':');
        if (p != NULL)
            *p++ = '\0';
    }
    if (nf < 3)
        return "expected SYMBOL:ADDRESS:DECIMALS[:MIN_AMOUNT]";
    if (!symbol_ok(field[0]))
        return "the symbol must be 1 to 15 of A-Z a-z 0-9 . _ -";
    if (zl_hex_lower(field[1], ZL_ADDRESS_HEX_DIGITS, t->address, sizeof(t->address)) != 0)
        return "the address is not 0x and 40 hex digits";
    t->decimals = decimals_of(field[2]);
    if (t->decimals < 0)
        return "decimals must be an integer 0..255";
    const char *min = nf == 4 ? field[3] : default_min;
    if (!zl_valid_uint256_dec(min))
        return "the minimum is not a canonical decimal integer (the token's smallest unit)";
    snprintf(t->symbol, sizeof(t->symbol), "%s", field[0]);
    snprintf(t->min_amount, sizeof(t->min_amount), "%s", min);
    return NULL;
}

static int load_list(struct zl_tokens *out, const char *spec, const char *default_min, char *errstr,
                     size_t errstr_size)
{
    char buf[ZL_TOKENS_SPEC_MAX];
    if (strlen(spec) >= sizeof(buf)) {
        snprintf(errstr, errstr_size, "ZL_TOKENS: longer than %d bytes", ZL_TOKENS_SPEC_MAX - 1);
        return -1;
    }
    memcpy(buf, spec, strlen(spec) + 1);
    size_t pos = 0;
    char *save = NULL;
    for (char *e = strtok_r(buf, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
        pos++;
        e = trim(e);
        if (e[0] == '\0')
            continue; /* a trailing or doubled comma */
        char shown[ENTRY_TEXT_MAX];
        snprintf(shown, sizeof(shown), "%s", e);
        if (out->n == ZL_TOKENS_MAX) {
            snprintf(errstr, errstr_size, "ZL_TOKENS: more than %d tokens", ZL_TOKENS_MAX);
            return -1;
        }
        struct zl_token *t = &out->t[out->n];
        const char *why = parse_entry(e, default_min, t);
        if (why == NULL) {
            for (size_t k = 0; k < out->n && why == NULL; k++) {
                if (strcmp(out->t[k].address, t->address) == 0)
                    why = "this address is listed twice";
                else if (strcmp(out->t[k].symbol, t->symbol) == 0)
                    why = "this symbol is listed twice";
            }
        }
        if (why != NULL) {
            snprintf(errstr, errstr_size, "ZL_TOKENS: entry %zu \"%s\": %s", pos, shown, why);
            return -1;
        }
        out->n++;
    }
    if (out->n == 0) {
        snprintf(errstr, errstr_size, "ZL_TOKENS: no token listed (SYMBOL:ADDRESS:DECIMALS[:MIN_AMOUNT],...)");
        return -1;
    }
    return 0;
}

int zl_tokens_load(struct zl_tokens *out, const char *spec, const char *legacy_address, const char *default_min,
                   char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    bool have_spec = spec != NULL && spec[0] != '\0';
    bool have_legacy = legacy_address != NULL && legacy_address[0] != '\0';
    if (default_min == NULL)
        default_min = "1";
    if (!zl_valid_uint256_dec(default_min)) {
        snprintf(errstr, errstr_size, "default minimum \"%s\" is not a canonical decimal integer", default_min);
        return -1;
    }
    if (have_spec && have_legacy) {
        snprintf(errstr, errstr_size,
                 "ZL_TOKENS and ZL_TOKEN_ADDRESS are both set: list every token in ZL_TOKENS and unset "
                 "ZL_TOKEN_ADDRESS");
        return -1;
    }
    if (have_spec)
        return load_list(out, spec, default_min, errstr, errstr_size);
    if (!have_legacy)
        return 0;
    struct zl_token *t = &out->t[0];
    if (zl_hex_lower(legacy_address, ZL_ADDRESS_HEX_DIGITS, t->address, sizeof(t->address)) != 0) {
        snprintf(errstr, errstr_size, "ZL_TOKEN_ADDRESS: \"%s\" is not a 0x-prefixed 20-byte hex address",
                 legacy_address);
        return -1;
    }
    snprintf(t->symbol, sizeof(t->symbol), "TOKEN");
    t->decimals = ZL_TOKEN_DECIMALS_UNSET;
    snprintf(t->min_amount, sizeof(t->min_amount), "%s", default_min);
    out->n = 1;
    return 0;
}

const struct zl_token *zl_tokens_find(const struct zl_tokens *ts, const char *address)
{
    char a[ZL_ADDRESS_HEX_SIZE];
    if (address == NULL || zl_hex_lower(address, ZL_ADDRESS_HEX_DIGITS, a, sizeof(a)) != 0)
        return NULL;
    for (size_t i = 0; i < ts->n; i++)
        if (strcmp(ts->t[i].address, a) == 0)
            return &ts->t[i];
    return NULL;
}

void zl_token_label(const struct zl_token *t, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s (%s)", t->symbol, t->address);
}
