/* kernels/simd.h - the vector vocabulary of the hand-written kernels, for
 * one instruction set at a time. A kernel file defines HFC_SIMD_AVX512 or
 * HFC_SIMD_AVX2 and includes this, then the kernels' template
 * (kernels/conv_simd.h), which is written once in these words:
 *
 *   vf       a vector of VW floats (16: zmm, 8: ymm)
 *   vmask    which lanes a masked load or store touches; vmask_n(n): the
 *            first n (none for n <= 0, all for n >= VW)
 *   vload, vstore, vloadm, vstorem      unaligned (masked: zeros read);
 *            vload_lanes, vstore_lanes below choose between them
 *   vset1, vzero, vadd, vsub, vmul, vmax, vmin, vfmadd (a*b + c),
 *   vfnmadd (c - a*b)
 *   vidx, vidx_load, vperm(idx, v)      lane l of the result is v[idx[l]]
 *   SIMD     the target attribute of a function that uses them
 *   SFX(f)   f's name for this instruction set (f_avx512, f_avx2)
 *   TILE_REGS  vector registers a product's tile may hold (32 or 16)
 *
 * A masked lane is never read, so a masked load may start at any address
 * whose lanes in the mask are valid (both sets suppress faults there). */
#ifndef HFC_KERNELS_SIMD_H
#define HFC_KERNELS_SIMD_H

#include <immintrin.h>

#if defined(HFC_SIMD_AVX512)

#define SIMD __attribute__((target("avx512f")))
#define SFX(f) f##_avx512
#define VW 16
#define TILE_REGS 32
typedef __m512 vf;
typedef __mmask16 vmask;
typedef __m512i vidx;

SIMD static inline vmask vmask_n(int n)
{
    return n >= 16 ? (vmask)0xffff : n <= 0 ? (vmask)0 : (vmask)((1u << n) - 1);
}
SIMD static inline vf vloadm(vmask m, const float *p) { return _mm512_maskz_loadu_ps(m, p); }
SIMD static inline void vstorem(float *p, vmask m, vf v) { _mm512_mask_storeu_ps(p, m, v); }
SIMD static inline vidx vidx_load(const int *p) { return _mm512_loadu_si512(p); }
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vzero _mm512_setzero_ps
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vmax _mm512_max_ps
#define vmin _mm512_min_ps
#define vfmadd _mm512_fmadd_ps
#define vfnmadd _mm512_fnmadd_ps
#define vperm(idx, v) _mm512_permutexvar_ps(idx, v)

#elif defined(HFC_SIMD_AVX2)

#define SIMD __attribute__((target("avx2,fma")))
#define SFX(f) f##_avx2
#define VW 8
#define TILE_REGS 16
typedef __m256 vf;
typedef __m256i vmask;
typedef __m256i vidx;

SIMD static inline vmask vmask_n(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
SIMD static inline vf vloadm(vmask m, const float *p) { return _mm256_maskload_ps(p, m); }
SIMD static inline void vstorem(float *p, vmask m, vf v) { _mm256_maskstore_ps(p, m, v); }
SIMD static inline vidx vidx_load(const int *p) { return _mm256_loadu_si256((const __m256i *)p); }
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vzero _mm256_setzero_ps
#define vadd _mm256_add_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vmax _mm256_max_ps
#define vmin _mm256_min_ps
#define vfmadd _mm256_fmadd_ps
#define vfnmadd _mm256_fnmadd_ps
#define vperm(idx, v) _mm256_permutevar8x32_ps(v, idx)

#else
#error "define HFC_SIMD_AVX512 or HFC_SIMD_AVX2 before including kernels/simd.h"
#endif

/* A load or store of the lanes in m, plain when `whole` says m holds every
 * lane (AVX2's masked ones cost several plain ones: with them everywhere
 * the Winograd input transform took twice its time); a load with !inside
 * reads nothing and gives zeros. */
SIMD static inline vf vload_lanes(int whole, int inside, vmask m, const float *p)
{
    return whole ? (inside ? vload(p) : vzero()) : vloadm(inside ? m : vmask_n(0), p);
}
SIMD static inline void vstore_lanes(int whole, float *p, vmask m, vf v)
{
    if (whole)
        vstore(p, v);
    else
        vstorem(p, m, v);
}

#endif
