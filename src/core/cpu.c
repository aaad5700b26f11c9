/* cpu.c - what this CPU can do, asked once in one place: the kernels pick
 * their instruction set (hfc_isa) and SHA-256 its instructions from here. */
#include <stdlib.h>
#include <string.h>

#include "hfc/core.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

int hfc_cpu_avx512f(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

static int cpu_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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
static int cpu_avx2_fma(void) { return 0; }
int hfc_cpu_sha(void) { return 0; }
#endif

static const char *const isa_names[] = {"generic", "avx2", "avx512"};

const char *hfc_isa_name(hfc_isa_level level)
{
    return level >= HFC_ISA_GENERIC && level <= HFC_ISA_AVX512 ? isa_names[level] : "?";
}

hfc_isa_level hfc_isa_of_cpu(void)
{
    return hfc_cpu_avx512f() ? HFC_ISA_AVX512 : cpu_avx2_fma() ? HFC_ISA_AVX2 : HFC_ISA_GENERIC;
}

int hfc_isa_parse(const char *name, hfc_isa_level *level)
{
    for (int k = HFC_ISA_GENERIC; k <= HFC_ISA_AVX512; k++)
        if (strcmp(name, isa_names[k]) == 0) {
            *level = (hfc_isa_level)k;
            return 1;
        }
    return 0;
}

/* The level, decided on the first call: the CPU's, or HFC_ISA's when that
 * names a level the CPU has (main checks the variable first and refuses
 * anything else, so here an unusable value just leaves the CPU's). */
hfc_isa_level hfc_isa(void)
{
    static int level = -1;
    if (level < 0) {
        hfc_isa_level cpu = hfc_isa_of_cpu(), want;
        const char *env = getenv("HFC_ISA");
        level = env && hfc_isa_parse(env, &want) && want <= cpu ? (int)want : (int)cpu;
    }
    return (hfc_isa_level)level;
}
