/* prototype.c - ProtoPNet's prototype layer: the squared L2 distance of
 * every position of a feature map to each of m prototypes, by one product
 * per image; the minimum over the map; its similarity (hfc/model.h has the
 * formulas). Also what experiments read of it (hfc_model_prototypes). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "layers/layer.h"

static const char *const similarity_names[] = {"log", "linear", "distance"};

hfc_status parse_prototype(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    const hfc_shape in = p->in[0];
    size_t dims[2] = {0, (size_t)in.c};
    const tensor_info *ti = NULL;
    hfc_status st = get_tensor(L, p->m, p->j, "prototypes", p->where, 0, 2, dims, &nd->weight, &ti);
    if (st)
        return st;
    if (ti->dims[0] < 1 || ti->dims[0] > HFC_PROTOTYPES_MAX)
        return FAIL(L, "%s: %zu prototypes (1 to %d)", p->where, ti->dims[0], HFC_PROTOTYPES_MAX);
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(p->j, "similarity");
    nd->similarity = -1;
    for (int k = 0; k < 3; k++)
        if (!sim || (cJSON_IsString(sim) && !strcmp(sim->valuestring, similarity_names[k]))) {
            nd->similarity = k;
            break;
        }
    if (nd->similarity < 0)
        return FAIL(L, "%s: \"similarity\" must be \"log\", \"linear\" or \"distance\"", p->where);
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(p->j, "epsilon");
    if (eps && (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || !(eps->valuedouble < 1)))
        return FAIL(L, "%s: \"epsilon\" must be a number in (0, 1)", p->where);
    nd->eps = eps ? (float)eps->valuedouble : 1e-4f;
    nd->out = (hfc_shape){(int)ti->dims[0], 1, 1};
    return HFC_OK;
}

size_t hfc_prototype_scratch(int positions, int count)
{
    return (size_t)count + positions + (size_t)positions * count;
}

/* dist (positions, count) of map z (positions, depth) to prototypes P
 * (count, depth): |z|^2 + (-2 z.p + |p|^2), then relu; PyTorch's order of
 * the three terms. scratch: hfc_prototype_scratch's floats. The product
 * runs per image with the same shape, so an image's distances do not
 * depend on the others in its call. */
static void distances(const float *z, int positions, int depth, const float *P, int count,
                      float *scratch, float *dist)
{
    float *p2 = scratch, *z2 = scratch + count;
    for (int j = 0; j < count; j++) {
        float s = 0;
        for (int k = 0; k < depth; k++)
            s += P[(size_t)j * depth + k] * P[(size_t)j * depth + k];
        p2[j] = s;
    }
    for (int q = 0; q < positions; q++) {
        float s = 0;
        for (int k = 0; k < depth; k++)
            s += z[(size_t)q * depth + k] * z[(size_t)q * depth + k];
        z2[q] = s;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, positions, count, depth, -2.0f, z, depth,
                P, depth, 0.0f, dist, count);
    for (int q = 0; q < positions; q++)
        for (int j = 0; j < count; j++) {
            float d = z2[q] + (dist[(size_t)q * count + j] + p2[j]);
            dist[(size_t)q * count + j] = d > 0 ? d : 0;
        }
}

void hfc_prototype_distances(const hfc_prototypes *p, const float *z, int positions, float *scratch,
                             float *dist)
{
    distances(z, positions, p->depth, p->vectors, p->count, scratch, dist);
}

float hfc_prototype_similarity(int similarity, float epsilon, float d)
{
    if (similarity == HFC_SIMILARITY_LOG)
        return logf((d + 1) / (d + epsilon));
    return similarity == HFC_SIMILARITY_LINEAR ? -d : d;
}

/* d similarity / d distance */
static float dsimilarity(int similarity, float epsilon, float d)
{
    if (similarity == HFC_SIMILARITY_LOG)
        return 1 / (d + 1) - 1 / (d + epsilon);
    return similarity == HFC_SIMILARITY_LINEAR ? -1.0f : 1.0f;
}

