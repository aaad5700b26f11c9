/* kernels/simd_avx512.c - the tiled kernels of kernels/conv_simd.h, built for
 * CPUs with AVX-512F: 16 lanes, 32 registers. */
#define HFC_SIMD_AVX512
#include "kernels/conv_simd.h"
#include "kernels/groups_simd.h"
