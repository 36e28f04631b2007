/* smoke.c: proves each real local service works from C, with the libraries
 * the workers use. Run by tests/run-all after `services up`; it reads the
 * addresses from the ZL_* variables that `deploy/local/services env` prints.
 *
 * Guards against: a service that "started" but cannot serve a real client
 * (wrong listener, auth, API port), and a library that links but cannot talk
 * to its server.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "zltest.h"

static const char *env_or_empty(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

/* ---------------------------------------------------------------- kafka */

ZT_TEST(test_kafka_produce_then_consume_roundtrip)
{
    enum { timeout_ms = 30000 };
    char errstr[512];
    const char *brokers = env_or_empty("ZL_KAFKA_BROKERS");
    char topic[64], payload[64];
    snprintf(topic, sizeof(topic), "zl.smoke.%ld", (long)getpid());
    snprintf(payload, sizeof(payload), "hello-%ld", (long)time(NULL));

    /* The broker does not auto-create topics: create it with the Admin API. */
    rd_kafka_conf_t *pconf = rd_kafka_conf_new();
    ZT_REQUIRE(rd_kafka_conf_set(pconf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK);
    ZT_REQUIRE(rd_kafka_conf_set(pconf, "enable.idempotence", "true", errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof(errstr));
    ZT_REQUIRE(producer != NULL);
    pconf = NULL; /* now owned, and freed, by producer */

    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, 1, errstr, sizeof(errstr));
    ZT_REQUIRE(nt != NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(producer);
    rd_kafka_CreateTopics(producer, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
    ZT_REQUIRE(ev != NULL);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    ZT_EQ_INT(1, n);
    ZT_EQ_INT(RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_topic_result_error(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);

    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("k", 1),
        RD_KAFKA_V_VALUE(payload, strlen(payload)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ZT_EQ_INT(RD_KAFKA_RESP_ERR_NO_ERROR, err);
    ZT_EQ_INT(RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_flush(producer, timeout_ms));
    rd_kafka_destroy(producer);

    rd_kafka_conf_t *cconf = rd_kafka_conf_new();
    rd_kafka_conf_set(cconf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "group.id", topic, errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", errstr, sizeof(errstr));
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof(errstr));
    ZT_REQUIRE(consumer != NULL);
    cconf = NULL; /* now owned by consumer */
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    ZT_EQ_INT(RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_subscribe(consumer, subs));
    rd_kafka_topic_partition_list_destroy(subs);

    int got = 0;
    for (int polls = 0; polls < timeout_ms / 100 && !got; polls++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ZT_EQ_INT(strlen(payload), m->len);
            ZT_CHECK(m->len == strlen(payload) && memcmp(m->payload, payload, m->len) == 0);
            got = 1;
        }
        rd_kafka_message_destroy(m);
    }
    ZT_CHECK(got);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
}

/* ---------------------------------------------------------------- postgres */

ZT_TEST(test_postgres_parameterised_roundtrip)
{
    PGconn *c = PQconnectdb(env_or_empty("ZL_PG_DSN"));
    ZT_REQUIRE(PQstatus(c) == CONNECTION_OK);
    const char *params[1] = {"41"};
    PGresult *r = PQexecParams(c, "SELECT $1::int + 1", 1, NULL, params, NULL, NULL, 0);
    ZT_EQ_INT(PGRES_TUPLES_OK, PQresultStatus(r));
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        ZT_EQ_STR("42", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = PQexec(c, "SHOW fsync");
    ZT_EQ_STR("on", PQgetvalue(r, 0, 0)); /* benchmarks must pay real commit costs */
    PQclear(r);
    PQfinish(c);
}

/* ---------------------------------------------------------------- http */

struct buf {
    char data[65536];
    size_t len;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buf *b = userdata;
    size_t n = size * nmemb;
    if (n > sizeof(b->data) - 1 - b->len)
        return 0; /* too big for the smoke test: fail the transfer */
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* POSTs body (or a multipart file when filename != NULL) and returns the HTTP
 * status, or -1 on a transport error. */
static long http_post(const char *url, const char *body, const char *filename, struct buf *out)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return -1;
    out->len = 0;
    out->data[0] = '\0';
    struct curl_slist *hdr = NULL;
    curl_mime *mime = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (filename != NULL) {
        mime = curl_mime_init(h);
        curl_mimepart *part = curl_mime_addpart(mime);
        curl_mime_name(part, "file");
        curl_mime_filename(part, filename);
        curl_mime_data(part, body, CURL_ZERO_TERMINATED);
        curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
    } else {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    }
    long status = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_mime_free(mime);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

ZT_TEST(test_anvil_json_rpc_chain_id)
{
    char url[512];
    snprintf(url, sizeof(url), "%s", env_or_empty("ZL_RPC_URLS"));
    char *comma = strchr(url, ',');
    if (comma)
        *comma = '\0';
    struct buf out;
    long status = http_post(url, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"eth_chainId\",\"params\":[]}", NULL, &out);
    ZT_EQ_INT(200, status);
    json_error_t jerr;
    json_t *doc = json_loads(out.data, 0, &jerr);
    ZT_REQUIRE(doc != NULL);
    const char *result = json_string_value(json_object_get(doc, "result"));
    ZT_REQUIRE(result != NULL);
    long chain_id = strtol(result, NULL, 16);
    ZT_EQ_INT(strtol(env_or_empty("ZL_CHAIN_ID"), NULL, 10), chain_id);
    ZT_EQ_INT(7, json_integer_value(json_object_get(doc, "id")));
    json_decref(doc);
}

ZT_TEST(test_kubo_add_then_cat)
{
    char url[512], content[128];
    snprintf(content, sizeof(content), "{\"smoke\":%ld}", (long)time(NULL));
    snprintf(url, sizeof(url), "%s/api/v0/add?cid-version=1&raw-leaves=true&pin=true",
             env_or_empty("ZL_IPFS_API_URL"));
    struct buf out;
    ZT_EQ_INT(200, http_post(url, content, "meta.json", &out));
    json_error_t jerr;
    json_t *doc = json_loads(out.data, 0, &jerr);
    ZT_REQUIRE(doc != NULL);
    const char *cid = json_string_value(json_object_get(doc, "Hash"));
    ZT_REQUIRE(cid != NULL);
    /* CIDv1 raw leaves, base32: "bafkrei..." for single-chunk content. */
    ZT_CHECK(strncmp(cid, "bafkrei", 7) == 0);
    snprintf(url, sizeof(url), "%s/api/v0/cat?arg=%s", env_or_empty("ZL_IPFS_API_URL"), cid);
    json_decref(doc);
    ZT_EQ_INT(200, http_post(url, "", NULL, &out));
    ZT_EQ_STR(content, out.data);
}

ZT_MAIN(test_kafka_produce_then_consume_roundtrip, test_postgres_parameterised_roundtrip,
        test_anvil_json_rpc_chain_id, test_kubo_add_then_cat)
