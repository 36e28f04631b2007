/* Local CIDs against vectors produced by Kubo v0.43.0:
 *   printf ... | ipfs add --cid-version=1 --raw-leaves -n -Q
 * A CID that differs from Kubo's by one character would make every pin look
 * like a provider fault (ZL_PERMANENT), so the vectors are exact. */
#include <stdlib.h>
#include <string.h>

#include "cid.h"
#include "ipfs.h"
#include "zltest.h"

static void cid_of(const void *data, size_t len, char *out)
{
    char err[256];
    ZT_REQUIRE(zl_cid_raw_v1(data, len, out, ZL_CID_SIZE, err, sizeof(err)) == 0);
}

ZT_TEST(test_cid_of_hello_ipfs_matches_kubo)
{
    char cid[ZL_CID_SIZE];
    cid_of("hello IPFS\n", 11, cid);
    ZT_EQ_STR("bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa", cid);
}

ZT_TEST(test_cid_of_empty_and_short_contents_match_kubo)
{
    char cid[ZL_CID_SIZE];
    cid_of(NULL, 0, cid);
    ZT_EQ_STR("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", cid);
    cid_of("a", 1, cid);
    ZT_EQ_STR("bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm", cid);
    cid_of("abc", 3, cid);
    ZT_EQ_STR("bafkreif2pall7dybz7vecqka3zo24irdwabwdi4wc55jznaq75q7eaavvu", cid);
}

ZT_TEST(test_cid_of_zero_bytes_up_to_one_full_chunk_matches_kubo)
{
    unsigned char *z = calloc(ZL_CID_SINGLE_CHUNK_MAX_BYTES, 1);
    ZT_REQUIRE(z != NULL);
    char cid[ZL_CID_SIZE];
    cid_of(z, 1000, cid);
    ZT_EQ_STR("bafkreicudm7j3kqjwif7qx5cops4xu7iagc2utwctdtwlw4hoqvxae4kkm", cid);
    cid_of(z, ZL_CID_SINGLE_CHUNK_MAX_BYTES, cid);
    ZT_EQ_STR("bafkreiekhhjkxu4ztk3tyng3er3ijhg56mb44oe3gwbgquhzu4afrg2ksa", cid);
    free(z);
}

ZT_TEST(test_cid_refuses_content_larger_than_one_chunk)
{
    /* Kubo gives 262145 zero bytes a dag-pb root (bafybei...): not ours to guess. */
    unsigned char *z = calloc(ZL_CID_SINGLE_CHUNK_MAX_BYTES + 1, 1);
    ZT_REQUIRE(z != NULL);
    char cid[ZL_CID_SIZE], err[512];
    ZT_EQ_INT(-1, zl_cid_raw_v1(z, ZL_CID_SINGLE_CHUNK_MAX_BYTES + 1, cid, sizeof(cid), err, sizeof(err)));
    ZT_EQ_STR("", cid);
    ZT_CHECK(strstr(err, "262144") != NULL);
    free(z);
}

ZT_TEST(test_cid_refuses_a_small_buffer)
{
    char cid[20], err[256];
    ZT_EQ_INT(-1, zl_cid_raw_v1("a", 1, cid, sizeof(cid), err, sizeof(err)));
    ZT_EQ_STR("", cid);
}

ZT_TEST(test_cid_shape_check_accepts_ours_and_refuses_others)
{
    ZT_CHECK(zl_cid_is_raw_v1("bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa"));
    /* dag-pb root, CIDv0, upper case, one character short, bad padding bits */
    ZT_CHECK(!zl_cid_is_raw_v1("bafybeigllfqgfpqydppr6cmv56g7ax4wyhruzswvcefv6j5kj77nzttfki"));
    ZT_CHECK(!zl_cid_is_raw_v1("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"));
    ZT_CHECK(!zl_cid_is_raw_v1("BAFKREICOUV3SKSJUZXB3RBB6RZIY6DUAKK2AIKEGSMTQTZ5RSUPPJORXSA"));
    ZT_CHECK(!zl_cid_is_raw_v1("bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxs"));
    ZT_CHECK(!zl_cid_is_raw_v1("bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsb"));
    ZT_CHECK(!zl_cid_is_raw_v1(NULL));
}

ZT_TEST(test_base32_matches_rfc4648_vectors_in_lower_case)
{
    char out[32];
    ZT_EQ_INT(0, (int)zl_base32_lower((const uint8_t *)"", 0, out, sizeof(out)));
    ZT_EQ_STR("", out);
    zl_base32_lower((const uint8_t *)"f", 1, out, sizeof(out));
    ZT_EQ_STR("my", out);
    zl_base32_lower((const uint8_t *)"foobar", 6, out, sizeof(out));
    ZT_EQ_STR("mzxw6ytboi", out);
    ZT_EQ_INT(0, (int)zl_base32_lower((const uint8_t *)"foobar", 6, out, 10)); /* no room for the NUL */
}

