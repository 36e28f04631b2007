/* test_chain_batch.c: the batched chain reads (common/chain_batch.h) against
 * a JSON-RPC server in this process: each fact asked once, ZL_RPC_BATCH_MAX
 * calls per request, and the class of each outcome decided there: a call
 * answered with an error is transient, every endpoint down is an outage. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "canned_http.h"
#include "chain_batch.h"
#include "zltest.h"

/* A transaction hash whose last byte says what the fake node answers:
 * 01 a receipt, 02 no receipt (null), 03 an error. */
static void tx_hash(char *out, size_t out_size, unsigned i, unsigned kind)
{
    snprintf(out, out_size, "0x%060x%02x%02x", i, 0u, kind);
}

/* The fake node's answer to one call; head is its eth_blockNumber. */
static json_t *node_answer(const char *method, const json_t *params, const char *head)
{
    const char *arg = json_string_value(json_array_get(params, 0));
    char hash64[67];
    if (strcmp(method, "eth_blockNumber") == 0)
        return json_pack("{s:s}", "result", head);
    if (strcmp(method, "eth_getTransactionReceipt") == 0) {
        const char *kind = arg + strlen(arg) - 2;
        snprintf(hash64, sizeof(hash64), "0x%064d", 5);
        if (strcmp(kind, "01") == 0)
            return json_pack("{s:{s:s,s:s,s:s,s:[]}}", "result", "status", "0x1", "blockNumber", "0x5", "blockHash",
                             hash64, "logs");
        if (strcmp(kind, "02") == 0)
            return json_pack("{s:n}", "result");
        return json_pack("{s:{s:i,s:s}}", "error", "code", -32000, "message", "header not found");
    }
    if (strcmp(method, "eth_getBlockByNumber") == 0) {
        snprintf(hash64, sizeof(hash64), "0x%064d", 7);
        if (strcmp(arg, "finalized") == 0)
            return json_pack("{s:{s:s,s:s}}", "result", "number", "0xc", "hash", hash64);
        if (strcmp(arg, "0x5") == 0)
            return json_pack("{s:{s:s,s:s}}", "result", "number", arg, "hash", hash64);
        if (strcmp(arg, "0x6") == 0)
            return json_pack("{s:n}", "result");
        return json_pack("{s:{s:s}}", "result", "number", arg); /* a block without a hash */
    }
    return json_pack("{s:{s:i,s:s}}", "error", "code", -32601, "message", "method not found");
}

/* opaque: the node's head as a quantity string, NULL for 0x10. */
static void node(void *opaque, const char *request, int *status, char *body, size_t body_size)
{
    const char *head = opaque != NULL ? opaque : "0x10";
    json_t *req = json_loads(request, 0, NULL);
    json_t *calls = json_is_array(req) ? json_incref(req) : json_pack("[O]", req);
    json_t *answers = json_array();
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call) {
        json_t *a = node_answer(json_string_value(json_object_get(call, "method")), json_object_get(call, "params"),
                                head);
        json_object_set_new(a, "jsonrpc", json_string("2.0"));
        json_object_set(a, "id", json_object_get(call, "id"));
        json_array_append_new(answers, a);
    }
    char *text = json_dumps(json_is_array(req) ? answers : json_array_get(answers, 0), JSON_COMPACT);
    *status = 200;
    snprintf(body, body_size, "%s", text != NULL ? text : "");
    free(text);
    json_decref(answers);
    json_decref(calls);
    json_decref(req);
}

