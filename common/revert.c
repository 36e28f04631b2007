#include "revert.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "chain.h"
#include "ethtx.h"
#include "hex.h"
#include "keccak.h"

/* An ABI word. */
#define WORD_BYTES 32
/* A selector: the first 4 bytes of keccak256(signature). */
#define SELECTOR_BYTES 4
/* Longest type name of one argument ("uint256", "bytes32", a tuple's text). */
#define TYPE_NAME_MAX 64
/* Error(string) and Panic(uint256) are the compiler's own, in no ABI. */
static const char ERROR_SIG[] = "Error(string)";
static const char PANIC_SIG[] = "Panic(uint256)";

/* Text written into a caller's buffer, cut (never overrun) at its size. */
struct text {
    char *buf;
    size_t size; /* >= 1 */
    size_t len;  /* < size */
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len = (size_t)n < t->size - t->len ? t->len + (size_t)n : t->size - 1;
}

static void put_hex(struct text *t, const uint8_t *d, size_t n)
{
    put(t, "0x");
    for (size_t i = 0; i < n && t->len + 1 < t->size; i++)
        put(t, "%02x", d[i]);
}

/* Back to an earlier length (an argument that did not decode). */
static void rewind_to(struct text *t, size_t len)
{
    t->len = len;
    t->buf[len] = '\0';
}

/* The value of a word that must be a small offset or length: false when
 * it does not fit in 64 bits. */
static bool word_u64(const uint8_t *w, uint64_t *out)
{
    for (int i = 0; i < WORD_BYTES - 8; i++)
        if (w[i] != 0)
            return false;
    uint64_t v = 0;
    for (int i = WORD_BYTES - 8; i < WORD_BYTES; i++)
        v = (v << 8) | w[i];
    *out = v;
    return true;
}

static void put_uint256(struct text *t, const uint8_t w[WORD_BYTES])
{
    char hex[ZL_HEX_SIZE(WORD_BYTES)], dec[ZL_UINT256_DEC_SIZE];
    zl_hex_encode(w, WORD_BYTES, hex, sizeof(hex));
    if (zl_uint256_hex_to_dec(hex, dec, sizeof(dec)) == 0)
        put(t, "%s", dec);
    else
        put(t, "%s", hex); /* cannot happen: 64 hex digits always convert */
}

/* A bytes32 the ABIs name: a role constant (OpenZeppelin's AccessControl:
 * DEFAULT_ADMIN_ROLE is zero, every other role keccak256 of its name). */
static const char *role_name(const uint8_t w[WORD_BYTES])
{
    for (size_t i = 0; i < zl_revert_abi_roles_count; i++) {
        uint8_t h[ZL_KECCAK256_SIZE] = {0};
        const char *name = zl_revert_abi_roles[i];
        if (strcmp(name, "DEFAULT_ADMIN_ROLE") != 0)
            zl_keccak256(name, strlen(name), h);
        if (memcmp(h, w, WORD_BYTES) == 0)
            return name;
    }
    return NULL;
}

/* A string argument, quoted; bytes outside printable ASCII as \xNN. */
static void put_quoted(struct text *t, const uint8_t *s, size_t n)
{
    put(t, "\"");
    for (size_t i = 0; i < n && t->len + 1 < t->size; i++) {
        if (s[i] == '"' || s[i] == '\\')
            put(t, "\\%c", s[i]);
        else if (s[i] >= 0x20 && s[i] < 0x7f)
            put(t, "%c", s[i]);
        else
            put(t, "\\x%02x", s[i]);
    }
    put(t, "\"");
}

/* The dynamic argument (string or bytes) whose offset is at args[head]. */
static bool put_dynamic(struct text *t, const uint8_t *args, size_t n, const uint8_t *head, bool is_string)
{
    uint64_t off, len;
    if (!word_u64(head, &off) || off > n || n - off < WORD_BYTES || !word_u64(args + off, &len) ||
        len > n - off - WORD_BYTES)
        return false;
    if (is_string)
        put_quoted(t, args + off + WORD_BYTES, (size_t)len);
    else
        put_hex(t, args + off + WORD_BYTES, (size_t)len);
    return true;
}

/* Argument i, of type `type`, of args[0..n). False when its type is one
 * this reader does not know (arrays, tuples) or its bytes are not a valid
 * value of it. */
static bool put_arg(struct text *t, const char *type, const uint8_t *args, size_t n, size_t i)
{
    if (i >= n / WORD_BYTES)
        return false;
    if (strpbrk(type, "[(") != NULL)
        return false; /* arrays and tuples: their head is an offset, not a value */
    const uint8_t *w = args + i * WORD_BYTES;
    static const uint8_t zero[WORD_BYTES];
    if (strcmp(type, "address") == 0) {
        if (memcmp(w, zero, WORD_BYTES - 20) != 0)
            return false;
        put_hex(t, w + WORD_BYTES - 20, 20);
        return true;
    }
    if (strcmp(type, "bool") == 0) {
        if (memcmp(w, zero, WORD_BYTES - 1) != 0 || w[WORD_BYTES - 1] > 1)
            return false;
        put(t, "%s", w[WORD_BYTES - 1] ? "true" : "false");
        return true;
    }
    if (strncmp(type, "uint", 4) == 0) {
        put_uint256(t, w);
        return true;
    }
    if (strncmp(type, "int", 3) == 0) {
        if ((w[0] & 0x80) == 0) {
            put_uint256(t, w);
            return true;
        }
        uint8_t neg[WORD_BYTES]; /* two's complement: invert, add one */
        unsigned carry = 1;
        for (int k = WORD_BYTES - 1; k >= 0; k--) {
            unsigned v = (unsigned)(uint8_t)~w[k] + carry;
            neg[k] = (uint8_t)v;
            carry = v >> 8;
        }
        put(t, "-");
        put_uint256(t, neg);
        return true;
    }
    if (strcmp(type, "string") == 0 || strcmp(type, "bytes") == 0)
        return put_dynamic(t, args, n, w, type[0] == 's');
    if (strncmp(type, "bytes", 5) == 0) {
        int size = 0;
        if (sscanf(type + 5, "%d", &size) != 1 || size < 1 || size > WORD_BYTES)
            return false;
        const char *role = size == WORD_BYTES ? role_name(w) : NULL;
        if (role != NULL)
            put(t, "%s", role);
        else
            put_hex(t, w, (size_t)size);
        return true;
    }
    return false;
}

