/* ipfs.h: pins content to an ordered list of IPFS providers and checks that
 * it can be fetched back through gateways (docs/architecture.md §6).
 *
 * The caller computes the CID first (cid.h) and passes it in: every provider
 * must answer with exactly that CID, so a retry can never create a second,
 * different object, and a provider that stores something else is caught.
 *
 * Providers, tried in the configured order, each behind its own circuit
 * breaker (breaker.h), until pin_k of them hold the content:
 *   kubo    Kubo RPC: POST <url>/api/v0/add?cid-version=1&raw-leaves=true
 *           &pin=true&hash=sha2-256&chunker=size-262144, multipart "file".
 *   pinata  Pinata: POST <url>/pinning/pinFileToIPFS, Authorization: Bearer
 *           <JWT>, multipart "file", "pinataMetadata" {"name"} and
 *           "pinataOptions" {"cidVersion":1}; answer {IpfsHash,PinSize,
 *           Timestamp}. (pinJSONToIPFS is not used: Pinata serialises the
 *           JSON itself, so the stored bytes, and the CID, would not be ours.)
 *   psa     IPFS Pinning Service API: POST <url>/pins {"cid","name"} with a
 *           Bearer token, then GET <url>/pins/<requestid> until "pinned". It
 *           pins by CID, fetching the bytes from the IPFS network, so list it
 *           after a provider that holds the bytes.
 *
 * Outcome of one provider call and its class, decided where the answer is
 * seen (common/ipfs_kubo.c, ipfs_pinning.c; the table is
 * ipfs_attempt_class in ipfs_int.h):
 *   pinned, same CID           ZL_OK: counts towards pin_k
 *   another CID                ZL_PERMANENT: the message fails at once,
 *                              counted in zl_ipfs_cid_mismatch_total (an alert)
 *   unreachable, timeout, 5xx, ZL_OUTAGE: provider down, breaker failure,
 *     401/403, breaker open    next provider
 *   429, PSA pin not pinned    ZL_TRANSIENT: busy, next provider
 *     in time or "failed"
 *   other 4xx, bad answer      ZL_TRANSIENT: next provider
 * When fewer than pin_k providers pinned: ZL_OUTAGE when fewer than pin_k
 * providers are not ZL_OUTAGE (every provider down is an outage: never a
 * DLQ), ZL_TRANSIENT otherwise. Callers pass the class on unchanged.
 *
 * Retrievability: GET <gateway>/ipfs/<cid> on each gateway in order until one
 * returns bytes whose CID is the expected one. Every gateway unreachable or
 * 5xx: ZL_OUTAGE; any other failure on all of them (an error answer, bytes
 * that do not hash to the CID: the gateway's fault, the pin is checked
 * already): ZL_TRANSIENT.
 *
 * Health: one dependency "ipfs" in /health/ready, ok while at least pin_k
 * breakers are closed or half-open, its detail listing every provider's
 * breaker; gauges zl_breaker_state{stage,dependency="ipfs:<i>:<kind>"}.
 * Metrics: zl_ipfs_pins_total{stage,provider,outcome},
 * zl_ipfs_cid_mismatch_total{stage,provider},
 * zl_ipfs_gateway_checks_total{stage,gateway,outcome},
 * zl_ipfs_unpins_total{stage,provider,outcome}.
 *
 * Unpinning (zl_ipfs_unpin, common/ipfs_unpin.c), each provider through its
 * breaker, every provider asked:
 *   kubo    POST <url>/api/v0/pin/rm?arg=<cid>&recursive=true; an error
 *           answer whose Message starts "not pinned" means nothing to remove.
 *   pinata  DELETE <url>/pinning/unpin/<cid>, Authorization: Bearer <JWT>;
 *           404, or 400 with error.reason CURRENT_USER_HAS_NOT_PINNED_CID,
 *           means nothing to remove.
 *   psa     GET <url>/pins?cid=<cid>&status=queued,pinning,pinned,failed
 *           lists the pin requests for the CID; DELETE <url>/pins/<requestid>
 *           each of them (202); a 404 there is one removed meanwhile.
 * "Nothing to remove" is success, so a re-run after a crash is harmless.
 * Failures are classed as pins are (down: ZL_OUTAGE, 429 or an answer we
 * cannot read: ZL_TRANSIENT).
 *
 * Concurrency (zl_ipfs_pin_many, common/ipfs_par.c): a call's objects are
 * pinned and read back at once, each provider and each gateway a bulkhead of
 * its own: at most provider_concurrency_max requests in flight to one
 * provider and gateway_concurrency_max to one gateway, served by that many
 * threads of the call, each with its own curl handle. A provider that stalls
 * fills only its own bound; the other providers' pins and the read-backs of
 * objects already pinned go on. Per object the providers are still asked in
 * the configured order: the first pin_k at once, the next one only when one
 * of those fails (so no provider is asked more often than one at a time
 * would), a psa provider only after the earlier providers' calls for that
 * object have ended (it fetches the bytes from them). Classes, breakers and
 * the outage rule are as above, per provider.
 *
 * Ownership: struct zl_ipfs is created by zl_ipfs_new and freed by
 * zl_ipfs_free; it copies every option string (secrets are wiped on free).
 * @locality one call at a time (the stage's main thread): it reuses one
 * curl handle per provider and per worker slot. zl_ipfs_pin_many runs its
 * requests on threads of its own and returns only once they have ended;
 * the breaker callback and the metrics may run on those threads (both are
 * thread-safe: breaker.h, metrics.h).
 */
