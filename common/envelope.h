/* envelope.h: the message envelope every stage reads and writes
 * (docs/architecture.md §2-§3), one JSON object per Kafka message value.
 *
 * A message is decoded into a plain struct of fixed-size buffers: no
 * allocation, so nothing to free and nothing to leak, and a struct can be
 * copied with `=`. Decode checks every field (type, format, and that
 * deposit_id agrees with chain_id, tx_hash and log_index); encode checks them
 * again before it writes (TigerStyle: assert on both sides of the boundary).
 * A message that fails either check is poison (ZL_POISON): DLQ at once.
 *
 * The five kinds form a cumulative chain: each later kind carries every field
 * of the earlier ones plus its own. One JSON Schema per kind lives in
 * schemas/<suffix>.schema.json; tests/integration/test_schemas.py checks that
 * what this encoder writes passes those schemas, and that the schemas and this
 * decoder reject the same broken messages.
 *
 * Unknown extra fields are ignored on decode (forward compatibility: a newer
 * producer may add fields) and are not re-encoded.
 *
 * @locality any thread: every function here is reentrant and touches only
 *           its arguments (jansson and libuuid are thread-safe for this use).
 */
#ifndef ZL_ENVELOPE_H
#define ZL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hex.h"
#include "zl.h"

/* Largest message value decode accepts. Our biggest event encodes to well
 * under 2 KiB; the headroom is for fields a newer producer may add. Anything
 * larger is poison, and the bound keeps one bad message from costing a large
 * parse. */
#define ZL_EVENT_JSON_MAX_BYTES 65536

/* A buffer this large always holds zl_event_encode's output (including its
 * terminating NUL) for any event that passes zl_event_validate; a unit test
 * encodes an event with every field at its longest to prove it. */
#define ZL_EVENT_ENCODED_MAX_BYTES 2048

/* Largest chain_id and block_number accepted: 2^53 - 1, the largest integer
 * a JSON reader that holds numbers as doubles (JavaScript, jq) reads exactly.
 * Every real chain id and block number is far below it. */
#define ZL_JSON_SAFE_INT_MAX UINT64_C(9007199254740991)

/* Text sizes of the identifiers an event carries, NUL included.
 * ZL_DEPOSIT_ID_SIZE: "<chain_id>:<tx_hash>:<log_index>" is at most
 * 16 + 1 + 66 + 1 + 10 = 94 characters; 160 leaves room for a longer chain
 * id spelling without changing the wire format. ZL_UUID_TEXT_SIZE: a
 * lowercase UUID 8-4-4-4-12. ZL_USER_ID_SIZE: 1..64 characters. */
#define ZL_DEPOSIT_ID_SIZE 160
#define ZL_UUID_TEXT_SIZE 37
#define ZL_USER_ID_SIZE 65

/* Text sizes, NUL included, of fields that hold either chain family's form
 * (docs/architecture.md, "Solana"). ZL_EVENT_TXID_SIZE: an EVM hash is 66
 * characters, a Solana signature (base58 of 64 bytes) at most 88.
 * ZL_EVENT_ADDR_SIZE: an EVM address is 42, a Solana key (base58 of 32
 * bytes) at most 44. ZL_EVENT_CHAIN_SIZE: a Solana cluster name
 * ("mainnet-beta", "localnet"), 1..31 of [a-z0-9-] starting with a letter,
 * so never all digits like an EIP-155 chain id. ZL_EVENT_PLACE_SIZE: a
 * Solana instruction's place, "<top>" or "<top>.<inner>", each 0..255. */
#define ZL_EVENT_TXID_SIZE 90
#define ZL_EVENT_ADDR_SIZE 45
#define ZL_EVENT_CHAIN_SIZE 32
#define ZL_EVENT_PLACE_SIZE 8

/* What a message is, by its `schema` field. The order is the pipeline order
 * and matters: a kind carries every field of every kind before it.
 * ZL_TOPIC_ANY is not a message kind: it tells zl_event_decode to take the
 * kind from the message's own `schema` field. */
typedef enum zl_topic_kind {
    ZL_TOPIC_ANY = 0,
    ZL_TOPIC_DETECTED = 1, /* "zl.deposits.detected/v1" */
    ZL_TOPIC_VERIFIED = 2, /* "zl.deposits.verified/v1" + confirmations */
    ZL_TOPIC_PINNED = 3,   /* "zl.nft.pinned/v1"  + metadata_cid, token_uri */
    ZL_TOPIC_MINTED = 4,   /* "zl.nft.minted/v1"  + mint_tx_hash, token_id, nft_contract */
    ZL_TOPIC_CREDITED = 5, /* "zl.credits.applied/v1" + credit_eggs, credit_id, rate */
} zl_topic_kind;

