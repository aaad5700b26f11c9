/* cpu.c - what this CPU can do, asked once in one place: the kernels pick
 * their AVX-512 paths and SHA-256 its instructions from here. */
#include "hfc/core.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

int hfc_cpu_avx512f(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* The x86 SHA extensions (CPUID leaf 7, EBX bit 29), with SSE4.1 for the
 * blend. */
int hfc_cpu_sha(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1))
        return 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 29 & 1);
}
#else
int hfc_cpu_avx512f(void) { return 0; }
int hfc_cpu_sha(void) { return 0; }
#endif
