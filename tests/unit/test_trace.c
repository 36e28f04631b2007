/* test_trace.c: traceparent ids made and read in one place (runtime and
 * sweeper): a valid parent's trace id is kept, anything else starts a trace. */
#include <string.h>

#include "trace.h"
#include "zltest.h"

static const char PARENT[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

ZT_TEST(test_a_valid_traceparent_gives_its_trace_id)
{
    char tid[ZL_TRACE_ID_HEX_SIZE] = "";
    ZT_EQ_INT(0, zl_trace_parse(PARENT, tid));
    ZT_EQ_STR("4bf92f3577b34da6a3ce929d0e0e4736", tid);
}

ZT_TEST(test_a_malformed_traceparent_is_refused_and_leaves_the_output)
{
    const char *bad[] = {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
                         "00x4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                         "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
                         "00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char tid[ZL_TRACE_ID_HEX_SIZE] = "untouched";
        ZT_EQ_INT(-1, zl_trace_parse(bad[i], tid));
        ZT_EQ_STR("untouched", tid);
    }
}

ZT_TEST(test_a_new_span_keeps_a_stored_trace_id_and_reads_back)
{
    char tp[ZL_TRACEPARENT_BUF_SIZE], tid[ZL_TRACE_ID_HEX_SIZE], back[ZL_TRACE_ID_HEX_SIZE];
    zl_trace_new("4bf92f3577b34da6a3ce929d0e0e4736", tp, sizeof(tp), tid);
    ZT_EQ_INT(ZL_TRACEPARENT_LEN, (int)strlen(tp));
    ZT_EQ_STR("4bf92f3577b34da6a3ce929d0e0e4736", tid);
    ZT_EQ_INT(0, zl_trace_parse(tp, back));
    ZT_EQ_STR(tid, back);
    ZT_CHECK(strncmp(tp, "00-", 3) == 0 && strcmp(tp + 52, "-01") == 0);
}

ZT_TEST(test_no_or_a_bad_trace_id_starts_a_new_trace_each_time)
{
    char tp1[ZL_TRACEPARENT_BUF_SIZE], tp2[ZL_TRACEPARENT_BUF_SIZE];
    char t1[ZL_TRACE_ID_HEX_SIZE], t2[ZL_TRACE_ID_HEX_SIZE], back[ZL_TRACE_ID_HEX_SIZE];
    zl_trace_new(NULL, tp1, sizeof(tp1), t1);
    zl_trace_new("not-hex", tp2, sizeof(tp2), t2);
    ZT_EQ_INT(0, zl_trace_parse(tp1, back));
    ZT_EQ_STR(t1, back);
    ZT_EQ_INT(0, zl_trace_parse(tp2, back));
    ZT_EQ_STR(t2, back);
    ZT_CHECK(strcmp(t1, t2) != 0);
    ZT_CHECK(strcmp(tp1 + 36, tp2 + 36) != 0); /* span ids differ too */
}

ZT_MAIN(test_a_valid_traceparent_gives_its_trace_id, test_a_malformed_traceparent_is_refused_and_leaves_the_output,
        test_a_new_span_keeps_a_stored_trace_id_and_reads_back, test_no_or_a_bad_trace_id_starts_a_new_trace_each_time)
