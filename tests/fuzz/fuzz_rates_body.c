/* libFuzzer target for the HTTP price source's body parser (rates.c), the
 * credit stage's only parser of external input, plus the rate normalizer and
 * the eggs arithmetic it feeds: whatever the source sends, the parser
 * returns a normalized rate or -1, and eggs of any amount at that rate are
 * either a valid uint256 or refused. */
#include <stdint.h>
#include <string.h>

#include "envelope.h"
#include "ledger.h"
#include "rates.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char rate[ZL_RATE_SIZE];
    char err[256];
    if (zl_rates_parse_http_body((const char *)data, size, rate, sizeof(rate), err, sizeof(err)) == 0) {
        ZL_ASSERT(zl_valid_rate(rate));
        char again[ZL_RATE_SIZE];
        ZL_ASSERT(zl_rate_normalize(rate, again, sizeof(again)) == 0 && strcmp(rate, again) == 0);
        char eggs[ZL_UINT256_DEC_SIZE];
        static const char max[] =
            "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        if (zl_ledger_eggs(max, rate, 18, eggs, sizeof(eggs), err, sizeof(err)) == 0)
            ZL_ASSERT(zl_valid_uint256_dec(eggs));
    }
    return 0;
}
