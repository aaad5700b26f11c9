/* table.c - every layer's row of include/hfc_layers.def, expanded once:
 * the model loader looks layers up here by name, the engine runs them from
 * here. A row whose parse_, forward_ or backward_ function is missing does
 * not link. */
#include <assert.h>

#include "layers/layer.h"

const hfc_layer hfc_layers[HFC_OP_COUNT] = {
#define HFC_LAYER(E, name, inputs, cost, since)                                                   \
    [HFC_OP_##E] = {#name, inputs, since, cost, parse_##name, forward_##name, backward_##name},
#define HFC_UNARY(E, name, since)                                                                 \
    [HFC_OP_##E] = {#name, 1, since, COST_NONE, parse_unary, forward_unary, backward_unary},
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
};
static_assert(sizeof hfc_layers / sizeof hfc_layers[0] == HFC_OP_COUNT,
              "every hfc_op has its row in include/hfc_layers.def");

const char *hfc_op_name(hfc_op op)
{
    return (unsigned)op < HFC_OP_COUNT ? hfc_layers[op].name : NULL;
}
