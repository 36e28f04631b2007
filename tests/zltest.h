/* zltest.h: the project's C test harness, one header, no library.
 *
 * A test file defines functions with ZT_TEST(name) and lists them in
 * ZT_MAIN(t1, t2, ...). Each check prints what it expected and what it got
 * when it fails, and the run ends with one line CI can read:
 *     "<file>: N passed, N failed"
 * and exit status 0 only when nothing failed. A test that made no check at
 * all counts as failed: a test that asserts nothing proves nothing.
 *
 * Checks do not abort the test: after a failed check the test goes on, so one
 * run shows every broken expectation. Use ZT_REQUIRE for checks that later
 * code depends on (it returns from the test).
 */
#ifndef ZLTEST_H
#define ZLTEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct zt_state {
    int checks;   /* checks made by the current test */
    int failures; /* failed checks in the current test */
};
extern struct zt_state zt_cur;

typedef void (*zt_fn)(void);
struct zt_case {
    const char *name;
    zt_fn fn;
};

#define ZT_TEST(name) static void name(void)

#define ZT_FAIL_AT(...)                                                        \
    do {                                                                       \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                 \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        zt_cur.failures++;                                                     \
    } while (0)

#define ZT_CHECK(cond)                                                         \
    do {                                                                       \
        zt_cur.checks++;                                                       \
        if (!(cond))                                                           \
            ZT_FAIL_AT("expected %s", #cond);                                  \
    } while (0)

#define ZT_REQUIRE(cond)                                                       \
    do {                                                                       \
        zt_cur.checks++;                                                       \
        if (!(cond)) {                                                         \
            ZT_FAIL_AT("required %s", #cond);                                  \
            return;                                                            \
        }                                                                      \
    } while (0)

#define ZT_EQ_INT(expected, got)                                               \
    do {                                                                       \
        long long zt_e = (long long)(expected), zt_g = (long long)(got);       \
        zt_cur.checks++;                                                       \
        if (zt_e != zt_g)                                                      \
            ZT_FAIL_AT("%s: expected %lld, got %lld", #got, zt_e, zt_g);       \
    } while (0)

#define ZT_EQ_STR(expected, got)                                               \
    do {                                                                       \
        const char *zt_e = (expected), *zt_g = (got);                          \
        zt_cur.checks++;                                                       \
        if (zt_g == NULL || strcmp(zt_e, zt_g) != 0)                           \
            ZT_FAIL_AT("%s: expected \"%s\", got \"%s\"", #got, zt_e,          \
                       zt_g ? zt_g : "(null)");                                \
    } while (0)

/* The runner: every test runs in order; the summary is the last line. */
#define ZT_MAIN(...)                                                           \
    struct zt_state zt_cur;                                                    \
    int main(void)                                                             \
    {                                                                          \
        static const struct zt_case zt_cases[] = {ZT_CASES_(__VA_ARGS__)};     \
        int passed = 0, failed = 0;                                            \
        for (size_t i = 0; i < sizeof(zt_cases) / sizeof(zt_cases[0]); i++) {  \
            zt_cur.checks = 0;                                                 \
            zt_cur.failures = 0;                                               \
            zt_cases[i].fn();                                                  \
            if (zt_cur.checks == 0)                                            \
                fprintf(stderr, "  FAIL %s: made no check\n",                  \
                        zt_cases[i].name);                                     \
            if (zt_cur.failures == 0 && zt_cur.checks > 0) {                   \
                passed++;                                                      \
                fprintf(stderr, "ok   %s (%d checks)\n", zt_cases[i].name,     \
                        zt_cur.checks);                                        \
            } else {                                                           \
                failed++;                                                      \
                fprintf(stderr, "FAIL %s\n", zt_cases[i].name);                \
            }                                                                  \
        }                                                                      \
        printf("%s: %d passed, %d failed\n", __FILE__, passed, failed);        \
        return failed == 0 ? 0 : 1;                                            \
    }

/* Expands a list of up to 40 function names into {"name", name} pairs. */
#define ZT_C1(a) {#a, a}
#define ZT_CASES_(...) ZT_MAP_(ZT_C1, __VA_ARGS__)
#define ZT_MAP_(f, ...) ZT_EVAL_(ZT_MAP_N_(__VA_ARGS__, ZT_M40, ZT_M39, ZT_M38, ZT_M37, ZT_M36, ZT_M35, ZT_M34, ZT_M33, ZT_M32, ZT_M31, ZT_M30, ZT_M29, ZT_M28, ZT_M27, ZT_M26, ZT_M25, ZT_M24, ZT_M23, ZT_M22, ZT_M21, ZT_M20, ZT_M19, ZT_M18, ZT_M17, ZT_M16, ZT_M15, ZT_M14, ZT_M13, ZT_M12, ZT_M11, ZT_M10, ZT_M9, ZT_M8, ZT_M7, ZT_M6, ZT_M5, ZT_M4, ZT_M3, ZT_M2, ZT_M1)(f, __VA_ARGS__))
#define ZT_EVAL_(x) x
#define ZT_MAP_N_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, _33, _34, _35, _36, _37, _38, _39, _40, N, ...) N
#define ZT_M1(f, a) f(a)
#define ZT_M2(f, a, ...) f(a), ZT_M1(f, __VA_ARGS__)
#define ZT_M3(f, a, ...) f(a), ZT_M2(f, __VA_ARGS__)
#define ZT_M4(f, a, ...) f(a), ZT_M3(f, __VA_ARGS__)
#define ZT_M5(f, a, ...) f(a), ZT_M4(f, __VA_ARGS__)
#define ZT_M6(f, a, ...) f(a), ZT_M5(f, __VA_ARGS__)
#define ZT_M7(f, a, ...) f(a), ZT_M6(f, __VA_ARGS__)
#define ZT_M8(f, a, ...) f(a), ZT_M7(f, __VA_ARGS__)
#define ZT_M9(f, a, ...) f(a), ZT_M8(f, __VA_ARGS__)
#define ZT_M10(f, a, ...) f(a), ZT_M9(f, __VA_ARGS__)
#define ZT_M11(f, a, ...) f(a), ZT_M10(f, __VA_ARGS__)
#define ZT_M12(f, a, ...) f(a), ZT_M11(f, __VA_ARGS__)
#define ZT_M13(f, a, ...) f(a), ZT_M12(f, __VA_ARGS__)
#define ZT_M14(f, a, ...) f(a), ZT_M13(f, __VA_ARGS__)
#define ZT_M15(f, a, ...) f(a), ZT_M14(f, __VA_ARGS__)
#define ZT_M16(f, a, ...) f(a), ZT_M15(f, __VA_ARGS__)
#define ZT_M17(f, a, ...) f(a), ZT_M16(f, __VA_ARGS__)
#define ZT_M18(f, a, ...) f(a), ZT_M17(f, __VA_ARGS__)
#define ZT_M19(f, a, ...) f(a), ZT_M18(f, __VA_ARGS__)
#define ZT_M20(f, a, ...) f(a), ZT_M19(f, __VA_ARGS__)
#define ZT_M21(f, a, ...) f(a), ZT_M20(f, __VA_ARGS__)
#define ZT_M22(f, a, ...) f(a), ZT_M21(f, __VA_ARGS__)
#define ZT_M23(f, a, ...) f(a), ZT_M22(f, __VA_ARGS__)
#define ZT_M24(f, a, ...) f(a), ZT_M23(f, __VA_ARGS__)
#define ZT_M25(f, a, ...) f(a), ZT_M24(f, __VA_ARGS__)
#define ZT_M26(f, a, ...) f(a), ZT_M25(f, __VA_ARGS__)
#define ZT_M27(f, a, ...) f(a), ZT_M26(f, __VA_ARGS__)
#define ZT_M28(f, a, ...) f(a), ZT_M27(f, __VA_ARGS__)
#define ZT_M29(f, a, ...) f(a), ZT_M28(f, __VA_ARGS__)
#define ZT_M30(f, a, ...) f(a), ZT_M29(f, __VA_ARGS__)
#define ZT_M31(f, a, ...) f(a), ZT_M30(f, __VA_ARGS__)
#define ZT_M32(f, a, ...) f(a), ZT_M31(f, __VA_ARGS__)
#define ZT_M33(f, a, ...) f(a), ZT_M32(f, __VA_ARGS__)
#define ZT_M34(f, a, ...) f(a), ZT_M33(f, __VA_ARGS__)
#define ZT_M35(f, a, ...) f(a), ZT_M34(f, __VA_ARGS__)
#define ZT_M36(f, a, ...) f(a), ZT_M35(f, __VA_ARGS__)
#define ZT_M37(f, a, ...) f(a), ZT_M36(f, __VA_ARGS__)
#define ZT_M38(f, a, ...) f(a), ZT_M37(f, __VA_ARGS__)
#define ZT_M39(f, a, ...) f(a), ZT_M38(f, __VA_ARGS__)
#define ZT_M40(f, a, ...) f(a), ZT_M39(f, __VA_ARGS__)

#endif /* ZLTEST_H */
