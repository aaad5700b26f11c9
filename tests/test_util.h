/* test_util.h - what the C tests share: reading the reference files that
 * tests/gen_refs.py writes, and PASS/FAIL lines that tests/run.sh counts. */
#ifndef HFC_TEST_UTIL_H
#define HFC_TEST_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfc.h"
#include "layers/layer.h" /* the tests look inside nodes */

static int test_failures;

static inline void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    test_failures += !ok;
}

/* A reference file: u32 a, u32 b, then bytes. Exits on a bad file: a test
 * that cannot read its reference has failed. */
typedef struct {
    uint32_t a, b;
    uint8_t *raw;
    size_t len;
    const uint8_t *body;
} ref_file;

static inline ref_file read_ref(const char *path, size_t body_bytes_per_ab)
{
    ref_file r = {0};
    hfc_error err;
    if (hfc_read_file(path, &r.raw, &r.len, &err) || r.len < 8) {
        printf("FAIL: cannot read reference %s\n", path);
        exit(1);
    }
    memcpy(&r.a, r.raw, 4);
    memcpy(&r.b, r.raw + 4, 4);
    r.body = r.raw + 8;
    if (body_bytes_per_ab && r.len - 8 != (size_t)r.a * r.b * body_bytes_per_ab) {
        printf("FAIL: reference %s has the wrong size\n", path);
        exit(1);
    }
    return r;
}

/* HFC_CONV picks the conv algorithms, as it does for hfc-eval. */
static inline hfc_conv_choice conv_choice_from_env(void)
{
    const char *conv = getenv("HFC_CONV");
    return !conv ? HFC_CONV_AUTO
           : !strcmp(conv, "gemm") ? HFC_CONV_GEMM
           : !strcmp(conv, "direct") ? HFC_CONV_DIRECT : HFC_CONV_AUTO;
}

/* Load a test's model; on failure print FAIL and exit. */
static inline void load_model_or_fail(const char *name, const char *path, hfc_model *m)
{
    hfc_error err;
    if (hfc_model_load(m, path, &err)) {
        printf("FAIL: %s: model: %s: %s\n", name, err.path, err.reason);
        exit(1);
    }
}

#endif
