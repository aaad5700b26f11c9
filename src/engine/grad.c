/* engine/grad.c - what a fused step does besides its layer, undone before
 * the layer's own backward (src/layers/, backward_NAME) runs: the ReLU or
 * ReLU6 it applied as it wrote, and the residual Add it folded in.
 * PyTorch's conventions at the kinks: ReLU'(0) = 0, ReLU6' is 1 on (0, 6)
 * only. */
#include "engine/internal.h"

void backward_fused(const step_back *r, const hfc_tensor *dres)
{
    const size_t n = hfc_tensor_size(&r->dy);
    float *restrict dy = r->dy.data;
    const float *restrict y = r->y.data;
    if (r->s->relu == HFC_FUSED_RELU6) /* PyTorch's: 0 < x < 6 */
        for (size_t i = 0; i < n; i++)
            dy[i] = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
    else if (r->s->relu)
        for (size_t i = 0; i < n; i++)
            dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    if (dres) {
        float *restrict d = dres->data;
        for (size_t i = 0; i < n; i++)
            d[i] += dy[i];
    }
}