#ifndef ZL_IPFS_H
#define ZL_IPFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "zl.h"

struct zl_metrics;
struct zl_health;

/* Providers and gateways in one list: a handful in practice (seed 001 names
 * Pinata plus backups); more is a configuration mistake. */
#define ZL_IPFS_PROVIDERS_MAX 8
#define ZL_IPFS_GATEWAYS_MAX 8
/* Longest provider or gateway URL. */
#define ZL_IPFS_URL_MAX 512
/* Largest provider answer read: a Kubo add answer or a PinStatus is a few
 * hundred bytes; anything bigger is not an answer we understand. */
#define ZL_IPFS_RESPONSE_MAX_BYTES 65536
/* Objects one zl_ipfs_pin_many call pins: a Kubo provider gets them all in
 * one add request (one answer line each, ~130 bytes). */
#define ZL_IPFS_BATCH_MAX 100
/* NDJSON objects read from one Kubo add answer (one per added file). */
#define ZL_IPFS_KUBO_LINES_MAX (ZL_IPFS_BATCH_MAX + 16)
/* Highest bound of concurrent requests to one provider or one gateway
 * (ZL_IPFS_PROVIDER_CONCURRENCY_MAX, ZL_IPFS_GATEWAY_CONCURRENCY_MAX): a
 * thread each during a call; a poll batch is ZL_IPFS_BATCH_MAX objects. */
#define ZL_IPFS_CONCURRENCY_LIMIT 64
/* A CID as a provider writes it, with its NUL. */
#define ZL_IPFS_CID_TEXT_MAX 160
/* A Pinning Service API requestid as the service wrote it, NUL included.
 * The spec sets no length; services send UUIDs or CIDs, well under this. */
#define ZL_IPFS_PSA_REQUESTID_SIZE 160
/* Pin requests read from one Pinning Service API listing (its `limit`):
 * one CID has one or two (a retried pin makes another). */
#define ZL_IPFS_PSA_LIST_MAX 100

typedef enum zl_ipfs_kind {
    ZL_IPFS_KUBO = 0,
    ZL_IPFS_PINATA = 1,
    ZL_IPFS_PSA = 2,
} zl_ipfs_kind;

struct zl_ipfs_opts {
    const char *providers;        /* "kind=url,kind=url" in preference order; kind kubo|pinata|psa */
    const char *gateways;         /* "url,url"; "" allowed only without verify_retrieval */
    int pin_k;                    /* providers that must hold the content, 1..count */
    bool verify_retrieval;        /* fetch back through a gateway and compare */
    int64_t timeout_ms;           /* per provider request */
    int64_t connect_timeout_ms;   /* per connection */
    int64_t gateway_timeout_ms;   /* per gateway request */
    const char *pinata_jwt;       /* required when a pinata provider is listed; never logged */
    const char *psa_token;        /* required when a psa provider is listed; never logged */
    int64_t psa_poll_timeout_ms;  /* give up waiting for "pinned" after this */
    int64_t psa_poll_interval_ms; /* between status polls */
    struct zl_breaker_opts breaker; /* per provider; its callback fields are ignored */
    struct zl_metrics *metrics;   /* may be NULL; borrowed, must outlive the client */
    struct zl_health *health;     /* may be NULL; borrowed, must outlive the client */
    const char *stage;            /* label value, e.g. "ipfs-upload"; copied */
    int provider_concurrency_max; /* requests in flight to one provider, 1..ZL_IPFS_CONCURRENCY_LIMIT; 0: 1 */
    int gateway_concurrency_max;  /* requests in flight to one gateway, 1..ZL_IPFS_CONCURRENCY_LIMIT; 0: 1 */
};

struct zl_ipfs;

/* Parses the lists and sets up breakers and curl handles. Returns 0 and
 * *out, or -1 with errstr naming the bad option (an unknown kind, a URL that
 * is not http(s), a missing secret, pin_k above the provider count). */
int zl_ipfs_new(struct zl_ipfs **out, const struct zl_ipfs_opts *opts, char *errstr, size_t errstr_size);

/* Frees c and wipes its copies of the secrets. NULL is a no-op. */
void zl_ipfs_free(struct zl_ipfs *c);

/* Pins data[0..len) (name is a label shown by providers, e.g. a file name)
 * to pin_k providers, checking each answer against cid. Returns a class as
 * described above, with errstr naming the providers and their failures. */
zl_class zl_ipfs_pin(struct zl_ipfs *c, const void *data, size_t len, const char *name, const char *cid,
                     char *errstr, size_t errstr_size);