#define ZL_TOPIC_KIND_FIRST ZL_TOPIC_DETECTED
#define ZL_TOPIC_KIND_LAST ZL_TOPIC_CREDITED

/* One event. Every string is NUL-terminated ASCII inside its buffer; the
 * sizes include the NUL. Fields a kind does not carry are empty strings or 0.
 * Owned by whoever declared it; nothing inside points elsewhere.
 *
 * Two chain families share the struct. An EVM event has chain_id > 0 and an
 * empty `chain`; a Solana event has `chain` set and chain_id 0. Where the
 * forms differ, the field comment says "EVM: ...; Solana: ...". Fields of
 * the other family are empty or 0 and are neither encoded nor compared. */
struct zl_event {
    zl_topic_kind kind;                     /* ZL_TOPIC_DETECTED..ZL_TOPIC_CREDITED; never ANY */
    char schema[48];                        /* zl_topic_kind_schema(kind), e.g. "zl.nft.pinned/v1" */
    char event_id[ZL_UUID_TEXT_SIZE];       /* this event's own id: lowercase UUID 8-4-4-4-12,
                                               new for every event, even of the same deposit */
    char deposit_id[ZL_DEPOSIT_ID_SIZE];    /* EVM: "<chain_id>:<tx_hash>:<log_index>"; Solana:
                                               "<chain>:<tx_hash>:<instruction>". The Kafka key
                                               and idempotency key; must agree with those fields */
    uint64_t chain_id;                      /* EVM: EIP-155 chain id, 1..ZL_JSON_SAFE_INT_MAX */
    char chain[ZL_EVENT_CHAIN_SIZE];        /* Solana: the cluster's name, as above */
    char tx_hash[ZL_EVENT_TXID_SIZE];       /* deposit transaction. EVM: "0x" + 64 lowercase hex;
                                               Solana: its first signature, base58 of 64 bytes */
    uint32_t log_index;                     /* EVM: index of the Transfer log in its block */
    char instruction[ZL_EVENT_PLACE_SIZE];  /* Solana: the transfer instruction's place, "2"
                                               (top level) or "2.0" (inner) */
    uint64_t block_number;                  /* EVM: block; Solana: slot. 0..ZL_JSON_SAFE_INT_MAX */
    char block_hash[ZL_HASH_HEX_SIZE];      /* EVM: that block's hash, "0x" + 64 lowercase hex: a
                                               later different hash at this number is a reorg.
                                               Solana: not carried (verify reads finality from
                                               the signature's status) */
    char token[ZL_EVENT_ADDR_SIZE];         /* EVM: ERC-20 contract, "0x" + 40 hex, any case, kept
                                               as given (EIP-55 checksums are not verified);
                                               Solana: the token's mint, base58 of 32 bytes */
    char from[ZL_EVENT_ADDR_SIZE];          /* EVM: Transfer sender; Solana: the wallet that
                                               signed the transfer (its authority). Address as
                                               for token. The receipt is minted to it */
    char to[ZL_EVENT_ADDR_SIZE];            /* recipient: our deposit address (Solana: the
                                               deposit token account) */
    char user_id[ZL_USER_ID_SIZE];          /* account credited: 1..64 of [A-Za-z0-9_.:-] */
    char amount[ZL_UINT256_DEC_SIZE];       /* token's smallest unit, decimal string of an
                                               unsigned integer < 2^256 (max 78 digits), no
                                               leading zeros except "0"; never a JSON number */
    char occurred_at[40];                   /* when this event was made: RFC 3339 UTC,
                                               "YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z" */
    /* ZL_TOPIC_VERIFIED and later */
    uint32_t confirmations;                 /* blocks on top of block_number when verified
                                               (Solana: slots) */
    /* ZL_TOPIC_PINNED and later */
    char metadata_cid[128];                 /* CIDv1 base32 of the NFT metadata: 'b' then
                                               [a-z2-7], 10..120 characters in all */
    char token_uri[140];                    /* exactly "ipfs://" + metadata_cid */
    /* ZL_TOPIC_MINTED and later */
    char mint_tx_hash[ZL_EVENT_TXID_SIZE];  /* mint transaction, as for tx_hash */
    char token_id[ZL_UINT256_DEC_SIZE];     /* NFT token id, decimal string like amount
                                               (Solana: each receipt is its own mint: "0") */
    char nft_contract[ZL_EVENT_ADDR_SIZE];  /* EVM: NFT contract address; Solana: the receipt's
                                               mint. As for token */
    /* ZL_TOPIC_CREDITED */
    char credit_eggs[ZL_UINT256_DEC_SIZE];  /* eggs credited, decimal string like amount,
                                               may be "0" */
    char credit_id[ZL_UUID_TEXT_SIZE];      /* ledger entry id: lowercase UUID */
    char rate[48];                          /* rate applied: digits, optionally one '.' and
                                               more digits; no leading zeros ("0.5", "12") */
};

