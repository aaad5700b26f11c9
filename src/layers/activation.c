/* activation.c - every HFC_UNARY row of include/hfc_layers.def: y = f(x)
 * elementwise, one input, the shape kept. A new activation is its row,
 * hfc_act_NAME (the function) and hfc_dact_NAME (its derivative) here. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "layers/layer.h"

float hfc_act_relu(float x) { return x > 0.0f ? x : 0.0f; }
float hfc_act_relu6(float x) { return x > 0.0f ? (x < 6.0f ? x : 6.0f) : 0.0f; }
/* e^x for the activations, as straight-line code the compiler vectorises
 * (expf is a call per element: with it, SiLU and sigmoid took half of
 * EfficientNet's time). x = n ln2 + r with |r| <= ln2/2, ln2 in two parts
 * so n ln2 is exact; e^r by Cephes's degree-6 polynomial; 2^n put into the
 * exponent bits. The steps are fused multiply-adds (fmaf, one instruction on
 * the x86-64-v3 baseline): SiLU 0.53 -> 0.38 ns a value, EfficientNet 0.45
 * -> 0.41 s on 1,000 images. x is clamped to [-87, 88], where 2^n stays a
 * normal float: relative error within 1e-7 of e^x there (8.5e-8 at worst,
 * checked against double exp on every float of the range), and at the
 * clamps the sigmoid and SiLU below are within 1e-38 of their limits. A NaN
 * stays NaN (and never reaches the conversion to int). */
