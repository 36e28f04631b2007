/* libFuzzer target for the IPFS provider answer parsers (common/ipfs.c):
 * Kubo's /api/v0/add NDJSON, Pinata's pinFileToIPFS JSON and the Pinning
 * Service API's PinStatus. These bytes come from remote HTTP servers.
 *
 * The first byte picks the parser; the rest is the answer. Properties:
 *  - a refusal always carries a reason;
 *  - an accepted CID is NUL-terminated inside its buffer and only
 *    [A-Za-z0-9]; a PSA request id has no '/', '?', '#' or '%' (it is put
 *    into a URL path) and a PSA status is one of the four documented ones.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipfs.h"

static void check_token(const char *s, size_t size, const char *forbidden)
{
    if (memchr(s, '\0', size) == NULL)
        abort();
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || strchr(forbidden, *p) != NULL)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char cid[128], rid[128], status[16], err[256];
    err[0] = '\0';
    int rc;
    switch (data[0] % 3) {
    case 0: {
        static const char *const names[3] = {"a.json", "b", "zl-image-default"};
        char cids[3][ZL_IPFS_CID_TEXT_MAX];
        rc = zl_ipfs_parse_kubo_add(body, len, names, 3, cids, err, sizeof(err));
        if (rc == 0)
            for (int i = 0; i < 3; i++)
                check_token(cids[i], sizeof(cids[i]), "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
        else
            for (int i = 0; i < 3; i++)
                if (cids[i][0] != '\0')
                    abort(); /* a refused answer leaves nothing behind */
        snprintf(cid, sizeof(cid), "%s", cids[0]);
        break;
    }
    case 1: rc = zl_ipfs_parse_pinata_pin(body, len, cid, sizeof(cid), err, sizeof(err)); break;
    default:
        rc = zl_ipfs_parse_psa_status(body, len, rid, sizeof(rid), status, sizeof(status), cid, sizeof(cid), err,
                                      sizeof(err));
        if (rc == 0) {
            check_token(rid, sizeof(rid), "/?#%");
            if (strcmp(status, "queued") != 0 && strcmp(status, "pinning") != 0 && strcmp(status, "pinned") != 0 &&
                strcmp(status, "failed") != 0)
                abort();
        }
        break;
    }
    if (rc != 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    check_token(cid, sizeof(cid), "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    return 0;
}