/* One object of zl_ipfs_pin_many. */
struct zl_ipfs_obj {
    const void *data;            /* borrowed, len bytes */
    size_t len;
    const char *name;            /* borrowed; unique within the call: Kubo's answer names each object by it */
    const char *cid;             /* borrowed; what the bytes must hash to */
    bool read_back;              /* in: once pinned, also zl_ipfs_verify it (a no-op when verification is off) */
    zl_class result;             /* out: as zl_ipfs_pin's return, or zl_ipfs_verify's when read_back */
    char error[ZL_ERRSTR_SIZE];  /* out: why, when result is not ZL_OK */
};

/* zl_ipfs_pin for objs[0..n), n <= ZL_IPFS_BATCH_MAX, each with its own
 * result, concurrently as described above: a Kubo provider gets every
 * object waiting for it in one add request (a request that fails fails each
 * of them); Pinata and PSA are asked one object per request, up to the
 * bound at once. Why: one round trip per batch instead of per document to a
 * provider that may be far away; on a local Kubo it measured 3.09 -> 2.19
 * ms wall and 1.93 -> 1.67 ms of Kubo's CPU per document. An object with
 * read_back is read back as soon as it is pinned (zl_ipfs_verify's rule,
 * each gateway up to its bound). Returns when every request has ended;
 * when a thread cannot be started, the calling thread serves that
 * provider or gateway itself. */
void zl_ipfs_pin_many(struct zl_ipfs *c, struct zl_ipfs_obj *objs, size_t n);

/* Fetches cid through the gateways and checks the bytes hash to cid and
 * equal data[0..len). ZL_OK when verification is off. */
zl_class zl_ipfs_verify(struct zl_ipfs *c, const void *data, size_t len, const char *cid, char *errstr,
                        size_t errstr_size);

/* Removes every pin of cid (a CIDv1 as zl_valid_cid accepts; anything
 * else is ZL_PERMANENT, since it would go into a URL) from every provider,
 * as described above. Returns ZL_OK when no provider holds a pin for cid
 * any more (removed now or none there); otherwise ZL_OUTAGE when a provider
 * that failed was down, ZL_TRANSIENT else, with errstr naming each provider
 * that failed. *removed (may be NULL) gets how many providers had a pin to
 * remove. Images are never passed here: every deposit's document shares
 * them (docs/architecture.md, "Orphaned pins"). */
zl_class zl_ipfs_unpin(struct zl_ipfs *c, const char *cid, int *removed, char *errstr, size_t errstr_size);

/* During an outage: ZL_OK once at least pin_k providers answer a cheap
 * request (Kubo /api/v0/version, Pinata /data/testAuthentication, PSA
 * GET /pins?limit=1) through their breakers; ZL_OUTAGE otherwise. */
zl_class zl_ipfs_probe(struct zl_ipfs *c, char *errstr, size_t errstr_size);

/* The admin API's breaker reset (runtime.h): closes, and forgets the
 * failures of, the breakers `dependency` names: NULL or "ipfs" every
 * provider's, "ipfs:<i>:<kind>" (as in /health/ready and zl_breaker_state)
 * that one. Returns how many were reset (0: the name matched none).
 * @locality the client's thread, like every call on it. */
int zl_ipfs_reset_breakers(struct zl_ipfs *c, const char *dependency);

/* Parsers of provider answers (external input: fuzzed). body need not be
 * NUL-terminated. Each returns 0 with the CID (and for PSA the request id and
 * status) copied out, or -1 with errstr. A CID is returned as text exactly as
 * the provider wrote it (checked only for length and characters), since the
 * caller compares it with its own. */
/* Kubo's add answer for the files names[0..n): cids[i] gets the Hash of the
 * line whose Name is names[i] ("" when no line names it). -1 when a line
 * is not a JSON object, a line with a Hash names a file we did not send (a
 * wrapping directory, a split), or names one twice. */
int zl_ipfs_parse_kubo_add(const char *body, size_t len, const char *const *names, size_t n,
                           char (*cids)[ZL_IPFS_CID_TEXT_MAX], char *errstr, size_t errstr_size);
int zl_ipfs_parse_pinata_pin(const char *body, size_t len, char *cid, size_t cid_size, char *errstr,
                             size_t errstr_size);
int zl_ipfs_parse_psa_status(const char *body, size_t len, char *requestid, size_t requestid_size, char *status,
                             size_t status_size, char *cid, size_t cid_size, char *errstr, size_t errstr_size);

/* A Pinning Service API listing ({"count", "results": [PinStatus]}): the
 * requestids of the results whose pin.cid is cid go to ids[0..*n) (at most
 * max), *count gets the service's count of every match. -1 with errstr when
 * the body is not such a listing or a requestid is not plain text (it goes
 * into a URL path). */
int zl_ipfs_parse_psa_list(const char *body, size_t len, const char *cid, char (*ids)[ZL_IPFS_PSA_REQUESTID_SIZE],
                           size_t max, size_t *n, long long *count, char *errstr, size_t errstr_size);

#endif /* ZL_IPFS_H */
