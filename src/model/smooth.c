/* smooth.c - the paper's kernel smoothing (Eq. 3; HaohanWang/HFC's
 * generateSmoothKernel): every kernel of the first conv convolved with
 * [[rho, rho, rho], [rho, 1, rho], [rho, rho, rho]] (hfc/model.h). */
#include <stdlib.h>
#include <string.h>

#include "layers/node.h"

/* Index into [0, n) of a symmetric ('symm') boundary: -1 -> 0, n -> n-1. */
static int symm(int i, int n)
{
    while (i < 0 || i >= n)
        i = i < 0 ? -i - 1 : 2 * n - i - 1;
    return i;
}

hfc_status hfc_model_smooth_first_conv(hfc_model *m, double rho, hfc_error *err)
{
    int first = -1;
    for (int i = 1; i < m->n_nodes && first < 0; i++)
        if (m->nodes[i].n_in > 0 && m->nodes[i].in[0] == 0)
            first = i;
    if (first < 0 || m->nodes[first].op != HFC_OP_CONV2D)
        return hfc_fail(err, HFC_ERR_USAGE, m->path,
                        "--smooth: the first layer is %s, not a conv",
                        first < 0 ? "missing" : hfc_op_name(m->nodes[first].op));
    hfc_node *cv = &m->nodes[first];
    const int kh = cv->kh, kw = cv->kw;
    const size_t kernels = (size_t)cv->out.c * (m->nodes[0].out.c / cv->groups);
    float *w = (float *)cv->weight; /* in m->arena, which m owns */
    double k[kh * kw];
    for (size_t q = 0; q < kernels; q++) {
        float *kq = w + q * (size_t)(kh * kw);
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                double acc = 0;
                for (int di = -1; di <= 1; di++)
                    for (int dj = -1; dj <= 1; dj++)
                        acc += (di || dj ? rho : 1.0) * kq[symm(i + di, kh) * kw + symm(j + dj, kw)];
                k[i * kw + j] = acc;
            }
        for (int t = 0; t < kh * kw; t++)
            kq[t] = (float)k[t];
    }
    return HFC_OK;
}
