/* envelope.c: decode, validate and encode the JSON message envelope.
 *
 * One table (fields[] below) lists every field once: its JSON name, the
 * first kind that carries it, where it lives in struct zl_event, and its
 * format. Decode, validate, encode, derive and equal all walk that table, so
 * they cannot disagree about which fields a kind carries, and the table's
 * order is the canonical key order of the encoding.
 */
#include "envelope.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

#include "base58.h"
#include "hex.h"

/* ------------------------------------------------------------ kinds */

struct kind_names {
    const char *schema; /* the `schema` field's value */
    const char *suffix; /* topic name after the prefix; schema file name */
};

static const struct kind_names kind_names[] = {
    [ZL_TOPIC_ANY] = {NULL, NULL},
    [ZL_TOPIC_DETECTED] = {"zl.deposits.detected/v1", "deposits.detected"},
    [ZL_TOPIC_VERIFIED] = {"zl.deposits.verified/v1", "deposits.verified"},
    [ZL_TOPIC_PINNED] = {"zl.nft.pinned/v1", "nft.pinned"},
    [ZL_TOPIC_MINTED] = {"zl.nft.minted/v1", "nft.minted"},
    [ZL_TOPIC_CREDITED] = {"zl.credits.applied/v1", "credits.applied"},
};

static bool kind_is_message(zl_topic_kind kind)
{
    return kind >= ZL_TOPIC_KIND_FIRST && kind <= ZL_TOPIC_KIND_LAST;
}

const char *zl_topic_kind_schema(zl_topic_kind kind)
{
    return kind_is_message(kind) ? kind_names[kind].schema : NULL;
}

const char *zl_topic_kind_suffix(zl_topic_kind kind)
{
    return kind_is_message(kind) ? kind_names[kind].suffix : NULL;
}

int zl_topic_kind_from_schema(const char *schema, zl_topic_kind *out)
{
    ZL_ASSERT(schema != NULL && out != NULL);
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        if (strcmp(schema, kind_names[k].schema) == 0) {
            *out = (zl_topic_kind)k;
            return 0;
        }
    }
    return -1;
}

int zl_topic_kind_from_suffix(const char *suffix, zl_topic_kind *out)
{
    ZL_ASSERT(suffix != NULL && out != NULL);
    for (int k = ZL_TOPIC_KIND_FIRST; k <= ZL_TOPIC_KIND_LAST; k++) {
        if (strcmp(suffix, kind_names[k].suffix) == 0) {
            *out = (zl_topic_kind)k;
            return 0;
        }
    }
    return -1;
}

int zl_topic_name(char *buf, size_t buf_size, const char *prefix, zl_topic_kind kind)
{
    ZL_ASSERT(buf != NULL && buf_size > 0 && prefix != NULL);
    buf[0] = '\0';
    if (!kind_is_message(kind))
        return -1;
    int n = snprintf(buf, buf_size, "%s%s", prefix, kind_names[kind].suffix);
    return (n < 0 || (size_t)n >= buf_size) ? -1 : 0;
}

/* ------------------------------------------------------ field formats */

/* 2^256 - 1: the largest uint256, 78 digits. A 78-digit string compares
 * against it character by character. */
static const char uint256_max_dec[] =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";
#define UINT256_DEC_DIGITS_MAX 78

#define HASH32_LEN 66  /* "0x" + 64 */
#define ADDRESS_LEN 42 /* "0x" + 40 */
#define UUID_LEN 36
#define USER_ID_LEN_MAX 64
#define CID_LEN_MIN 10
#define CID_LEN_MAX 120
#define RATE_LEN_MAX 47 /* sizeof(rate) - 1 */
#define RFC3339_FRACTION_DIGITS_MAX 9 /* nanoseconds: nobody has finer */
#define IPFS_SCHEME "ipfs://"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_lower_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }
static bool is_any_hex(char c) { return zl_hex_digit((unsigned char)c) >= 0; }

static bool all_of(const char *s, size_t n, bool (*pred)(char))
{
    for (size_t i = 0; i < n; i++) {
        if (!pred(s[i]))
            return false;
    }
    return true;
}

bool zl_valid_uuid(const char *s)
{
    if (strlen(s) != UUID_LEN)
        return false;
    for (size_t i = 0; i < UUID_LEN; i++) {
        bool dash_here = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash_here ? s[i] != '-' : !is_lower_hex(s[i]))
            return false;
    }
    return true;
}

bool zl_valid_hash32(const char *s)
{
    return strlen(s) == HASH32_LEN && s[0] == '0' && s[1] == 'x' &&
           all_of(s + 2, HASH32_LEN - 2, is_lower_hex);
}

bool zl_valid_address(const char *s)
{
    return strlen(s) == ADDRESS_LEN && s[0] == '0' && s[1] == 'x' &&
           all_of(s + 2, ADDRESS_LEN - 2, is_any_hex);
}

static bool is_user_id_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_' || c == '.' || c == ':' || c == '-';
}

