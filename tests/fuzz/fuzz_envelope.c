/* fuzz_envelope.c: libFuzzer target for the message envelope decoder.
 *
 * Every message value a stage reads comes from outside the process, so the
 * decoder must survive any bytes: no crash, no read past the input, no
 * undefined behaviour, and a reason for every refusal. When it accepts,
 * the event must survive encode -> decode unchanged and re-encode to the
 * same bytes (canonical), and must be refused on a topic of another kind.
 * Build and run: tests/fuzz/README.md. abort() is how a fuzz target reports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zl_event ev, back;
    char err[ZL_ERRSTR_SIZE];
    char first[ZL_EVENT_ENCODED_MAX_BYTES], second[ZL_EVENT_ENCODED_MAX_BYTES];
    size_t first_len = 0, second_len = 0;

    err[0] = '\0';
    if (zl_event_decode(ZL_TOPIC_ANY, data, size, &ev, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            abort(); /* a refusal must say why */
        return 0;
    }
    if (zl_event_validate(&ev, err, sizeof(err)) != 0)
        abort(); /* decode accepted what validate refuses */
    if (zl_event_encode(&ev, first, sizeof(first), &first_len, err, sizeof(err)) != 0)
        abort();
    if (zl_event_decode(ev.kind, first, first_len, &back, err, sizeof(err)) != 0)
        abort();
    if (!zl_event_equal(&ev, &back))
        abort();
    if (zl_event_encode(&back, second, sizeof(second), &second_len, err, sizeof(err)) != 0)
        abort();
    if (first_len != second_len || memcmp(first, second, first_len) != 0)
        abort();

    zl_topic_kind other = ev.kind == ZL_TOPIC_KIND_LAST ? ZL_TOPIC_KIND_FIRST
                                                        : (zl_topic_kind)(ev.kind + 1);
    if (zl_event_decode(other, data, size, &back, err, sizeof(err)) == 0)
        abort(); /* accepted on a topic of another kind */
    return 0;
}