/* True for a Solana event (chain set), false for an EVM one. */
bool zl_event_is_solana(const struct zl_event *ev);

/* The schema id of a kind ("zl.deposits.detected/v1"), or NULL for
 * ZL_TOPIC_ANY and values outside the enum. Static storage. */
const char *zl_topic_kind_schema(zl_topic_kind kind);

/* The topic name without its configurable prefix ("deposits.detected",
 * "deposits.verified", "nft.pinned", "nft.minted", "credits.applied"), also
 * the schema file's name (schemas/<suffix>.schema.json). NULL as above. */
const char *zl_topic_kind_suffix(zl_topic_kind kind);

/* Finds the kind whose schema id is exactly `schema`. Returns 0 and sets
 * *out, or -1 (and leaves *out alone) when no kind has that id. */
int zl_topic_kind_from_schema(const char *schema, zl_topic_kind *out);

/* Finds the kind whose suffix is exactly `suffix`; as above. */
int zl_topic_kind_from_suffix(const char *suffix, zl_topic_kind *out);

/* Writes prefix + suffix (e.g. "zl." + "nft.minted") into buf. Returns 0, or
 * -1 when kind is not a message kind or the name does not fit (buf then
 * holds a truncated, NUL-terminated string). */
int zl_topic_name(char *buf, size_t buf_size, const char *prefix, zl_topic_kind kind);

/* Writes "<chain_id>:<tx_hash>:<log_index>" into buf. Returns 0, or -1 when
 * chain_id is 0 or above ZL_JSON_SAFE_INT_MAX, tx_hash is not "0x" + 64
 * lowercase hex, or buf is too small (at least 95 bytes always suffices);
 * buf is then an empty string if buf_size > 0. */
int zl_deposit_id_format(char *buf, size_t buf_size, uint64_t chain_id,
                         const char *tx_hash, uint32_t log_index);

/* Parses a deposit id written by zl_deposit_id_format. Only the canonical
 * form is accepted (no leading zeros, lowercase hash), so parse and format
 * are exact inverses. Returns 0 and fills the outputs (tx_hash_size >= 67),
 * or -1 and leaves them unspecified. */
int zl_deposit_id_parse(const char *deposit_id, uint64_t *chain_id,
                        char *tx_hash, size_t tx_hash_size, uint32_t *log_index);

/* Field format checks, shared with other modules that take these values from
 * elsewhere (RPC replies, database rows). Each is true when the whole
 * NUL-terminated string s has the format documented on struct zl_event. */
bool zl_valid_uuid(const char *s);         /* lowercase 8-4-4-4-12 */
bool zl_valid_hash32(const char *s);       /* "0x" + 64 lowercase hex */
bool zl_valid_address(const char *s);      /* "0x" + 40 hex, any case */
bool zl_valid_user_id(const char *s);      /* 1..64 of [A-Za-z0-9_.:-] */
bool zl_valid_uint256_dec(const char *s);  /* canonical decimal < 2^256 */
bool zl_valid_rfc3339_utc(const char *s);  /* real date and time, 'Z' */
bool zl_valid_cid(const char *s);          /* CIDv1 base32 as above */
bool zl_valid_rate(const char *s);         /* "12", "0.005" */
bool zl_valid_sol_cluster(const char *s);  /* [a-z][a-z0-9-]{0,30} */
bool zl_valid_sol_signature(const char *s); /* base58 of exactly 64 bytes */
bool zl_valid_sol_key(const char *s);      /* base58 of exactly 32 bytes */
bool zl_valid_sol_place(const char *s);    /* "N" or "N.M", each 0..255, canonical */