/* A client of the endpoints on ports[0..n) with quorum k. */
static struct zl_rpc *client_of(const int *ports, int n, int k)
{
    char url[256] = "", err[ZL_ERRSTR_SIZE];
    for (int i = 0; i < n; i++)
        snprintf(url + strlen(url), sizeof(url) - strlen(url), "%shttp://127.0.0.1:%d", i > 0 ? "," : "", ports[i]);
    struct zl_rpc_opts o = {
        .urls = url,
        .timeout_ms = 3000,
        .quorum = k,
        .breaker_failure_ratio = 0.5,
        .breaker_sampling_ms = 30000,
        .breaker_min_throughput = 100,
        .breaker_break_ms = 1000,
        .name = "rpc",
    };
    struct zl_rpc *r = NULL;
    if (zl_rpc_new(&r, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl_rpc_new: %s\n", err);
        abort();
    }
    return r;
}

static struct zl_rpc *client(int port)
{
    return client_of(&port, 1, 1);
}

/* What the receipts' callback saw. */
#define SEEN_MAX 200
struct seen {
    size_t n;
    size_t index[SEEN_MAX];
    zl_class c[SEEN_MAX];
    int kind[SEEN_MAX]; /* 1 receipt object, 2 JSON null, 0 no JSON */
};

static void on_receipt(void *opaque, size_t i, zl_class c, const json_t *receipt, const char *why)
{
    struct seen *s = opaque;
    ZT_CHECK(s->n < SEEN_MAX);
    ZT_CHECK(c == ZL_OK || why[0] != '\0');
    s->index[s->n] = i;
    s->c[s->n] = c;
    s->kind[s->n] = receipt == NULL ? 0 : json_is_object(receipt) ? 1 : 2;
    s->n++;
}

ZT_TEST(test_receipts_come_back_in_order_with_an_error_answer_transient)
{
    struct canned srv;
    canned_start(&srv, 200, "", node, NULL);
    struct zl_rpc *r = client(srv.port);
    char h[4][67];
    tx_hash(h[0], sizeof(h[0]), 0, 1);
    tx_hash(h[1], sizeof(h[1]), 1, 2);
    tx_hash(h[3], sizeof(h[3]), 3, 3);
    const char *txs[4] = {h[0], h[1], NULL /* skipped */, h[3]};
    struct seen s = {0};
    zl_chain_read_receipts(r, txs, 4, on_receipt, &s);
    ZT_EQ_INT(3, (int)s.n);
    ZT_EQ_INT(0, (int)s.index[0]);
    ZT_EQ_INT(ZL_OK, s.c[0]);
    ZT_EQ_INT(1, s.kind[0]);
    ZT_EQ_INT(1, (int)s.index[1]);
    ZT_EQ_INT(ZL_OK, s.c[1]);
    ZT_EQ_INT(2, s.kind[1]); /* the node knows no receipt: an answer, not a failure */
    ZT_EQ_INT(3, (int)s.index[2]);
    ZT_EQ_INT(ZL_TRANSIENT, s.c[2]); /* an endpoint's error answer says nothing of the tx */
    ZT_EQ_INT(1, atomic_load(&srv.requests));
    zl_rpc_free(r);
    canned_stop(&srv);
}

ZT_TEST(test_receipts_go_batch_max_per_request)
{
    struct canned srv;
    canned_start(&srv, 200, "", node, NULL);
    struct zl_rpc *r = client(srv.port);
    enum { N = ZL_RPC_BATCH_MAX + 50 };
    static char h[N][67];
    const char *txs[N];
    for (unsigned i = 0; i < N; i++) {
        tx_hash(h[i], sizeof(h[i]), i, 1);
        txs[i] = h[i];
    }
    struct seen s = {0};
    zl_chain_read_receipts(r, txs, N, on_receipt, &s);
    ZT_EQ_INT(N, (int)s.n);
    for (size_t i = 0; i < s.n; i++)
        ZT_CHECK(s.index[i] == i && s.c[i] == ZL_OK);
    ZT_EQ_INT(2, atomic_load(&srv.requests));
    zl_rpc_free(r);
    canned_stop(&srv);
}

ZT_TEST(test_blocks_are_asked_once_each_and_judged)
{
    struct canned srv;
    canned_start(&srv, 200, "", node, NULL);
    struct zl_rpc *r = client(srv.port);
    struct zl_chain_block blocks[8];
    size_t nb = 0;
    size_t five = zl_chain_blocks_add(blocks, &nb, 5);
    ZT_EQ_INT((int)five, (int)zl_chain_blocks_add(blocks, &nb, 5));
    size_t six = zl_chain_blocks_add(blocks, &nb, 6);
    size_t seven = zl_chain_blocks_add(blocks, &nb, 7);
    ZT_EQ_INT(3, (int)nb);
    zl_chain_read_blocks(r, blocks, nb);
    ZT_EQ_INT(ZL_OK, blocks[five].c);
    ZT_CHECK(blocks[five].exists && strlen(blocks[five].hash) == 66);
    ZT_EQ_INT(ZL_OK, blocks[six].c);
    ZT_CHECK(!blocks[six].exists); /* the chain is shorter: a fact, not a failure */
    ZT_EQ_INT(ZL_TRANSIENT, blocks[seven].c); /* an answer without a hash */
    ZT_EQ_INT(1, atomic_load(&srv.requests));
    uint64_t head = 0;
    char err[ZL_ERRSTR_SIZE];
    ZT_EQ_INT(ZL_OK, zl_chain_read_mark(r, "latest", &head, err, sizeof(err)));
    ZT_EQ_INT(16, (int)head);
    zl_rpc_free(r);
    canned_stop(&srv);
}

ZT_TEST(test_every_endpoint_down_is_an_outage_for_each_read)
{
    struct zl_rpc *r = client(canned_dead_port());
    char h[67];
    tx_hash(h, sizeof(h), 0, 1);
    const char *txs[1] = {h};
    struct seen s = {0};
    zl_chain_read_receipts(r, txs, 1, on_receipt, &s);
    ZT_EQ_INT(1, (int)s.n);
    ZT_EQ_INT(ZL_OUTAGE, s.c[0]);
    struct zl_chain_block blocks[1];
    size_t nb = 0;
    zl_chain_blocks_add(blocks, &nb, 5);
    zl_chain_read_blocks(r, blocks, nb);
    ZT_EQ_INT(ZL_OUTAGE, blocks[0].c);
    uint64_t head = 0;
    char err[ZL_ERRSTR_SIZE];
    ZT_EQ_INT(ZL_OUTAGE, zl_chain_read_mark(r, "latest", &head, err, sizeof(err)));
    zl_rpc_free(r);
}

ZT_TEST(test_quorum_mark_is_the_kth_highest_answer)
{
    uint64_t out = 0;
    const uint64_t liar[2] = {5100, 100}; /* one endpoint 5,000 blocks ahead */
    ZT_EQ_INT(0, zl_chain_quorum_mark(liar, 2, 2, &out));
    ZT_EQ_INT(100, (int)out);
    const uint64_t three[3] = {99, 101, 100};
    ZT_EQ_INT(0, zl_chain_quorum_mark(three, 3, 1, &out));
    ZT_EQ_INT(101, (int)out);
    ZT_EQ_INT(0, zl_chain_quorum_mark(three, 3, 2, &out));
    ZT_EQ_INT(100, (int)out); /* the highest block two endpoints have reached */
    ZT_EQ_INT(0, zl_chain_quorum_mark(three, 3, 3, &out));
    ZT_EQ_INT(99, (int)out);
    ZT_EQ_INT(-1, zl_chain_quorum_mark(three, 2, 3, &out)); /* fewer answers than the quorum */
    ZT_EQ_INT(-1, zl_chain_quorum_mark(three, 3, 0, &out));
}

ZT_TEST(test_a_head_by_quorum_is_not_the_liars)
{
    struct canned honest, liar;
    canned_start(&honest, 200, "", node, NULL);
    canned_start(&liar, 200, "", node, "0x1398"); /* 5,016 */
    int ports[2] = {liar.port, honest.port};
    struct zl_rpc *r = client_of(ports, 2, 2);
    uint64_t head = 0;
    char err[ZL_ERRSTR_SIZE];
    ZT_EQ_INT(ZL_OK, zl_chain_read_mark(r, "latest", &head, err, sizeof(err)));
    ZT_EQ_INT(16, (int)head);
    ZT_EQ_INT(1, atomic_load(&honest.requests));
    ZT_EQ_INT(1, atomic_load(&liar.requests));
    ZT_EQ_INT(ZL_OK, zl_chain_read_mark(r, "finalized", &head, err, sizeof(err)));
    ZT_EQ_INT(12, (int)head);
    zl_rpc_free(r);
    canned_stop(&liar);
    /* one endpoint left: short of the quorum, never its word alone */
    int one[2] = {honest.port, canned_dead_port()};
    r = client_of(one, 2, 2);
    ZT_EQ_INT(ZL_TRANSIENT, zl_chain_read_mark(r, "latest", &head, err, sizeof(err)));
    zl_rpc_free(r);
    canned_stop(&honest);
}

ZT_TEST(test_finality_auto_is_decided_by_chain_id)
{
    ZT_EQ_INT(ZL_FINALITY_FINALIZED, zl_chain_finality_of(ZL_FINALITY_AUTO, 56));       /* BSC */
    ZT_EQ_INT(ZL_FINALITY_FINALIZED, zl_chain_finality_of(ZL_FINALITY_AUTO, 1));        /* Ethereum */
    ZT_EQ_INT(ZL_FINALITY_CONFIRMATIONS, zl_chain_finality_of(ZL_FINALITY_AUTO, 31337)); /* anvil */
    ZT_EQ_INT(ZL_FINALITY_SAFE, zl_chain_finality_of(ZL_FINALITY_SAFE, 31337));         /* as configured */
    ZT_CHECK(strcmp(zl_chain_finality_tag(ZL_FINALITY_FINALIZED), "finalized") == 0);
    ZT_CHECK(strcmp(zl_chain_finality_tag(ZL_FINALITY_CONFIRMATIONS), "latest") == 0);
    ZT_CHECK(strcmp(zl_finality_names[ZL_FINALITY_SAFE], "safe") == 0); /* config index casts to the enum */
    ZT_EQ_INT(15, (int)zl_chain_finality_blocks(ZL_FINALITY_CONFIRMATIONS, 56, 15));
    ZT_EQ_INT(3, (int)zl_chain_finality_blocks(ZL_FINALITY_FINALIZED, 56, 15));
}

ZT_MAIN(test_receipts_come_back_in_order_with_an_error_answer_transient, test_receipts_go_batch_max_per_request,
        test_blocks_are_asked_once_each_and_judged, test_every_endpoint_down_is_an_outage_for_each_read,
        test_quorum_mark_is_the_kth_highest_answer, test_a_head_by_quorum_is_not_the_liars,
        test_finality_auto_is_decided_by_chain_id)
