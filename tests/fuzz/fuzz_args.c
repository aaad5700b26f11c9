/* fuzz_args.c - libFuzzer harness for the command line: the input, cut at
 * NUL bytes, is argv[1..]. Parsing must succeed or fail with a usage status,
 * and a success must leave options inside the documented ranges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

#define MAX_ARGS 64

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *argv[MAX_ARGS + 1] = {"hfc-eval"};
    int argc = 1;
    for (char *p = text; argc <= MAX_ARGS && p <= text + size; p += strlen(p) + 1)
        argv[argc++] = p;

    hfc_options o;
    hfc_options_default(&o);
    hfc_cli_action action;
    hfc_error err;
    hfc_status st = hfc_parse_args(argc, argv, &o, &action, &err);
    if (st) {
        check(st == HFC_ERR_USAGE && err.reason[0] && strlen(err.reason) < sizeof err.reason);
    } else if (action == HFC_CLI_RUN) {
        check(o.n_models >= 1 && o.n_models <= HFC_MAX_MODELS);
        /* attack without --radius attacks the original images only */
        check(o.n_masks >= ((o.cmd->accepts & OPT_ATTACK) ? 0 : 1) && o.n_masks <= HFC_MAX_RADII);
        check(o.n_eps >= 1 && o.n_eps <= HFC_MAX_EPS);
        for (int i = 0; i < o.n_eps; i++)
            check(o.eps[i] >= 0 && o.eps[i] <= 1);
        check(o.attack.steps >= 1 && (o.attack.pgd || o.attack.steps == 1));
        check(o.protocol.bn_batch >= 0 && o.protocol.smooth >= 0);
        for (int i = 0; i < o.n_masks; i++) {
            const hfc_mask *m = &o.masks[i];
            check(isfinite(m->r) && m->r >= 0 && m->r <= 1000 && m->kind < HFC_MASK_KINDS);
            check(m->kind != HFC_MASK_BAND || (m->r < m->outer && m->outer <= 1000));
            check(m->kind != HFC_MASK_GAUSSIAN || m->r > 0);
        }
        check(o.batch <= 65536); /* 0: the default, by the images' size */
        check(o.threads >= 1 && o.threads <= 256);
        check(o.limit <= 1000000000);
        check(o.n_png_images >= 0 && o.n_png_images <= HFC_MAX_PNG_IMAGES);
        check(!o.png_dir || o.png_dir[0]);
        check(o.shard_count == 0 || (o.shard_index >= 0 && o.shard_index < o.shard_count &&
                                     o.shard_count <= 1000000));
        check(!(o.shard_count && o.png_dir));
        check(o.progress >= -1 && o.progress <= 1);
        check(o.set == HFC_SET_TEST || o.set == HFC_SET_TRAIN);
        check((unsigned)o.dataset < HFC_DATASET_KINDS);
        check(o.resize >= 0 && o.resize <= HFC_MAX_SIDE && o.crop >= 0 && o.crop <= HFC_MAX_SIDE);
        check((o.severities & ~0x3eu) == 0);
        check(o.cmd->inputs != INPUTS_NONE || !o.table);
        for (int i = 0; i < o.n_models; i++)
            check(o.models[i] >= text && o.models[i] <= text + size);
    }
    free(text);
    return 0;
}
