#include "facts.h"
#include "pg.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One compared text fact: where it sits in both structs, from which message
 * kind on it is carried, and how it compares. */
struct fact_field {
    const char *name;
    size_t facts_off;
    size_t event_off;
    size_t size; /* the same buffer size in both structs (asserted below) */
    zl_topic_kind from_kind;
    bool address;   /* compared without regard to case */
    bool result;    /* a stage result: compared only once the row holds it */
};

#define FIELD(n, fm, em, kind, addr, res)                                                                         \
    {n, offsetof(struct zl_facts, fm), offsetof(struct zl_event, em), sizeof(((struct zl_facts *)0)->fm), kind,   \
     addr, res}

/* In the order zl_facts_compare reports them: the first differing wins. */
static const struct fact_field fields[] = {
    FIELD("tx_hash", tx_hash, tx_hash, ZL_TOPIC_DETECTED, false, false),
    FIELD("token", token, token, ZL_TOPIC_DETECTED, true, false),
    FIELD("from", from, from, ZL_TOPIC_DETECTED, true, false),
    FIELD("to", to, to, ZL_TOPIC_DETECTED, true, false),
    FIELD("user_id", user_id, user_id, ZL_TOPIC_DETECTED, false, false),
    FIELD("amount", amount, amount, ZL_TOPIC_DETECTED, false, false),
    FIELD("metadata_cid", metadata_cid, metadata_cid, ZL_TOPIC_PINNED, false, true),
    FIELD("token_uri", token_uri, token_uri, ZL_TOPIC_PINNED, false, true),
    FIELD("nft_contract", nft_contract, nft_contract, ZL_TOPIC_MINTED, true, true),
    FIELD("token_id", token_id, token_id, ZL_TOPIC_MINTED, false, true),
    FIELD("mint_tx_hash", mint_tx_hash, mint_tx_hash, ZL_TOPIC_MINTED, false, true),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Both structs size each fact alike, so a copy never truncates. */
_Static_assert(sizeof(((struct zl_facts *)0)->metadata_cid) == sizeof(((struct zl_event *)0)->metadata_cid),
               "metadata_cid sizes");
_Static_assert(sizeof(((struct zl_facts *)0)->token_uri) == sizeof(((struct zl_event *)0)->token_uri),
               "token_uri sizes");
_Static_assert(sizeof(((struct zl_facts *)0)->user_id) == sizeof(((struct zl_event *)0)->user_id), "user_id sizes");

void zl_facts_from_result(const PGresult *r, int row, int col, struct zl_facts *out)
{
    memset(out, 0, sizeof(*out));
    out->chain_id = strtoull(PQgetvalue(r, row, col), NULL, 10);
    out->log_index = (uint32_t)strtoul(PQgetvalue(r, row, col + 2), NULL, 10);
    static const int text_cols[] = {1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    char *dst[] = {out->tx_hash,      out->token,     out->from,         out->to,       out->user_id,     out->amount,
                   out->metadata_cid, out->token_uri, out->nft_contract, out->token_id, out->mint_tx_hash};
    size_t sizes[] = {sizeof(out->tx_hash),      sizeof(out->token),     sizeof(out->from),
                      sizeof(out->to),           sizeof(out->user_id),   sizeof(out->amount),
                      sizeof(out->metadata_cid), sizeof(out->token_uri), sizeof(out->nft_contract),
                      sizeof(out->token_id),     sizeof(out->mint_tx_hash)};
    for (size_t i = 0; i < sizeof(text_cols) / sizeof(text_cols[0]); i++)
        zl_pg_copy_value(dst[i], sizes[i], r, row, col + text_cols[i]);
}

int zl_facts_compare(const struct zl_facts *f, const struct zl_event *ev, char *field, char *why, size_t why_size)
{
    char msg_num[ZL_INT64_DEC_SIZE], row_num[ZL_INT64_DEC_SIZE];
    const char *name = NULL, *says = NULL, *holds = NULL;
    if (ev->chain_id != f->chain_id) {
        snprintf(msg_num, sizeof(msg_num), "%" PRIu64, ev->chain_id);
        snprintf(row_num, sizeof(row_num), "%" PRIu64, f->chain_id);
        name = "chain_id", says = msg_num, holds = row_num;
    } else if (ev->log_index != f->log_index) {
        snprintf(msg_num, sizeof(msg_num), "%" PRIu32, ev->log_index);
        snprintf(row_num, sizeof(row_num), "%" PRIu32, f->log_index);
        name = "log_index", says = msg_num, holds = row_num;
    }
    for (size_t i = 0; name == NULL && i < NFIELDS; i++) {
        const struct fact_field *ff = &fields[i];
        const char *fv = (const char *)f + ff->facts_off;
        const char *ev_v = (const char *)ev + ff->event_off;
        if (ev->kind < ff->from_kind || (ff->result && fv[0] == '\0'))
            continue;
        bool same = ff->address ? strcasecmp(fv, ev_v) == 0 : strcmp(fv, ev_v) == 0;
        if (!same)
            name = ff->name, says = ev_v, holds = fv;
    }
    if (name == NULL)
        return 0;
    if (field != NULL)
        snprintf(field, ZL_FACTS_FIELD_SIZE, "%s", name);
    snprintf(why, why_size, "field %s differs: message says %s, the row says %s", name, says, holds);
    return -1;
}

void zl_facts_apply(const struct zl_facts *f, struct zl_event *ev)
{
    ev->chain_id = f->chain_id;
    ev->log_index = f->log_index;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct fact_field *ff = &fields[i];
        const char *fv = (const char *)f + ff->facts_off;
        if (ev->kind < ff->from_kind || (ff->result && fv[0] == '\0'))
            continue;
        memcpy((char *)ev + ff->event_off, fv, ff->size);
    }
}