bool zl_valid_user_id(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= USER_ID_LEN_MAX && all_of(s, n, is_user_id_char);
}

/* "0" or a digit string without a leading zero: one spelling per number, so
 * equal amounts compare equal as strings. */
static bool is_canonical_digits(const char *s, size_t n)
{
    return n >= 1 && all_of(s, n, is_digit) && (n == 1 || s[0] != '0');
}

bool zl_valid_uint256_dec(const char *s)
{
    size_t n = strlen(s);
    if (n > UINT256_DEC_DIGITS_MAX || !is_canonical_digits(s, n))
        return false;
    /* Same length, only digits: string order is numeric order. */
    return n < UINT256_DEC_DIGITS_MAX || strcmp(s, uint256_max_dec) <= 0;
}

bool zl_valid_rate(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RATE_LEN_MAX)
        return false;
    const char *dot = memchr(s, '.', n);
    size_t int_len = dot ? (size_t)(dot - s) : n;
    if (!is_canonical_digits(s, int_len))
        return false;
    if (dot == NULL)
        return true;
    size_t frac_len = n - int_len - 1;
    return frac_len >= 1 && all_of(dot + 1, frac_len, is_digit);
}

/* Reads n digits at s (all must be digits). */
static int two_or_four_digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return (month == 2 && leap) ? 29 : days[month - 1];
}

bool zl_valid_rfc3339_utc(const char *s)
{
    /* "YYYY-MM-DDTHH:MM:SS" at fixed places; then ".fraction" or nothing;
     * then "Z". Offsets other than Z, lower-case t/z and leap second 60 are
     * refused: our producers write UTC from zl_rfc3339_now(), and one
     * spelling keeps the field comparable as a string. */
    static const char shape[] = "DDDD-DD-DDTDD:DD:DD";
    size_t n = strlen(s);
    if (n < sizeof(shape)) /* 19 characters + at least "Z" */
        return false;
    for (size_t i = 0; i + 1 < sizeof(shape); i++) {
        if (shape[i] == 'D' ? !is_digit(s[i]) : s[i] != shape[i])
            return false;
    }
    int year = two_or_four_digits(s, 4), month = two_or_four_digits(s + 5, 2),
        day = two_or_four_digits(s + 8, 2), hour = two_or_four_digits(s + 11, 2),
        minute = two_or_four_digits(s + 14, 2), second = two_or_four_digits(s + 17, 2);
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        return false;
    size_t i = sizeof(shape) - 1;
    if (s[i] == '.') {
        size_t frac_len = 0;
        i++;
        while (is_digit(s[i]) && frac_len <= RFC3339_FRACTION_DIGITS_MAX) {
            i++;
            frac_len++;
        }
        if (frac_len < 1 || frac_len > RFC3339_FRACTION_DIGITS_MAX)
            return false;
    }
    return s[i] == 'Z' && s[i + 1] == '\0';
}

static bool is_base32_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

bool zl_valid_cid(const char *s)
{
    size_t n = strlen(s);
    return n >= CID_LEN_MIN && n <= CID_LEN_MAX && s[0] == 'b' &&
           all_of(s + 1, n - 1, is_base32_lower);
}

static bool valid_token_uri(const char *s)
{
    size_t scheme_len = sizeof(IPFS_SCHEME) - 1;
    return strncmp(s, IPFS_SCHEME, scheme_len) == 0 && zl_valid_cid(s + scheme_len);
}

/* ------------------------------------------------------ Solana formats */

#define SOL_CLUSTER_LEN_MAX (ZL_EVENT_CHAIN_SIZE - 1)
#define SOL_SIGNATURE_BYTES 64
#define SOL_KEY_BYTES 32
#define SOL_PLACE_PART_MAX 255 /* a transaction holds fewer instructions */

static bool is_cluster_char(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-';
}

bool zl_valid_sol_cluster(const char *s)
{
    /* A letter first: never all digits, so a deposit id's first field alone
     * says which family it is. */
    size_t n = strlen(s);
    return n >= 1 && n <= SOL_CLUSTER_LEN_MAX && s[0] >= 'a' && s[0] <= 'z' && all_of(s, n, is_cluster_char);
}

static bool b58_of(const char *s, size_t bytes)
{
    uint8_t raw[ZL_B58_BYTES_MAX];
    /* The longest text of `bytes` bytes is bytes * 1.37 characters: refuse
     * anything longer before decoding (leading '1's could pad it). */
    return strlen(s) <= bytes * 138 / 100 + 1 && zl_b58_decode_exact(s, raw, bytes) == 0;
}

bool zl_valid_sol_signature(const char *s) { return b58_of(s, SOL_SIGNATURE_BYTES); }
bool zl_valid_sol_key(const char *s) { return b58_of(s, SOL_KEY_BYTES); }

/* Reads one canonical decimal part of a place (0..255) of n characters. */
static bool place_part(const char *s, size_t n)
{
    if (n < 1 || n > 3 || !is_canonical_digits(s, n))
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v <= SOL_PLACE_PART_MAX;
}

