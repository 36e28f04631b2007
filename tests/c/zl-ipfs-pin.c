/* zl-ipfs-pin: the IPFS client's pinning (common/ipfs_par.c) as a command,
 * for bench/ipfs_pin.py: pins N fresh ~270-byte metadata-like documents in calls of up
 * to BATCH (zl_ipfs_pin_many, each object read back when GATEWAYS is not
 * empty) and prints one JSON line {"n","ok","seconds","pins_per_s"}.
 *
 *   zl-ipfs-pin PROVIDERS GATEWAYS PROVIDER_CONCURRENCY GATEWAY_CONCURRENCY N BATCH
 *
 * PROVIDERS and GATEWAYS as ZL_IPFS_PROVIDERS / ZL_IPFS_GATEWAY_URLS; a psa
 * provider's token is ZL_IPFS_PSA_TOKEN from the environment ("bench" when
 * unset). Exit status: 0 when every object pinned (and read back), 1 when
 * one did not (its error on stderr), 2 on misuse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cid.h"
#include "ipfs.h"

/* One document as the stage writes it: about the same size and shape. */
#define DOC_BYTES_MAX 1024

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: zl-ipfs-pin PROVIDERS GATEWAYS PROVIDER_CONCURRENCY GATEWAY_CONCURRENCY N BATCH\n");
        return 2;
    }
    long n = strtol(argv[5], NULL, 10), batch = strtol(argv[6], NULL, 10);
    if (n < 1 || batch < 1 || batch > ZL_IPFS_BATCH_MAX) {
        fprintf(stderr, "zl-ipfs-pin: N must be >= 1 and BATCH 1..%d\n", ZL_IPFS_BATCH_MAX);
        return 2;
    }
    const char *token = getenv("ZL_IPFS_PSA_TOKEN");
    struct zl_ipfs_opts o = {
        .providers = argv[1],
        .gateways = argv[2],
        .pin_k = 1,
        .verify_retrieval = argv[2][0] != '\0',
        .timeout_ms = 30000,
        .connect_timeout_ms = 3000,
        .gateway_timeout_ms = 30000,
        .psa_token = token != NULL ? token : "bench",
        .psa_poll_timeout_ms = 30000,
        .psa_poll_interval_ms = 100,
        .stage = "bench",
        .provider_concurrency_max = atoi(argv[3]),
        .gateway_concurrency_max = atoi(argv[4]),
    };
    zl_breaker_opts_default(&o.breaker);
    struct zl_ipfs *c = NULL;
    char err[ZL_ERRSTR_SIZE];
    if (zl_ipfs_new(&c, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "zl-ipfs-pin: %s\n", err);
        return 2;
    }
    static char docs[ZL_IPFS_BATCH_MAX][DOC_BYTES_MAX];
    static char cids[ZL_IPFS_BATCH_MAX][ZL_CID_SIZE];
    static char names[ZL_IPFS_BATCH_MAX][64];
    static struct zl_ipfs_obj objs[ZL_IPFS_BATCH_MAX];
    unsigned long salt = (unsigned long)time(NULL) ^ ((unsigned long)clock() << 16);
    long ok = 0;
    double t0 = now_s();
    for (long done = 0; done < n;) {
        long k = n - done < batch ? n - done : batch;
        for (long j = 0; j < k; j++) {
            int len = snprintf(docs[j], DOC_BYTES_MAX,
                               "{\"name\":\"zeroloss deposit receipt 31337:0x%016lx%016lx:%ld\",\"description\":"
                               "\"bench\",\"image\":\"ipfs://bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa"
                               "\",\"attributes\":[{\"trait_type\":\"amount\",\"value\":\"%ld\"}]}",
                               salt, (unsigned long)(done + j), done + j, 1000000000000000000L + done + j);
            if (zl_cid_raw_v1(docs[j], (size_t)len, cids[j], sizeof(cids[j]), err, sizeof(err)) != 0) {
                fprintf(stderr, "zl-ipfs-pin: %s\n", err);
                return 1;
            }
            snprintf(names[j], sizeof(names[j]), "bench-%ld.json", done + j);
            objs[j] = (struct zl_ipfs_obj){.data = docs[j], .len = (size_t)len, .name = names[j], .cid = cids[j],
                                           .read_back = true};
        }
        zl_ipfs_pin_many(c, objs, (size_t)k);
        for (long j = 0; j < k; j++) {
            if (objs[j].result == ZL_OK)
                ok++;
            else
                fprintf(stderr, "zl-ipfs-pin: %s: %s\n", names[j], objs[j].error);
        }
        done += k;
    }
    double secs = now_s() - t0;
    printf("{\"n\":%ld,\"ok\":%ld,\"seconds\":%.3f,\"pins_per_s\":%.1f}\n", n, ok, secs, (double)n / secs);
    zl_ipfs_free(c);
    return ok == n ? 0 : 1;
}
