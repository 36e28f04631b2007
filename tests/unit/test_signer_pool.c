/* test_signer_pool.c: loading a pool of signer keys (which files count, which
 * are refused and why, never with the key in the message) and the balance's
 * wei-to-ether reading. Leasing itself needs a database:
 * tests/integration/test_signer_pool.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signer_pool.h"
#include "zltest.h"

#define KEY_A "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
#define KEY_B "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

static char dir[64];

static void write_key(const char *name, const char *text, mode_t mode)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ZT_REQUIRE(f != NULL);
    fprintf(f, "%s\n", text);
    fclose(f);
    ZT_REQUIRE(chmod(path, mode) == 0);
}

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/zl-signer-pool-XXXXXX");
    ZT_REQUIRE(mkdtemp(dir) != NULL);
}

ZT_TEST(test_a_directory_pool_loads_every_key_file_but_dotfiles_in_name_order)
{
    fresh_dir();
    write_key("b", KEY_B, 0600);
    write_key("a", KEY_A, 0600);
    write_key("..data", "not a key", 0600);
    struct zl_signer_pool p;
    char err[ZL_ERRSTR_SIZE] = "";
    ZT_EQ_INT(0, zl_signer_pool_load(&p, NULL, "", dir, err, sizeof(err)));
    ZT_EQ_INT(2, (long long)p.nkeys);
    ZT_CHECK(p.leased);
    ZT_EQ_STR("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", p.keys[1].address_hex);
    zl_signer_pool_stop(&p);
    ZT_EQ_INT(0, (long long)p.nkeys);
}

ZT_TEST(test_a_key_others_may_read_or_a_key_twice_is_refused_without_the_key)
{
    fresh_dir();
    write_key("a", KEY_A, 0644);
    char list[256], err[ZL_ERRSTR_SIZE] = "";
    struct zl_signer_pool p;
    snprintf(list, sizeof(list), "%s/a", dir);
    ZT_EQ_INT(-1, zl_signer_pool_load(&p, NULL, list, NULL, err, sizeof(err)));
    ZT_CHECK(strstr(err, "group or others") != NULL);
    write_key("a", KEY_A, 0600);
    write_key("a2", "0x" KEY_A, 0600);
    snprintf(list, sizeof(list), "%s/a, %s/a2", dir, dir);
    ZT_EQ_INT(-1, zl_signer_pool_load(&p, NULL, list, NULL, err, sizeof(err)));
    ZT_CHECK(strstr(err, "a second time") != NULL);
    ZT_CHECK(strstr(err, KEY_A) == NULL);
    ZT_EQ_INT(0, (long long)p.nkeys);
}

ZT_TEST(test_exactly_one_way_of_naming_keys_is_accepted)
{
    struct zl_signer_pool p;
    char err[ZL_ERRSTR_SIZE] = "";
    ZT_EQ_INT(-1, zl_signer_pool_load(&p, NULL, "", "", err, sizeof(err)));
    ZT_EQ_INT(-1, zl_signer_pool_load(&p, KEY_A, "/x", "", err, sizeof(err)));
    ZT_CHECK(strstr(err, "exactly one") != NULL);
    ZT_EQ_INT(0, zl_signer_pool_load(&p, KEY_A, "", NULL, err, sizeof(err)));
    ZT_CHECK(!p.leased && p.nkeys == 1);
    ZT_CHECK(zl_signer_pool_usable(&p)); /* the shared key has no lease to lose */
    zl_signer_pool_stop(&p);
}

ZT_TEST(test_wei_reads_as_ether_past_64_bits)
{
    double e = 0;
    ZT_EQ_INT(0, zl_signer_wei_to_ether("0x3635c9adc5dea00000", &e)); /* 1000 ether: 70 bits */
    ZT_CHECK(e > 999.999999 && e < 1000.000001);
    ZT_EQ_INT(0, zl_signer_wei_to_ether("0x0", &e));
    ZT_CHECK(e == 0);
    ZT_EQ_INT(-1, zl_signer_wei_to_ether("0x", &e));
    ZT_EQ_INT(-1, zl_signer_wei_to_ether("12", &e));
    ZT_EQ_INT(-1, zl_signer_wei_to_ether("0xzz", &e));
    ZT_EQ_INT(-1, zl_signer_wei_to_ether(NULL, &e));
}

ZT_MAIN(test_a_directory_pool_loads_every_key_file_but_dotfiles_in_name_order,
        test_a_key_others_may_read_or_a_key_twice_is_refused_without_the_key,
        test_exactly_one_way_of_naming_keys_is_accepted, test_wei_reads_as_ether_past_64_bits)
