/* libFuzzer target for the Pinning Service API listing parser
 * (common/ipfs_pinning.c, zl_ipfs_parse_psa_list), which the unpin reads
 * from a remote HTTP server (GET /pins?cid=...) before it DELETEs each
 * request it names.
 *
 * Properties:
 *  - a refusal always carries a reason and names no request;
 *  - at most `max` requests, each NUL-terminated inside its buffer, plain
 *    printable ASCII with no '/', '?', '#' or '%' (it is put into the
 *    DELETE's URL path);
 *  - the count is never negative.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipfs.h"

#define FUZZ_MAX 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char cid[] = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    char ids[FUZZ_MAX][ZL_IPFS_PSA_REQUESTID_SIZE];
    char err[256];
    err[0] = '\0';
    size_t n = 99;
    long long count = -1;
    int rc = zl_ipfs_parse_psa_list((const char *)data, size, cid, ids, FUZZ_MAX, &n, &count, err, sizeof(err));
    if (rc != 0) {
        if (err[0] == '\0' || n != 0)
            abort();
        return 0;
    }
    if (n > FUZZ_MAX || count < 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (memchr(ids[i], '\0', sizeof(ids[i])) == NULL || ids[i][0] == '\0')
            abort();
        for (const char *p = ids[i]; *p != '\0'; p++)
            if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || strchr("/?#%", *p) != NULL)
                abort();
    }
    return 0;
}