bool zl_valid_sol_place(const char *s)
{
    const char *dot = strchr(s, '.');
    if (dot == NULL)
        return place_part(s, strlen(s));
    return place_part(s, (size_t)(dot - s)) && place_part(dot + 1, strlen(dot + 1));
}

static bool valid_schema(const char *s)
{
    zl_topic_kind unused;
    return zl_topic_kind_from_schema(s, &unused) == 0;
}

/* ----------------------------------------------------------- deposit id */

/* Parses exactly n canonical decimal digits at s into *out, refusing values
 * above max. */
static int parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (!is_canonical_digits(s, n))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (max - d) / 10) /* v * 10 + d would exceed max */
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int zl_deposit_id_format(char *buf, size_t buf_size, uint64_t chain_id,
                         const char *tx_hash, uint32_t log_index)
{
    ZL_ASSERT(buf != NULL && tx_hash != NULL);
    if (buf_size > 0)
        buf[0] = '\0';
    if (chain_id == 0 || chain_id > ZL_JSON_SAFE_INT_MAX || !zl_valid_hash32(tx_hash))
        return -1;
    int n = snprintf(buf, buf_size, "%" PRIu64 ":%s:%" PRIu32, chain_id, tx_hash, log_index);
    if (n < 0 || (size_t)n >= buf_size) {
        if (buf_size > 0)
            buf[0] = '\0';
        return -1;
    }
    return 0;
}

int zl_deposit_id_parse(const char *deposit_id, uint64_t *chain_id,
                        char *tx_hash, size_t tx_hash_size, uint32_t *log_index)
{
    ZL_ASSERT(deposit_id != NULL && chain_id != NULL && tx_hash != NULL && log_index != NULL);
    ZL_ASSERT(tx_hash_size >= HASH32_LEN + 1);
    const char *colon1 = strchr(deposit_id, ':');
    if (colon1 == NULL)
        return -1;
    const char *hash = colon1 + 1;
    if (strlen(hash) < HASH32_LEN + 2 || hash[HASH32_LEN] != ':')
        return -1;
    const char *index = hash + HASH32_LEN + 1;

    uint64_t chain = 0, idx = 0;
    if (parse_dec(deposit_id, (size_t)(colon1 - deposit_id), ZL_JSON_SAFE_INT_MAX, &chain) != 0 ||
        chain == 0)
        return -1;
    if (parse_dec(index, strlen(index), UINT32_MAX, &idx) != 0)
        return -1;
    char hash_copy[HASH32_LEN + 1];
    memcpy(hash_copy, hash, HASH32_LEN);
    hash_copy[HASH32_LEN] = '\0';
    if (!zl_valid_hash32(hash_copy))
        return -1;

    *chain_id = chain;
    memcpy(tx_hash, hash_copy, sizeof(hash_copy));
    *log_index = (uint32_t)idx;
    return 0;
}

int zl_sol_deposit_id_format(char *buf, size_t buf_size, const char *cluster, const char *signature,
                             const char *place)
{
    ZL_ASSERT(buf != NULL && cluster != NULL && signature != NULL && place != NULL);
    if (buf_size > 0)
        buf[0] = '\0';
    if (!zl_valid_sol_cluster(cluster) || !zl_valid_sol_signature(signature) || !zl_valid_sol_place(place))
        return -1;
    int n = snprintf(buf, buf_size, "%s:%s:%s", cluster, signature, place);
    if (n < 0 || (size_t)n >= buf_size) {
        if (buf_size > 0)
            buf[0] = '\0';
        return -1;
    }
    return 0;
}