/* The first position of the smallest distance to prototype j (PyTorch's
 * max-pool of the negated map routes to its first maximum). */
int hfc_prototype_nearest(const float *dist, int positions, int count, int j)
{
    int best = 0;
    for (int q = 1; q < positions; q++)
        if (dist[(size_t)q * count + j] < dist[(size_t)best * count + j])
            best = q;
    return best;
}

void forward_prototype(const step_run *r)
{
    const hfc_node *nd = r->s->node;
    const hfc_tensor *x = &r->x[0];
    const int positions = x->h * x->w, count = nd->out.c;
    float *dist = r->scratch + count + positions;
    for (int b = 0; b < r->n; b++) {
        distances(x->data + (size_t)b * positions * x->c, positions, x->c, nd->weight, count,
                  r->scratch, dist);
        for (int j = 0; j < count; j++) {
            float d = dist[(size_t)hfc_prototype_nearest(dist, positions, count, j) * count + j];
            r->y.data[(size_t)b * count + j] = hfc_prototype_similarity(nd->similarity, nd->eps, d);
        }
    }
}

/* d/dz of prototype j's distance at its nearest position q (the only one
 * the minimum reads): 2 (z_q - p_j) where the relu passed it (d > 0). */
void backward_prototype(const step_back *r)
{
    const hfc_node *nd = r->s->node;
    const hfc_tensor *x = &r->x[0];
    const int positions = x->h * x->w, count = nd->out.c, depth = x->c;
    float *dist = r->scratch + count + positions;
    for (int b = 0; b < r->n; b++) {
        const float *z = x->data + (size_t)b * positions * depth;
        float *dz = r->dx[0].data + (size_t)b * positions * depth;
        distances(z, positions, depth, nd->weight, count, r->scratch, dist);
        for (int j = 0; j < count; j++) {
            const int q = hfc_prototype_nearest(dist, positions, count, j);
            const float d = dist[(size_t)q * count + j];
            if (!(d > 0))
                continue;
            const float g = r->dy.data[(size_t)b * count + j] * dsimilarity(nd->similarity, nd->eps, d);
            const float *pj = nd->weight + (size_t)j * depth;
            for (int k = 0; k < depth; k++)
                dz[(size_t)q * depth + k] += g * (2 * z[(size_t)q * depth + k] - 2 * pj[k]);
        }
    }
}

/* The class a prototype stands for: the row of the last layer's largest
 * weight on it (the first of equals). */
static void classes_of(hfc_prototypes *p)
{
    for (int j = 0; j < p->count; j++) {
        int best = 0;
        for (int c = 1; c < p->n_classes; c++)
            if (p->last_weight[(size_t)c * p->count + j] > p->last_weight[(size_t)best * p->count + j])
                best = c;
        p->class_of[j] = p->last_weight ? best : -1;
    }
}

hfc_status hfc_model_prototypes(const hfc_model *m, hfc_prototypes *out, hfc_error *err)
{
    memset(out, 0, sizeof *out);
    out->node = -1;
    for (int i = 0; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op == HFC_OP_PROTOTYPE && out->node >= 0)
            return hfc_fail(err, HFC_ERR_MODEL, m->path, "more than one prototype layer");
        if (nd->op != HFC_OP_PROTOTYPE)
            continue;
        const hfc_shape in = m->nodes[nd->in[0]].out;
        *out = (hfc_prototypes){.node = i, .feature_node = nd->in[0], .count = nd->out.c,
                                .depth = in.c, .height = in.h, .width = in.w,
                                .similarity = nd->similarity, .epsilon = nd->eps,
                                .vectors = nd->weight};
    }
    if (out->node < 0)
        return hfc_fail(err, HFC_ERR_MODEL, m->path,
                        "has no prototype layer (protos needs a ProtoPNet-style model)");
    for (int i = out->node + 1; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op == HFC_OP_LINEAR && nd->in[0] == out->node) {
            out->n_classes = nd->out.c;
            out->last_weight = nd->weight;
            break;
        }
    }
    classes_of(out);
    return HFC_OK;
}
