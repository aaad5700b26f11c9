/* kernels/simd_avx512.c - the tiled kernels of kernels/conv_simd.h, built for
 * CPUs with AVX-512F. */
#include "kernels/conv_simd.h"