int zl_sol_deposit_id_parse(const char *deposit_id, char *cluster, char *signature, char *place)
{
    ZL_ASSERT(deposit_id != NULL && cluster != NULL && signature != NULL && place != NULL);
    const char *c1 = strchr(deposit_id, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
        return -1;
    size_t n_cluster = (size_t)(c1 - deposit_id), n_sig = (size_t)(c2 - c1 - 1), n_place = strlen(c2 + 1);
    if (n_cluster >= ZL_EVENT_CHAIN_SIZE || n_sig >= ZL_EVENT_TXID_SIZE || n_place >= ZL_EVENT_PLACE_SIZE)
        return -1;
    memcpy(cluster, deposit_id, n_cluster);
    cluster[n_cluster] = '\0';
    memcpy(signature, c1 + 1, n_sig);
    signature[n_sig] = '\0';
    memcpy(place, c2 + 1, n_place + 1);
    return zl_valid_sol_cluster(cluster) && zl_valid_sol_signature(signature) && zl_valid_sol_place(place) ? 0 : -1;
}

/* A Solana deposit id: three fields, each valid, and nothing else. */
static bool valid_sol_deposit_id(const char *s)
{
    char cluster[ZL_EVENT_CHAIN_SIZE], sig[ZL_EVENT_TXID_SIZE], place[ZL_EVENT_PLACE_SIZE];
    return zl_sol_deposit_id_parse(s, cluster, sig, place) == 0;
}

bool zl_valid_deposit_id(const char *s)
{
    uint64_t chain;
    uint32_t index;
    char hash[HASH32_LEN + 1];
    return zl_deposit_id_parse(s, &chain, hash, sizeof(hash), &index) == 0 || valid_sol_deposit_id(s);
}

/* ---------------------------------------------------------- field table */

enum field_type { FT_STRING, FT_U32, FT_U64 };

/* Which chain family's events carry a field (a bit mask). */
enum { FAM_EVM = 1, FAM_SOL = 2, FAM_ALL = FAM_EVM | FAM_SOL };

struct field_def {
    const char *name;          /* JSON key */
    zl_topic_kind since;       /* first kind that carries the field */
    unsigned fam;              /* FAM_*: the families whose events carry it */
    enum field_type type;
    size_t offset;             /* offsetof(struct zl_event, member) */
    size_t size;               /* sizeof the member (strings: incl. NUL) */
    uint64_t min, max;         /* integers: accepted range */
    bool (*valid)(const char *s); /* strings: the format check */
    const char *expect;        /* what a good value is, for error messages */
};

#define MEMBER_SIZE(m) sizeof(((struct zl_event *)0)->m)
#define STR_FIELD(m, since, fam, fn, expect)                                   \
    {#m, since, fam, FT_STRING, offsetof(struct zl_event, m), MEMBER_SIZE(m), 0, 0, fn, expect}
#define INT_FIELD(m, since, fam, type, lo, hi, expect)                        \
    {#m, since, fam, type, offsetof(struct zl_event, m), MEMBER_SIZE(m), lo, hi, NULL, expect}

#define EXPECT_UUID "a lowercase UUID string (8-4-4-4-12 hex digits)"
#define EXPECT_HASH "a string of 0x and 64 lowercase hex digits"
#define EXPECT_ADDRESS "an address string of 0x and 40 hex digits"
#define EXPECT_SOL_SIG "a Solana signature: base58 of 64 bytes"
#define EXPECT_SOL_KEY "a Solana address: base58 of 32 bytes"
#define EXPECT_UINT256                                                         \
    "a decimal string of digits (an unsigned integer below 2^256, no leading zeros)"

/* The canonical key order of the encoding: the order of this table. A field
 * whose form differs by family has one row per family, side by side. */
static const struct field_def fields[] = {
    STR_FIELD(schema, ZL_TOPIC_DETECTED, FAM_ALL, valid_schema,
              "a schema id string such as \"zl.deposits.detected/v1\""),
    STR_FIELD(event_id, ZL_TOPIC_DETECTED, FAM_ALL, zl_valid_uuid, EXPECT_UUID),
    STR_FIELD(deposit_id, ZL_TOPIC_DETECTED, FAM_ALL, zl_valid_deposit_id,
              "a string \"<chain_id>:<tx_hash>:<log_index>\" (Solana: \"<chain>:<tx_hash>:<instruction>\")"),
    INT_FIELD(chain_id, ZL_TOPIC_DETECTED, FAM_EVM, FT_U64, 1, ZL_JSON_SAFE_INT_MAX,
              "a JSON integer from 1 to 9007199254740991"),
    STR_FIELD(chain, ZL_TOPIC_DETECTED, FAM_SOL, zl_valid_sol_cluster,
              "a Solana cluster name: a lowercase letter, then up to 30 of [a-z0-9-]"),
    STR_FIELD(tx_hash, ZL_TOPIC_DETECTED, FAM_EVM, zl_valid_hash32, EXPECT_HASH),
    STR_FIELD(tx_hash, ZL_TOPIC_DETECTED, FAM_SOL, zl_valid_sol_signature, EXPECT_SOL_SIG),
    INT_FIELD(log_index, ZL_TOPIC_DETECTED, FAM_EVM, FT_U32, 0, UINT32_MAX,
              "a JSON integer from 0 to 4294967295"),
    STR_FIELD(instruction, ZL_TOPIC_DETECTED, FAM_SOL, zl_valid_sol_place,
              "an instruction's place string, \"N\" or \"N.M\" with each part 0 to 255"),
    INT_FIELD(block_number, ZL_TOPIC_DETECTED, FAM_ALL, FT_U64, 0, ZL_JSON_SAFE_INT_MAX,
              "a JSON integer from 0 to 9007199254740991"),
    STR_FIELD(block_hash, ZL_TOPIC_DETECTED, FAM_EVM, zl_valid_hash32, EXPECT_HASH),
    STR_FIELD(token, ZL_TOPIC_DETECTED, FAM_EVM, zl_valid_address, EXPECT_ADDRESS),
    STR_FIELD(token, ZL_TOPIC_DETECTED, FAM_SOL, zl_valid_sol_key, EXPECT_SOL_KEY),
    STR_FIELD(from, ZL_TOPIC_DETECTED, FAM_EVM, zl_valid_address, EXPECT_ADDRESS),
    STR_FIELD(from, ZL_TOPIC_DETECTED, FAM_SOL, zl_valid_sol_key, EXPECT_SOL_KEY),
    STR_FIELD(to, ZL_TOPIC_DETECTED, FAM_EVM, zl_valid_address, EXPECT_ADDRESS),
    STR_FIELD(to, ZL_TOPIC_DETECTED, FAM_SOL, zl_valid_sol_key, EXPECT_SOL_KEY),
    STR_FIELD(user_id, ZL_TOPIC_DETECTED, FAM_ALL, zl_valid_user_id,
              "a string of 1 to 64 characters from [A-Za-z0-9_.:-]"),
    STR_FIELD(amount, ZL_TOPIC_DETECTED, FAM_ALL, zl_valid_uint256_dec, EXPECT_UINT256),
    STR_FIELD(occurred_at, ZL_TOPIC_DETECTED, FAM_ALL, zl_valid_rfc3339_utc,
              "an RFC 3339 UTC time string \"YYYY-MM-DDTHH:MM:SS[.fraction]Z\""),
    INT_FIELD(confirmations, ZL_TOPIC_VERIFIED, FAM_ALL, FT_U32, 0, UINT32_MAX,
              "a JSON integer from 0 to 4294967295"),
    STR_FIELD(metadata_cid, ZL_TOPIC_PINNED, FAM_ALL, zl_valid_cid,
              "a CIDv1 base32 string ('b' then [a-z2-7], 10 to 120 characters)"),
    STR_FIELD(token_uri, ZL_TOPIC_PINNED, FAM_ALL, valid_token_uri,
              "a string \"ipfs://\" followed by a CIDv1 base32"),
    STR_FIELD(mint_tx_hash, ZL_TOPIC_MINTED, FAM_EVM, zl_valid_hash32, EXPECT_HASH),
    STR_FIELD(mint_tx_hash, ZL_TOPIC_MINTED, FAM_SOL, zl_valid_sol_signature, EXPECT_SOL_SIG),
    STR_FIELD(token_id, ZL_TOPIC_MINTED, FAM_ALL, zl_valid_uint256_dec, EXPECT_UINT256),
    STR_FIELD(nft_contract, ZL_TOPIC_MINTED, FAM_EVM, zl_valid_address, EXPECT_ADDRESS),
    STR_FIELD(nft_contract, ZL_TOPIC_MINTED, FAM_SOL, zl_valid_sol_key, EXPECT_SOL_KEY),
    STR_FIELD(credit_eggs, ZL_TOPIC_CREDITED, FAM_ALL, zl_valid_uint256_dec, EXPECT_UINT256),
    STR_FIELD(credit_id, ZL_TOPIC_CREDITED, FAM_ALL, zl_valid_uuid, EXPECT_UUID),
    STR_FIELD(rate, ZL_TOPIC_CREDITED, FAM_ALL, zl_valid_rate,
              "a decimal string (digits, optionally one '.' and more digits)"),
};
#define FIELDS_COUNT (sizeof(fields) / sizeof(fields[0]))

bool zl_event_is_solana(const struct zl_event *ev)
{
    ZL_ASSERT(ev != NULL);
    return ev->chain[0] != '\0';
}

static unsigned event_fam(const struct zl_event *ev)
{
    return zl_event_is_solana(ev) ? FAM_SOL : FAM_EVM;
}

/* Whether an event of this kind and family carries field f. */
static bool carries(const struct field_def *f, zl_topic_kind kind, unsigned fam)
{
    return f->since <= kind && (f->fam & fam) != 0;
}

static char *field_str(struct zl_event *ev, const struct field_def *f)
{
    return (char *)ev + f->offset;
}

static const char *field_cstr(const struct zl_event *ev, const struct field_def *f)
{
    return (const char *)ev + f->offset;
}

static uint64_t field_int(const struct zl_event *ev, const struct field_def *f)
{
    if (f->type == FT_U32) {
        uint32_t v;
        memcpy(&v, (const char *)ev + f->offset, sizeof(v));
        return v;
    }
    uint64_t v;
    memcpy(&v, (const char *)ev + f->offset, sizeof(v));
    return v;
}

static void set_field_int(struct zl_event *ev, const struct field_def *f, uint64_t v)
{
    if (f->type == FT_U32) {
        uint32_t v32 = (uint32_t)v;
        memcpy((char *)ev + f->offset, &v32, sizeof(v32));
    } else {
        memcpy((char *)ev + f->offset, &v, sizeof(v));
    }
}

/* --------------------------------------------------------------- errors */

__attribute__((format(printf, 3, 4)))
static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr != NULL && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Longest piece of a bad value quoted in an error: enough to recognise it,
 * short enough that the field name and the expectation still fit. */
#define EXCERPT_CHARS_MAX 80

/* Copies the start of a bad value for an error message, with anything that
 * would confuse a log line or a Kafka header (control bytes, non-ASCII,
 * quotes, backslashes) shown as '?'. */
static const char *excerpt(char *out, size_t out_size, const char *s)
{
    ZL_ASSERT(out_size > EXCERPT_CHARS_MAX + 3);
    size_t i = 0;
    for (; s[i] != '\0' && i < EXCERPT_CHARS_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    size_t n = i;
    if (s[i] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static const char *json_type_phrase(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "a number";
    case JSON_REAL: return "a number with a fraction or exponent";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON type";
}

/* ----------------------------------------------------------- validation */

/* Checks one field of an event whose strings are known NUL-terminated. */
static int check_field_value(const struct zl_event *ev, const struct field_def *f,
                             char *errstr, size_t errstr_size)
{
    if (f->type == FT_STRING) {
        const char *s = field_cstr(ev, f);
        if (!f->valid(s)) {
            char quoted[EXCERPT_CHARS_MAX + 4];
            return fail(errstr, errstr_size, "field \"%s\": expected %s, got \"%s\"",
                        f->name, f->expect, excerpt(quoted, sizeof(quoted), s));
        }
        return 0;
    }
    uint64_t v = field_int(ev, f);
    if (v < f->min || v > f->max)
        return fail(errstr, errstr_size, "field \"%s\": expected %s, got %" PRIu64,
                    f->name, f->expect, v);
    return 0;
}

/* The checks that span fields; run after every field passed on its own. */
static int check_cross_fields(const struct zl_event *ev, char *errstr, size_t errstr_size)
{
    char quoted[EXCERPT_CHARS_MAX + 4];
    const char *schema = zl_topic_kind_schema(ev->kind);
    if (strcmp(ev->schema, schema) != 0)
        return fail(errstr, errstr_size,
                    "field \"schema\": expected \"%s\" for this event's kind, got \"%s\"",
                    schema, excerpt(quoted, sizeof(quoted), ev->schema));

    char want[sizeof(ev->deposit_id)];
    int rc;
    if (zl_event_is_solana(ev)) {
        if (ev->chain_id != 0)
            return fail(errstr, errstr_size,
                        "field \"chain_id\": a Solana event (field \"chain\" set) carries no chain_id, got %" PRIu64,
                        ev->chain_id);
        rc = zl_sol_deposit_id_format(want, sizeof(want), ev->chain, ev->tx_hash, ev->instruction);
    } else {
        rc = zl_deposit_id_format(want, sizeof(want), ev->chain_id, ev->tx_hash, ev->log_index);
    }
    ZL_ASSERT(rc == 0); /* its parts were checked already */
    if (strcmp(ev->deposit_id, want) != 0)
        return fail(errstr, errstr_size,
                    "field \"deposit_id\": \"%s\" does not match %s, which make \"%s\"",
                    excerpt(quoted, sizeof(quoted), ev->deposit_id),
                    zl_event_is_solana(ev) ? "chain, tx_hash and instruction" : "chain_id, tx_hash and log_index",
                    want);

    if (ev->kind >= ZL_TOPIC_PINNED) {
        size_t scheme_len = sizeof(IPFS_SCHEME) - 1;
        if (strcmp(ev->token_uri + scheme_len, ev->metadata_cid) != 0)
            return fail(errstr, errstr_size,
                        "field \"token_uri\": expected \"ipfs://\" + metadata_cid, got \"%s\"",
                        excerpt(quoted, sizeof(quoted), ev->token_uri));
    }
    return 0;
}

int zl_event_validate(const struct zl_event *ev, char *errstr, size_t errstr_size)
{
    ZL_ASSERT(ev != NULL);
    if (!kind_is_message(ev->kind))
        return fail(errstr, errstr_size,
                    "event kind %d is not a message kind (ZL_TOPIC_DETECTED..ZL_TOPIC_CREDITED)",
                    (int)ev->kind);
    if (memchr(ev->chain, '\0', sizeof(ev->chain)) == NULL)
        return fail(errstr, errstr_size, "field \"chain\": not NUL-terminated within its %zu-byte buffer",
                    sizeof(ev->chain));
    unsigned fam = event_fam(ev);
    for (size_t i = 0; i < FIELDS_COUNT; i++) {
        const struct field_def *f = &fields[i];
        if (!carries(f, ev->kind, fam))
            continue;
        if (f->type == FT_STRING && memchr(field_cstr(ev, f), '\0', f->size) == NULL)
            return fail(errstr, errstr_size,
                        "field \"%s\": not NUL-terminated within its %zu-byte buffer",
                        f->name, f->size);
        if (check_field_value(ev, f, errstr, errstr_size) != 0)
            return -1;
    }
    return check_cross_fields(ev, errstr, errstr_size);
}

/* --------------------------------------------------------------- decode */

static int decode_field(const json_t *obj, const struct field_def *f, struct zl_event *out,
                        char *errstr, size_t errstr_size)
{
    const json_t *v = json_object_get(obj, f->name);
    if (v == NULL)
        return fail(errstr, errstr_size, "field \"%s\": missing; %s requires it", f->name,
                    out->schema);

    if (f->type == FT_STRING) {
        if (!json_is_string(v))
            return fail(errstr, errstr_size, "field \"%s\": expected %s, got %s", f->name,
                        f->expect, json_type_phrase(v));
        size_t len = json_string_length(v);
        if (len >= f->size)
            return fail(errstr, errstr_size,
                        "field \"%s\": expected %s, got a string of %zu bytes", f->name,
                        f->expect, len);
        /* jansson refuses "\u0000" without JSON_ALLOW_NUL, so len is also
         * the C string's length. */
        memcpy(field_str(out, f), json_string_value(v), len + 1);
        return check_field_value(out, f, errstr, errstr_size);
    }

    if (!json_is_integer(v))
        return fail(errstr, errstr_size, "field \"%s\": expected %s, got %s", f->name, f->expect,
                    json_type_phrase(v));
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < f->min || (uint64_t)n > f->max)
        return fail(errstr, errstr_size, "field \"%s\": expected %s, got %" JSON_INTEGER_FORMAT,
                    f->name, f->expect, n);
    set_field_int(out, f, (uint64_t)n);
    return 0;
}

/* Reads `schema` first: it says which fields must follow. */
static int decode_schema(zl_topic_kind expected_kind, const json_t *obj, struct zl_event *out,
                         char *errstr, size_t errstr_size)
{
    char quoted[EXCERPT_CHARS_MAX + 4];
    const json_t *v = json_object_get(obj, "schema");
    if (v == NULL)
        return fail(errstr, errstr_size,
                    "field \"schema\": missing; every message needs it to say what it is");
    if (!json_is_string(v))
        return fail(errstr, errstr_size,
                    "field \"schema\": expected a schema id string, got %s", json_type_phrase(v));
    const char *schema = json_string_value(v);
    zl_topic_kind kind;
    if (zl_topic_kind_from_schema(schema, &kind) != 0)
        return fail(errstr, errstr_size,
                    "field \"schema\": unknown schema \"%s\"; this build reads "
                    "zl.deposits.detected/v1, zl.deposits.verified/v1, zl.nft.pinned/v1, "
                    "zl.nft.minted/v1 and zl.credits.applied/v1",
                    excerpt(quoted, sizeof(quoted), schema));
    if (expected_kind != ZL_TOPIC_ANY && kind != expected_kind)
        return fail(errstr, errstr_size,
                    "field \"schema\": this topic carries \"%s\", got \"%s\"",
                    zl_topic_kind_schema(expected_kind), schema);
    out->kind = kind;
    memcpy(out->schema, schema, strlen(schema) + 1); /* a known id: fits */
    return 0;
}

static int decode_object(zl_topic_kind expected_kind, const json_t *obj, struct zl_event *out,
                         char *errstr, size_t errstr_size)
{
    if (decode_schema(expected_kind, obj, out, errstr, errstr_size) != 0)
        return -1;
    /* The family is read first: it says which form the other fields take.
     * A message naming both would be read differently by different readers. */
    unsigned fam = json_object_get(obj, "chain") != NULL ? FAM_SOL : FAM_EVM;
    if (fam == FAM_SOL && json_object_get(obj, "chain_id") != NULL)
        return fail(errstr, errstr_size,
                    "fields \"chain\" and \"chain_id\": a message is of one chain family, "
                    "EVM (chain_id) or Solana (chain), not both");
    for (size_t i = 0; i < FIELDS_COUNT; i++) {
        const struct field_def *f = &fields[i];
        if (!carries(f, out->kind, fam) || strcmp(f->name, "schema") == 0)
            continue;
        if (decode_field(obj, f, out, errstr, errstr_size) != 0)
            return -1;
    }
    return check_cross_fields(out, errstr, errstr_size);
}

int zl_event_decode(zl_topic_kind expected_kind, const void *buf, size_t len,
                    struct zl_event *out, char *errstr, size_t errstr_size)
{
    ZL_ASSERT(out != NULL);
    ZL_ASSERT(buf != NULL || len == 0);
    ZL_ASSERT(expected_kind == ZL_TOPIC_ANY || kind_is_message(expected_kind));
    memset(out, 0, sizeof(*out));

    if (len == 0)
        return fail(errstr, errstr_size, "empty message: expected a JSON object");
    if (len > ZL_EVENT_JSON_MAX_BYTES)
        return fail(errstr, errstr_size,
                    "message is %zu bytes, over the %d-byte limit (ZL_EVENT_JSON_MAX_BYTES)",
                    len, ZL_EVENT_JSON_MAX_BYTES);

    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(errstr, errstr_size, "invalid JSON at line %d, column %d: %s", jerr.line,
                    jerr.column, jerr.text);

    int rc;
    if (!json_is_object(root))
        rc = fail(errstr, errstr_size, "expected a JSON object, got %s", json_type_phrase(root));
    else
        rc = decode_object(expected_kind, root, out, errstr, errstr_size);
    json_decref(root);
    root = NULL;

    if (rc != 0)
        memset(out, 0, sizeof(*out)); /* never half an event */
    return rc;
}

/* --------------------------------------------------------------- encode */

/* Appends to a fixed buffer, counting what would have been written even
 * past its end, so one pass both writes and measures. */
struct writer {
    char *buf;
    size_t cap;
    size_t len;
};

static void put(struct writer *w, const char *s, size_t n)
{
    if (w->len + n <= w->cap)
        memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_str(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

/* Writes a JSON string. Every string field's format allows only printable
 * ASCII without '"' or '\\', so nothing needs escaping; validation has run,
 * so anything else is a bug in this file. */
static void put_json_string(struct writer *w, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        ZL_ASSERT(c >= 0x20 && c < 0x7f && c != '"' && c != '\\');
    }
    put(w, "\"", 1);
    put(w, s, n);
    put(w, "\"", 1);
}

int zl_event_encode(const struct zl_event *ev, char *buf, size_t buf_size,
                    size_t *len_out, char *errstr, size_t errstr_size)
{
    ZL_ASSERT(ev != NULL && len_out != NULL);
    ZL_ASSERT(buf != NULL || buf_size == 0);
    if (zl_event_validate(ev, errstr, errstr_size) != 0)
        return -1;

    struct writer w = {buf, buf_size, 0};
    put(&w, "{", 1);
    bool first = true;
    unsigned fam = event_fam(ev);
    for (size_t i = 0; i < FIELDS_COUNT; i++) {
        const struct field_def *f = &fields[i];
        if (!carries(f, ev->kind, fam))
            continue;
        if (!first)
            put(&w, ",", 1);
        first = false;
        put(&w, "\"", 1);
        put_str(&w, f->name);
        put(&w, "\":", 2);
        if (f->type == FT_STRING) {
            put_json_string(&w, field_cstr(ev, f));
        } else {
            char digits[ZL_INT64_DEC_SIZE]; /* UINT64_MAX has 20 digits */
            int n = snprintf(digits, sizeof(digits), "%" PRIu64, field_int(ev, f));
            ZL_ASSERT(n > 0 && (size_t)n < sizeof(digits));
            put(&w, digits, (size_t)n);
        }
    }
    put(&w, "}", 1);

    *len_out = w.len;
    if (w.len + 1 > buf_size)
        return fail(errstr, errstr_size,
                    "output buffer of %zu bytes is too small: the %s event needs %zu bytes "
                    "plus a NUL (ZL_EVENT_ENCODED_MAX_BYTES always suffices)",
                    buf_size, ev->schema, w.len);
    buf[w.len] = '\0';
    return 0;
}

/* ------------------------------------------------------ init and derive */

static void set_header(struct zl_event *ev, zl_topic_kind kind)
{
    const char *schema = zl_topic_kind_schema(kind);
    size_t n = strlen(schema) + 1;
    ZL_ASSERT(n <= sizeof(ev->schema));
    ev->kind = kind;
    memcpy(ev->schema, schema, n);

    uuid_t id;
    uuid_generate(id);
    _Static_assert(sizeof(ev->event_id) >= 37, "uuid_unparse writes 36 chars + NUL");
    uuid_unparse_lower(id, ev->event_id);

    zl_rfc3339_now(ev->occurred_at, sizeof(ev->occurred_at));
}

void zl_event_init(struct zl_event *out, zl_topic_kind kind)
{
    ZL_ASSERT(out != NULL && kind_is_message(kind));
    memset(out, 0, sizeof(*out));
    set_header(out, kind);
}

void zl_event_derive(struct zl_event *out, const struct zl_event *in, zl_topic_kind next_kind)
{
    ZL_ASSERT(out != NULL && in != NULL);
    ZL_ASSERT(kind_is_message(in->kind) && kind_is_message(next_kind));
    zl_topic_kind carried = in->kind < next_kind ? in->kind : next_kind;

    /* Built aside, so out may be in. */
    struct zl_event next;
    memset(&next, 0, sizeof(next));
    unsigned fam = event_fam(in);
    for (size_t i = 0; i < FIELDS_COUNT; i++) {
        const struct field_def *f = &fields[i];
        if (carries(f, carried, fam))
            memcpy((char *)&next + f->offset, (const char *)in + f->offset, f->size);
    }
    set_header(&next, next_kind); /* kind, schema, event_id, occurred_at */
    *out = next;
}

bool zl_event_equal(const struct zl_event *a, const struct zl_event *b)
{
    ZL_ASSERT(a != NULL && b != NULL);
    if (a->kind != b->kind || !kind_is_message(a->kind) || zl_event_is_solana(a) != zl_event_is_solana(b))
        return false;
    unsigned fam = event_fam(a);
    for (size_t i = 0; i < FIELDS_COUNT; i++) {
        const struct field_def *f = &fields[i];
        if (!carries(f, a->kind, fam))
            continue;
        if (f->type == FT_STRING) {
            if (strncmp(field_cstr(a, f), field_cstr(b, f), f->size) != 0)
                return false;
        } else if (field_int(a, f) != field_int(b, f)) {
            return false;
        }
    }
    return true;
}
