/* kernels/simd_avx2.c - the tiled kernels of kernels/conv_simd.h, built for
 * CPUs with AVX2 and FMA (AMD Zen 1-3, Intel's client cores, VMs that hide
 * AVX-512): 8 lanes, 16 registers, the tiles shaped for them. */
#define HFC_SIMD_AVX2
#include "kernels/conv_simd.h"
#include "kernels/groups_simd.h"
