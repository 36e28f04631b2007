#include "nftmeta.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cid.h"

/* An append-only writer into a fixed buffer; `overflow` sticks. */
struct out {
    char *buf;
    size_t size;
    size_t len;
    bool overflow;
};

static void put_bytes(struct out *o, const char *s, size_t n)
{
    if (o->overflow || o->len + n + 1 > o->size) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void put(struct out *o, const char *s)
{
    put_bytes(o, s, strlen(s));
}

/* The body of a JSON string, escaped the one canonical way (header). */
static void put_escaped(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': put(o, "\\\""); break;
        case '\\': put(o, "\\\\"); break;
        case '\n': put(o, "\\n"); break;
        case '\r': put(o, "\\r"); break;
        case '\t': put(o, "\\t"); break;
        case '\b': put(o, "\\b"); break;
        case '\f': put(o, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                put(o, esc);
            } else {
                put_bytes(o, (const char *)&s[i], 1);
            }
        }
    }
}

static void put_string(struct out *o, const char *s)
{
    put(o, "\"");
    put_escaped(o, s, strlen(s));
    put(o, "\"");
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s != '\0') {
        unsigned char c = *s;
        int extra;
        uint32_t cp;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (int k = 1; k <= extra; k++) {
            if ((s[k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[k] & 0x3f);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += extra + 1;
    }
    return true;
}

static int check_text(const char *what, const char *s, char *errstr, size_t errstr_size)
{
    if (s == NULL) {
        snprintf(errstr, errstr_size, "NFT metadata %s is missing", what);
        return -1;
    }
    if (strlen(s) > ZL_NFTMETA_TEXT_MAX_BYTES) {
        snprintf(errstr, errstr_size, "NFT metadata %s is %zu bytes, more than %d", what, strlen(s),
                 ZL_NFTMETA_TEXT_MAX_BYTES);
        return -1;
    }
    if (!valid_utf8(s)) {
        snprintf(errstr, errstr_size, "NFT metadata %s is not valid UTF-8", what);
        return -1;
    }
    return 0;
}

int zl_nftmeta_check_opts(const struct zl_nftmeta_opts *o, char *errstr, size_t errstr_size)
{
    if (check_text("name prefix", o->name_prefix, errstr, errstr_size) != 0 ||
        check_text("description", o->description, errstr, errstr_size) != 0 ||
        check_text("external_url", o->external_url != NULL ? o->external_url : "", errstr, errstr_size) != 0)
        return -1;
    if (!zl_cid_is_raw_v1(o->image_cid)) {
        snprintf(errstr, errstr_size, "NFT image CID \"%.80s\" is not a raw CIDv1 (bafkrei...)",
                 o->image_cid != NULL ? o->image_cid : "");
        return -1;
    }
    return 0;
}

/* external_url with every "{deposit_id}" replaced. */
static void put_external_url(struct out *o, const char *tmpl, const char *deposit_id)
{
    static const char placeholder[] = "{deposit_id}";
    const size_t plen = sizeof(placeholder) - 1;
    put(o, "\"");
    const char *p = tmpl;
    for (;;) {
        const char *hit = strstr(p, placeholder);
        if (hit == NULL) {
            put_escaped(o, p, strlen(p));
            break;
        }
        put_escaped(o, p, (size_t)(hit - p));
        put_escaped(o, deposit_id, strlen(deposit_id));
        p = hit + plen;
    }
    put(o, "\"");
}

static void put_attribute(struct out *o, const char *trait, const char *value, bool last)
{
    put(o, "{\"trait_type\":");
    put_string(o, trait);
    put(o, ",\"value\":");
    put_string(o, value);
    put(o, last ? "}" : "},");
}

int zl_nftmeta_build(const struct zl_event *ev, const struct zl_nftmeta_opts *o, char *buf, size_t buf_size,
                     size_t *len, char *errstr, size_t errstr_size)
{
    if (buf_size > 0)
        buf[0] = '\0';
    if (zl_nftmeta_check_opts(o, errstr, errstr_size) != 0)
        return -1;
    char err[ZL_ERRSTR_SIZE];
    if (ev->kind < ZL_TOPIC_VERIFIED || zl_event_validate(ev, err, sizeof(err)) != 0) {
        snprintf(errstr, errstr_size, "NFT metadata for an invalid event: %s",
                 ev->kind < ZL_TOPIC_VERIFIED ? "not yet verified" : err);
        return -1;
    }
    /* Addresses are kept "as given" by the envelope; lower-case them so
     * two spellings of one deposit's token cannot give two CIDs.
     * A Solana key is base58, where case is part of the value: kept. */
    bool solana = zl_event_is_solana(ev);
    char token[sizeof(ev->token)];
    for (size_t i = 0; i < sizeof(token); i++)
        token[i] = solana ? ev->token[i] : (char)tolower((unsigned char)ev->token[i]);
    char chain[ZL_EVENT_CHAIN_SIZE], log_index[ZL_INT64_DEC_SIZE];
    if (solana) {
        snprintf(chain, sizeof(chain), "%s", ev->chain);
        snprintf(log_index, sizeof(log_index), "%s", ev->instruction);
    } else {
        snprintf(chain, sizeof(chain), "%" PRIu64, ev->chain_id);
        snprintf(log_index, sizeof(log_index), "%" PRIu32, ev->log_index);
    }

    struct out w = {.buf = buf, .size = buf_size, .len = 0, .overflow = buf_size == 0};
    put(&w, "{\"name\":\"");
    put_escaped(&w, o->name_prefix, strlen(o->name_prefix));
    if (o->name_prefix[0] != '\0')
        put(&w, " ");
    put_escaped(&w, ev->deposit_id, strlen(ev->deposit_id));
    put(&w, "\",\"description\":");
    put_string(&w, o->description);
    put(&w, ",\"image\":\"ipfs://");
    put(&w, o->image_cid);
    put(&w, "\",\"attributes\":[");
    put_attribute(&w, "amount", ev->amount, false);
    put_attribute(&w, "token", token, false);
    put_attribute(&w, "chain", chain, false);
    put_attribute(&w, "deposit tx", ev->tx_hash, false);
    put_attribute(&w, solana ? "instruction" : "log index", log_index, true);
    put(&w, "]");
    if (o->external_url != NULL && o->external_url[0] != '\0') {
        put(&w, ",\"external_url\":");
        put_external_url(&w, o->external_url, ev->deposit_id);
    }
    put(&w, "}");
    if (w.overflow) {
        if (buf_size > 0)
            buf[0] = '\0';
        snprintf(errstr, errstr_size, "NFT metadata does not fit in %zu bytes", buf_size);
        return -1;
    }
    *len = w.len;
    return 0;
}
