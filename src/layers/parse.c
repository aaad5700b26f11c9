/* parse.c - what every layer's parser uses to read its node (layer.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layers/layer.h"

/* A JSON number that must be an integer in [lo, hi]. */
hfc_status get_int(loader *L, const cJSON *obj, const char *key, const char *where,
                          long long lo, long long hi, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return FAIL(L, "%s: \"%s\" is missing or not a number", where, key);
    double d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return FAIL(L, "%s: \"%s\" = %g is not an integer in %lld..%lld", where, key, d, lo, hi);
    *out = (long long)d;
    return HFC_OK;
}
/* [a, b] of integers in [lo, hi]; absent gives `dflt` for both. */
hfc_status get_pair(loader *L, const cJSON *obj, const char *key, const char *where,
                           int lo, int hi, int dflt, int *a, int *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        *a = *b = dflt;
        return HFC_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return FAIL(L, "%s: \"%s\" must be an array of two integers", where, key);
    int out[2];
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            e->valuedouble < lo || e->valuedouble > hi)
            return FAIL(L, "%s: \"%s\" values must be integers in %d..%d", where, key, lo, hi);
        out[i] = (int)e->valuedouble;
    }
    *a = out[0];
    *b = out[1];
    return HFC_OK;
}
/* The tensor named by node[key]: must exist with exactly the given dims
 * (a dim of 0 means any). Absent and optional gives NULL. */
hfc_status get_tensor(loader *L, const hfc_model *m, const cJSON *node, const char *key,
                             const char *where, int optional, int ndim, const size_t *dims,
                             const float **out, const tensor_info **info)
{
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, key);
    if (!v || cJSON_IsNull(v)) {
        if (optional)
            return HFC_OK;
        return FAIL(L, "%s: \"%s\" tensor is missing", where, key);
    }
    if (!cJSON_IsString(v))
        return FAIL(L, "%s: \"%s\" must name a tensor", where, key);
    for (int i = 0; i < L->n_tensors; i++) {
        const tensor_info *ti = &L->tensors[i];
        if (strcmp(ti->name, v->valuestring))
            continue;
        int ok = ti->ndim == ndim;
        for (int d = 0; ok && d < ndim; d++)
            ok = dims[d] == 0 || dims[d] == ti->dims[d];
        if (!ok) {
            char want[96] = "", got[96] = "";
            for (int d = 0; d < ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", d ? "x" : "", dims[d]);
            for (int d = 0; d < ti->ndim; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", d ? "x" : "", ti->dims[d]);
            return FAIL(L, "%s: tensor %.100s has shape %s, the layer needs %s (0 = any)",
                        where, ti->name, got, want);
        }
        *out = m->arena + ti->arena_offset;
        if (info)
            *info = ti;
        return HFC_OK;
    }
    return FAIL(L, "%s: tensor \"%.100s\" is not in the file", where, v->valuestring);
}

hfc_status get_eps(layer_parse *p)
{
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(p->j, "eps");
    if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || !isfinite(eps->valuedouble))
        return FAIL(p->L, "%s: \"eps\" must be a positive number", p->where);
    p->nd->eps = (float)eps->valuedouble;
    return HFC_OK;
}
