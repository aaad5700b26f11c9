/* graph.c - a model's graph for those outside the layers: node names and
 * shapes, the first conv's kernels (the pictures), and the block outputs
 * `hfc-eval id` measures (hfc/model.h). */
#include <stdlib.h>
#include <string.h>

#include "layers/node.h"

const char *hfc_model_node_name(const hfc_model *m, int i) { return m->nodes[i].name; }

hfc_shape hfc_model_node_shape(const hfc_model *m, int i) { return m->nodes[i].out; }

hfc_kernels hfc_model_first_conv(const hfc_model *m)
{
    for (int i = 0; i < m->n_nodes; i++) {
        const hfc_node *cv = &m->nodes[i];
        if (cv->op == HFC_OP_CONV2D)
            return (hfc_kernels){cv->name, cv->weight, cv->out.c,
                                 m->nodes[cv->in[0]].out.c / cv->groups, cv->kh, cv->kw};
    }
    return (hfc_kernels){NULL, NULL, 0, 0, 0, 0};
}

int hfc_block_outputs(const hfc_model *m, int *nodes, int cap)
{
    const int N = m->n_nodes;
    int *last = calloc((size_t)N, sizeof *last), *readers = calloc((size_t)N, sizeof *readers);
    int *feeds_layer = calloc((size_t)N, sizeof *feeds_layer);
    int count = 0;
    if (!last || !readers || !feeds_layer)
        goto done;
    for (int v = 0; v < N; v++)
        for (int k = 0; k < m->nodes[v].n_in; k++) {
            int a = m->nodes[v].in[k];
            last[a] = v > last[a] ? v : last[a];
            readers[a]++;
            hfc_op op = m->nodes[v].op;
            feeds_layer[a] |= op == HFC_OP_CONV2D || op == HFC_OP_LINEAR ||
                              op == HFC_OP_MAXPOOL2D || op == HFC_OP_AVGPOOL2D ||
                              op == HFC_OP_GLOBAL_AVGPOOL || op == HFC_OP_ADAPTIVE_AVGPOOL2D ||
                              op == HFC_OP_ADAPTIVE_MAXPOOL2D;
        }
    int reach = 0; /* the last reader of anything before v */
    for (int v = 0; v < N && count < cap; v++) {
        hfc_op op = m->nodes[v].op;
        int cut = reach <= v; /* nothing made before v is read after it: v is all that is live */
        int block_end = op == HFC_OP_ADD || op == HFC_OP_CONCAT;
        if (v == 0 || v == m->output ||
            (cut && (readers[v] >= 2 || block_end || feeds_layer[v])))
            nodes[count++] = v;
        reach = last[v] > reach ? last[v] : reach;
    }
done:
    free(last);
    free(readers);
    free(feeds_layer);
    return count;
}