/* Name(arg, ...) of a known signature; false (nothing written) when an
 * argument does not decode. */
static bool put_call(struct text *t, const char *sig, const uint8_t *args, size_t n)
{
    size_t mark = t->len;
    const char *open = strchr(sig, '(');
    put(t, "%.*s(", (int)(open - sig), sig);
    const char *p = open + 1;
    const char *end = sig + strlen(sig) - 1; /* the closing ')' */
    for (size_t i = 0; p < end; i++) {
        /* The next type: up to a comma outside parentheses (a tuple's). */
        int depth = 0;
        const char *q = p;
        while (q < end && (depth > 0 || *q != ',')) {
            depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
            q++;
        }
        char type[TYPE_NAME_MAX];
        if ((size_t)(q - p) >= sizeof(type))
            goto undecodable;
        memcpy(type, p, (size_t)(q - p));
        type[q - p] = '\0';
        if (i > 0)
            put(t, ", ");
        if (!put_arg(t, type, args, n, i))
            goto undecodable;
        p = q < end ? q + 1 : q;
    }
    put(t, ")");
    return true;
undecodable:
    rewind_to(t, mark);
    return false;
}

const char *zl_revert_panic_meaning(unsigned long long code)
{
    switch (code) {
    case 0x00: return "generic compiler panic";
    case 0x01: return "assert failed";
    case 0x11: return "arithmetic overflow or underflow";
    case 0x12: return "division or modulo by zero";
    case 0x21: return "conversion to an invalid enum value";
    case 0x22: return "incorrectly encoded storage byte array";
    case 0x31: return "pop() on an empty array";
    case 0x32: return "array index out of bounds";
    case 0x41: return "too much memory allocated";
    case 0x51: return "call to an uninitialised internal function";
    }
    return NULL;
}

static bool selector_is(const uint8_t *d, const char *sig)
{
    uint8_t sel[SELECTOR_BYTES];
    zl_abi_selector(sig, sel);
    return memcmp(d, sel, SELECTOR_BYTES) == 0;
}

static bool put_panic(struct text *t, const uint8_t *args, size_t n)
{
    uint64_t code;
    if (n != WORD_BYTES || !word_u64(args, &code))
        return false;
    const char *meaning = zl_revert_panic_meaning(code);
    put(t, "Panic(0x%02llx: %s)", (unsigned long long)code, meaning != NULL ? meaning : "a code Solidity does not use");
    return true;
}

static bool describe(const uint8_t *d, size_t n, struct text *t)
{
    if (n == 0) {
        put(t, "no revert data (a bare revert, or a require without a message)");
        return false;
    }
    if (n < SELECTOR_BYTES) {
        put(t, "revert data too short to name an error: ");
        put_hex(t, d, n);
        return false;
    }
    const uint8_t *args = d + SELECTOR_BYTES;
    size_t nargs = n - SELECTOR_BYTES;
    const char *sig = NULL;
    if (selector_is(d, PANIC_SIG)) {
        if (put_panic(t, args, nargs))
            return true;
        sig = PANIC_SIG;
    } else if (selector_is(d, ERROR_SIG)) {
        sig = ERROR_SIG;
    }
    for (size_t i = 0; sig == NULL && i < zl_revert_abi_errors_count; i++)
        if (selector_is(d, zl_revert_abi_errors[i]))
            sig = zl_revert_abi_errors[i];
    if (sig != NULL && sig != PANIC_SIG && put_call(t, sig, args, nargs))
        return true;
    if (sig != NULL) {
        put(t, "%s with arguments that do not decode: ", sig);
    } else {
        put(t, "custom error ");
        put_hex(t, d, SELECTOR_BYTES);
        put(t, " (in none of the contracts' ABIs)%s", nargs > 0 ? ": " : "");
        if (nargs == 0)
            return false;
    }
    put_hex(t, args, nargs);
    return false;
}

bool zl_revert_describe(const char *data_hex, char *out, size_t out_size)
{
    struct text t = {.buf = out, .size = out_size, .len = 0};
    out[0] = '\0';
    uint8_t d[ZL_REVERT_DATA_MAX_BYTES];
    size_t n = 0;
    if (data_hex == NULL || data_hex[0] == '\0')
        return describe(d, 0, &t);
    size_t digits = strlen(data_hex) - (zl_hex_has_prefix(data_hex) ? 2 : 0);
    if (digits > 2 * sizeof(d)) {
        put(&t, "revert data of %zu hex digits, more than the %d bytes read", digits, ZL_REVERT_DATA_MAX_BYTES);
        return false;
    }
    if (zl_hex_decode(data_hex, d, sizeof(d), &n) != 0) {
        put(&t, "revert data is not hex: %.64s", data_hex);
        return false;
    }
    return describe(d, n, &t);
}