static inline float exp_vec(float x_in)
{
    float x = x_in > -87.0f ? x_in : -87.0f; /* NaN -> -87 */
    x = x < 88.0f ? x : 88.0f;
    float n = floorf(fmaf(x, 1.44269504088896341f, 0.5f));
    float r = fmaf(n, 2.12194440e-4f, fmaf(n, -0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x_in == x_in ? p * scale : x_in;
}

float hfc_act_sigmoid(float x) { return 1.0f / (1.0f + exp_vec(-x)); }
float hfc_act_silu(float x) { return x / (1.0f + exp_vec(-x)); }
float hfc_act_hardsigmoid(float x) { return hfc_act_relu6(x + 3.0f) / 6.0f; }
float hfc_act_hardswish(float x) { return x * hfc_act_relu6(x + 3.0f) / 6.0f; }
/* erf, as straight-line code (erff is a call per element: it and its loop
 * were 26% of ConvNeXt's time). |z| < 1: the Taylor series to z^23,
 * erf(z) = 2/sqrt(pi) sum (-1)^k z^(2k+1) / (k! (2k+1)), its first term
 * added last by a fused multiply-add; otherwise 1 - erfc(|z|) with erfc(z) =
 * t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), P of degree 9 (Numerical Recipes'
 * erfcc, fractional error below 1.2e-7). Checked against double erf on
 * every float of [-6, 6]: absolute error at most 1.8e-7 (glibc's erff:
 * 5.8e-8; a conv's float sums differ from PyTorch's by more). GELU is then
 * computed as PyTorch writes it, 0.5 x (1 + erf(x / sqrt 2)), so that its
 * rounding where 1 + erf cancels (large negative x) is PyTorch's too. */
static inline float erf_vec(float z)
{
    float a = fabsf(z), s = z * z;
    float p = -1.2290555302e-09f;
    p = fmaf(p, s, 1.4807192816e-08f);
    p = fmaf(p, s, -1.6365844691e-07f);
    p = fmaf(p, s, 1.6462114366e-06f);
    p = fmaf(p, s, -1.4925650358e-05f);
    p = fmaf(p, s, 1.2055332982e-04f);
    p = fmaf(p, s, -8.5483270235e-04f);
    p = fmaf(p, s, 5.2239776254e-03f);
    p = fmaf(p, s, -2.6866170645e-02f);
    p = fmaf(p, s, 1.1283791671e-01f);
    p = fmaf(p, s, -3.7612638903e-01f);
    float small = fmaf(z * s, p, z * 1.1283791671e+00f);
    float t = 1.0f / fmaf(0.5f, a, 1.0f);
    float q = 0.17087277f;
    q = fmaf(q, t, -0.82215223f);
    q = fmaf(q, t, 1.48851587f);
    q = fmaf(q, t, -1.13520398f);
    q = fmaf(q, t, 0.27886807f);
    q = fmaf(q, t, -0.18628806f);
    q = fmaf(q, t, 0.09678418f);
    q = fmaf(q, t, 0.37409196f);
    q = fmaf(q, t, 1.00002368f);
    q = fmaf(q, t, -1.26551223f);
    float big = 1.0f - t * exp_vec(fmaf(-a, a, q));
    return a < 1.0f ? small : z < 0.0f ? -big : big;
}

float hfc_act_gelu(float x) { return 0.5f * x * (1.0f + erf_vec(x * 0.70710678118654752f)); }

/* One loop per activation, each calling its function directly so that the
 * compiler inlines and vectorises it (through a function pointer, ReLU6 took
 * 70% of MobileNetV2's time). Built twice: for every CPU, and with 16-float
 * vectors for those with AVX-512, where SiLU measured 0.64 instead of 4.3 ns
 * a value (the 8-float build's selects cost more than the arithmetic). The
 * two give the same floats: each value's operations are the same. */
__attribute__((always_inline)) static inline void unary_loop(const float *restrict in, hfc_op op,
                                                             float *restrict out, size_t n)
{
    switch (op) {
#define HFC_LAYER(E, name, inputs, cost, since)
#define HFC_UNARY(E, name, since)                                                                 \
    case HFC_OP_##E:                                                                              \
        for (size_t i = 0; i < n; i++)                                                            \
            out[i] = hfc_act_##name(in[i]);                                                       \
        break;
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
    default:
        break;
    }
}

static void unary_any(const float *restrict in, hfc_op op, float *restrict out, size_t n)
{
    unary_loop(in, op, out, n);
}

__attribute__((target("avx512f,prefer-vector-width=512"))) static void
unary_avx512(const float *restrict in, hfc_op op, float *restrict out, size_t n)
{
    unary_loop(in, op, out, n);
}

static void unary(const hfc_tensor *x, hfc_op op, hfc_tensor *y)
{
    (hfc_isa() == HFC_ISA_AVX512 ? unary_avx512 : unary_any)(x->data, op, y->data,
                                                             hfc_tensor_size(x));
}

/* Every HFC_UNARY row: one input, the same shape out. */
hfc_status parse_unary(layer_parse *p)
{
    p->nd->out = p->in[0];
    return HFC_OK;
}

void forward_unary(const step_run *r)
{
    hfc_tensor y = r->y;
    unary(&r->x[0], r->s->op, &y);
}

/* The derivative of each activation, from its input x and output y: one
 * function a row, named by the row (a row without one does not build).
 * PyTorch's values at the kinks: ReLU'(0) = 0, ReLU6' is 1 on (0, 6) only. */
static inline float hfc_dact_relu(float x, float y) { (void)y; return x > 0.0f ? 1.0f : 0.0f; }
static inline float hfc_dact_relu6(float x, float y)
{
    (void)y;
    return x > 0.0f && x < 6.0f ? 1.0f : 0.0f;
}
/* sigmoid'(x) = e / (1 + e)^2 with e = exp(-|x|): from x, not as y (1 - y),
 * whose 1 - y keeps few digits once y is near 1 (a ProtoPNet's add-on
 * layers with random weights reach x = 150: y (1 - y) was off by 1e-4 of
 * the batch's largest gradient where PyTorch's float32 was off by 4e-5). */
static inline float hfc_dact_sigmoid(float x, float y)
{
    (void)y;
    const float e = expf(-fabsf(x)), d = 1.0f + e;
    return e / (d * d);
}
static inline float hfc_dact_silu(float x, float y)
{
    (void)y;
    float s = hfc_act_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}
static inline float hfc_dact_hardsigmoid(float x, float y)
{
    (void)y;
    return x > -3.0f && x < 3.0f ? 1.0f / 6.0f : 0.0f;
}
static inline float hfc_dact_hardswish(float x, float y)
{
    (void)y;
    return x < -3.0f ? 0.0f : x <= 3.0f ? x / 3.0f + 0.5f : 1.0f;
}
/* Phi(x) + x phi(x), phi the standard normal density */
static inline float hfc_dact_gelu(float x, float y)
{
    (void)y;
    return 0.5f * (1.0f + erf_vec(x * 0.70710678118654752f)) +
           x * 0.39894228040143268f * exp_vec(-0.5f * x * x);
}

/* dx += dy * f'(x), one loop per activation calling its derivative
 * directly, so that the loop vectorises; built twice, as unary_loop above
 * (the ReLUs' derivative through a per-value switch was 38% of PGD). */
__attribute__((always_inline)) static inline void
dact_loop(hfc_op op, const float *restrict x, const float *restrict y, const float *restrict dy,
          float *restrict dx, size_t n)
{
    switch (op) {
#define HFC_LAYER(E, name, inputs, cost, since)
#define HFC_UNARY(E, name, since)                                                                 \
    case HFC_OP_##E:                                                                              \
        for (size_t i = 0; i < n; i++)                                                            \
            dx[i] += dy[i] * hfc_dact_##name(x[i], y[i]);                                         \
        break;
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
    default:
        break;
    }
}

static void dact_any(hfc_op op, const float *restrict x, const float *restrict y,
                     const float *restrict dy, float *restrict dx, size_t n)
{
    dact_loop(op, x, y, dy, dx, n);
}

__attribute__((target("avx512f,prefer-vector-width=512"))) static void
dact_avx512(hfc_op op, const float *restrict x, const float *restrict y, const float *restrict dy,
            float *restrict dx, size_t n)
{
    dact_loop(op, x, y, dy, dx, n);
}

void backward_unary(const step_back *r)
{
    (hfc_isa() == HFC_ISA_AVX512 ? dact_avx512 : dact_any)(
        r->s->op, r->x[0].data, r->y.data, r->dy.data, r->dx[0].data, hfc_tensor_size(&r->dy));
}