ZT_TEST(test_kubo_add_answer_parser_takes_the_one_hash)
{
    char cids[2][ZL_IPFS_CID_TEXT_MAX], err[256];
    const char *x[1] = {"x.json"};
    const char *ok = "{\"Name\":\"x.json\",\"Hash\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\","
                     "\"Size\":\"11\"}\n";
    ZT_EQ_INT(0, zl_ipfs_parse_kubo_add(ok, strlen(ok), x, 1, cids, err, sizeof(err)));
    ZT_EQ_STR("bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa", cids[0]);
    /* a second object (a wrapping directory, a split): not what we sent */
    const char *two = "{\"Name\":\"x.json\",\"Hash\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\"}\n"
                      "{\"Name\":\"\",\"Hash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\"}\n";
    ZT_EQ_INT(-1, zl_ipfs_parse_kubo_add(two, strlen(two), x, 1, cids, err, sizeof(err)));
    ZT_EQ_STR("", cids[0]);
    const char *err_answer = "{\"Message\":\"no space left\",\"Code\":0,\"Type\":\"error\"}";
    ZT_EQ_INT(-1, zl_ipfs_parse_kubo_add(err_answer, strlen(err_answer), x, 1, cids, err, sizeof(err)));
    ZT_EQ_INT(-1, zl_ipfs_parse_kubo_add("", 0, x, 1, cids, err, sizeof(err)));
    const char *bad_chars = "{\"Name\":\"x.json\",\"Hash\":\"bafkrei/../../etc/passwd\"}";
    ZT_EQ_INT(-1, zl_ipfs_parse_kubo_add(bad_chars, strlen(bad_chars), x, 1, cids, err, sizeof(err)));
}

ZT_TEST(test_kubo_add_answer_parser_matches_each_file_by_name)
{
    char cids[3][ZL_IPFS_CID_TEXT_MAX], err[256];
    const char *names[3] = {"a.json", "b.json", "c.json"};
    /* any order; c.json missing: "" for it, the caller fails that one alone */
    const char *ans = "{\"Name\":\"b.json\",\"Hash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\"}\n"
                      "{\"Name\":\"a.json\",\"Hash\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\"}\n";
    ZT_EQ_INT(0, zl_ipfs_parse_kubo_add(ans, strlen(ans), names, 3, cids, err, sizeof(err)));
    ZT_EQ_STR("bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa", cids[0]);
    ZT_EQ_STR("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", cids[1]);
    ZT_EQ_STR("", cids[2]);
    /* one name twice, or a name we did not send: the whole answer is refused */
    const char *twice = "{\"Name\":\"a.json\",\"Hash\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\"}\n"
                        "{\"Name\":\"a.json\",\"Hash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\"}\n";
    ZT_EQ_INT(-1, zl_ipfs_parse_kubo_add(twice, strlen(twice), names, 3, cids, err, sizeof(err)));
    const char *other = "{\"Name\":\"z.json\",\"Hash\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\"}\n";
    ZT_EQ_INT(-1, zl_ipfs_parse_kubo_add(other, strlen(other), names, 3, cids, err, sizeof(err)));
    ZT_CHECK(strstr(err, "did not send") != NULL);
}

ZT_TEST(test_pinata_and_psa_answer_parsers)
{
    char cid[128], rid[64], st[16], err[256];
    const char *pin = "{\"IpfsHash\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\",\"PinSize\":11,"
                      "\"Timestamp\":\"2026-11-23T10:00:00.000Z\"}";
    ZT_EQ_INT(0, zl_ipfs_parse_pinata_pin(pin, strlen(pin), cid, sizeof(cid), err, sizeof(err)));
    ZT_EQ_STR("bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa", cid);
    const char *psa = "{\"requestid\":\"r-1\",\"status\":\"queued\",\"created\":\"2026-11-23T10:00:00Z\","
                      "\"pin\":{\"cid\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\"},"
                      "\"delegates\":[]}";
    ZT_EQ_INT(0, zl_ipfs_parse_psa_status(psa, strlen(psa), rid, sizeof(rid), st, sizeof(st), cid, sizeof(cid), err,
                                          sizeof(err)));
    ZT_EQ_STR("r-1", rid);
    ZT_EQ_STR("queued", st);
    const char *psa_bad = "{\"requestid\":\"../x\",\"status\":\"pinned\",\"pin\":{\"cid\":\"bafkreicouv3sk\"}}";
    ZT_EQ_INT(-1, zl_ipfs_parse_psa_status(psa_bad, strlen(psa_bad), rid, sizeof(rid), st, sizeof(st), cid,
                                           sizeof(cid), err, sizeof(err)));
    const char *dup = "{\"IpfsHash\":\"bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa\","
                      "\"IpfsHash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\"}";
    ZT_EQ_INT(-1, zl_ipfs_parse_pinata_pin(dup, strlen(dup), cid, sizeof(cid), err, sizeof(err)));
}

ZT_MAIN(test_cid_of_hello_ipfs_matches_kubo, test_cid_of_empty_and_short_contents_match_kubo,
        test_cid_of_zero_bytes_up_to_one_full_chunk_matches_kubo, test_cid_refuses_content_larger_than_one_chunk,
        test_cid_refuses_a_small_buffer, test_cid_shape_check_accepts_ours_and_refuses_others,
        test_base32_matches_rfc4648_vectors_in_lower_case, test_kubo_add_answer_parser_takes_the_one_hash,
        test_kubo_add_answer_parser_matches_each_file_by_name,
        test_pinata_and_psa_answer_parsers)