/* Writes "<cluster>:<signature>:<place>" (a Solana deposit id) into buf.
 * Returns 0, or -1 when a part is not valid as above or buf is too small
 * (buf is then "" if buf_size > 0). */
int zl_sol_deposit_id_format(char *buf, size_t buf_size, const char *cluster, const char *signature,
                             const char *place);

/* Splits a Solana deposit id into its parts (buffers of ZL_EVENT_CHAIN_SIZE,
 * ZL_EVENT_TXID_SIZE and ZL_EVENT_PLACE_SIZE bytes at least). Returns 0, or
 * -1 when the id is not a valid Solana id (outputs then unspecified). */
int zl_sol_deposit_id_parse(const char *deposit_id, char *cluster, char *signature, char *place);

/* True when deposit_id is a well-formed id of either family: the EVM form
 * zl_deposit_id_parse reads, or the Solana form above. */
bool zl_valid_deposit_id(const char *deposit_id);

/* Decodes one message value (buf, len: not NUL-terminated; at most
 * ZL_EVENT_JSON_MAX_BYTES) into *out.
 *
 * expected_kind is the kind the caller's topic carries; a message whose
 * `schema` names another kind is rejected. ZL_TOPIC_ANY accepts any kind
 * (replay, the sweeper, tools). Duplicate keys are rejected (which one would
 * win is up to each reader, so the message is ambiguous); unknown keys are
 * ignored.
 *
 * Returns 0 with *out filled and valid (zl_event_validate would pass), or -1
 * with *out zeroed and errstr naming the field and the problem, e.g.
 * `field "amount": expected a decimal string of digits ..., got a number`.
 * A -1 here means the message is poison. */
int zl_event_decode(zl_topic_kind expected_kind, const void *buf, size_t len,
                    struct zl_event *out, char *errstr, size_t errstr_size);

/* Checks every field the event's kind carries, exactly as decode does, and
 * that schema matches kind, deposit_id matches chain_id/tx_hash/log_index
 * and token_uri is "ipfs://" + metadata_cid. Also checks every string field
 * is NUL-terminated inside its buffer. Fields the kind does not carry are
 * not looked at. Returns 0, or -1 with errstr naming the first bad field. */
int zl_event_validate(const struct zl_event *ev, char *errstr, size_t errstr_size);

/* Validates *ev, then writes it as canonical JSON: compact, keys in the
 * fixed order of struct zl_event (schema, event_id, deposit_id, chain_id,
 * ..., occurred_at, then the stage fields in pipeline order), only the
 * fields ev->kind carries, integers as JSON integers, everything else as
 * strings. The same event always encodes to the same bytes.
 *
 * On success returns 0, buf holds the JSON followed by a NUL, and *len_out
 * is its length without the NUL. Returns -1 with errstr set when the event
 * is invalid (*len_out untouched), or when buf_size is too small: then
 * *len_out is the length the JSON needs (a buffer of *len_out + 1 bytes
 * works) and buf's contents are unspecified. buf may be NULL when
 * buf_size is 0, to ask for the length. */
int zl_event_encode(const struct zl_event *ev, char *buf, size_t buf_size,
                    size_t *len_out, char *errstr, size_t errstr_size);

/* Starts a new event of `kind` (not ANY): zeroes *out, sets kind and schema,
 * a fresh event_id (libuuid) and occurred_at = now. The caller fills in the
 * deposit's facts (deposit_id with zl_deposit_id_format) before encoding. */
void zl_event_init(struct zl_event *out, zl_topic_kind kind);

/* Makes the event a stage publishes after handling `in`: every field of
 * `in` that next_kind carries is copied, fields next_kind adds beyond
 * in->kind are left empty/0 for the caller to fill, kind and schema become
 * next_kind's, event_id is new and occurred_at is now. out may equal in.
 * Both kinds must be message kinds (programmer error otherwise: asserts). */
void zl_event_derive(struct zl_event *out, const struct zl_event *in,
                     zl_topic_kind next_kind);

/* True when a and b have the same kind and equal values in every field that
 * kind carries (bytes after a string's NUL and fields the kind does not
 * carry are ignored). For tests and the fuzz target's round trip. */
bool zl_event_equal(const struct zl_event *a, const struct zl_event *b);

#endif /* ZL_ENVELOPE_H */
