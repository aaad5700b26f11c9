/* commands.c - every subcommand as one row: its name, usage line, the
 * option groups it takes, and its validate, run and render functions.
 * A new subcommand is a row here, its functions below, and its experiment
 * in src/experiments/ (with its declarations in include/hfc/experiments.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

/* Images per batch: --batch-size, else 256 or as many as hold 16 MB of
 * pixels per copy (the split keeps three: at 224 x 224 x 3, 27 images; a
 * batch of 256 there touched 460 MB of fresh pages, a fifth of MobileNetV3's
 * time on 100 images). The experiments round it to their engines' groups;
 * results do not depend on it. */
static size_t hfc_batch_for(const hfc_options *o, const hfc_dataset *ds)
{
    const size_t floats = hfc_dataset_image_size(ds), most = ((size_t)1 << 22) / floats;
    return o->batch ? o->batch : most < 1 ? 1 : most < 256 ? most : 256;
}

/* A report's text as render builds it, line by line. */
typedef struct {
    char *out;
    size_t len;
} report_text;

static hfc_status text_start(report_text *t, hfc_error *err)
{
    t->len = 0;
    t->out = calloc(1, 1);
    return t->out ? HFC_OK : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
}

/* Append a line (and a newline), taking it (freed here); NULL: out of memory. */
static hfc_status append_line(report_text *t, char *line, hfc_error *err)
{
    char *grown = line ? realloc(t->out, t->len + strlen(line) + 2) : NULL;
    if (!grown) {
        free(line);
        return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory writing the report");
    }
    t->out = grown;
    t->len += (size_t)sprintf(t->out + t->len, "%s\n", line);
    free(line);
    return HFC_OK;
}

/* The text to *text, or freed after an error. */
static hfc_status text_end(report_text *t, hfc_status st, char **text)
{
    if (st)
        free(t->out);
    else
        *text = t->out;
    return st;
}

static hfc_status no_memory(hfc_error *err)
{
    return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
}

/* ------------------------------------------------------------- evaluate */

static hfc_status validate_evaluate(hfc_options *o, hfc_error *err)
{
    (void)o, (void)err;
    return HFC_OK;
}

/* The split's three accuracies, then the pictures. */
static hfc_status run_evaluate(const hfc_options *o, run_inputs *in, const hfc_progress *progress,
                               run_results *r, hfc_error *err)
{
    hfc_tally *tallies = calloc((size_t)o->n_models * o->n_masks, sizeof *tallies);
    if (!(r->tallies = tallies))
        return no_memory(err);
    hfc_status st = hfc_evaluate(in->engines, in->model_ptrs, o->n_models, o->masks, o->n_masks,
                                 &in->ds, hfc_batch_for(o, &in->ds), &o->protocol, progress, tallies, err);
    if (st || !o->png_dir)
        return st;
    hfc_grid_data g;
    if (!(st = hfc_png_dir(o->png_dir, err)) &&
        !(st = hfc_grid_predict(in->engines, in->model_ptrs, o->n_models, o->masks, o->n_masks,
                                &in->ds, o->png_images, o->n_png_images, &g, err))) {
        st = hfc_pictures(o->png_dir, in->model_ptrs, o->n_models, o->masks, o->n_masks, &g,
                          tallies, err);
        hfc_grid_free(&g);
    }
    return st;
}

/* One table row of a model at a radius (CIFAR-10-C: after the corruption
 * and severity). */
static void table_row(const hfc_model *m, const hfc_dataset *ds, const hfc_tally *t, char *row,
                      size_t cap)
{
    const char *base = strrchr(m->path, '/');
    double n = t->images ? (double)t->images : 1.0;
    char label[64], set[48] = "";
    hfc_mask_label(&t->mask, label, sizeof label);
    if (ds->corruption[0])
        snprintf(set, sizeof set, "%-18s %8d ", ds->corruption, ds->severity);
    snprintf(row, cap, "%s%-28s %7s %9.4f %9.4f %9.4f", set, base ? base + 1 : m->path, label,
             t->correct[0] / n, t->correct[1] / n, t->correct[2] / n);
}

/* Every model x radius: JSON Lines, or a table. */
static hfc_status render_evaluate(const hfc_options *o, const run_inputs *in,
                                  const run_results *r, double seconds, char **text,
                                  hfc_error *err)
{
    const hfc_tally *tallies = r->tallies;
    report_text b;
    hfc_status st = text_start(&b, err);
    char row[1200];
    if (!st && o->table && in->set_index == 0) {
        snprintf(row, sizeof row, "%s%-28s %7s %9s %9s %9s",
                 in->ds.corruption[0] ? "corruption         severity " : "", "model", "radius",
                 "original", "low", "high");
        st = append_line(&b, strdup(row), err);
    }
    for (int j = 0; !st && j < o->n_models; j++)
        for (int k = 0; !st && k < o->n_masks; k++) {
            const hfc_tally *t = &tallies[j * o->n_masks + k];
            if (o->table)
                table_row(&in->models[j], &in->ds, t, row, sizeof row);
            st = append_line(&b,
                             o->table ? strdup(row)
                                      : hfc_report_json(t, &in->models[j], &in->ds, &o->protocol,
                                                        o->shard_index, o->shard_count, seconds,
                                                        o->pretty),
                             err);
        }
    return text_end(&b, st, text);
}

/* --------------------------------------------------------------- attack */

static hfc_status validate_attack(hfc_options *o, hfc_error *err)
{
    if (!o->attack.pgd && o->steps_given && o->attack.steps != 1)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--steps: FGSM is one step (use --method pgd)");
    if (!o->attack.pgd)
        o->attack.steps = 1;
    if (o->protocol.rescale_max || o->png_dir || o->table)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "attack prints JSON and starts from the images as they are: not with "
                        "--rescale, --png or --table");
    if (!o->radius_given)
        o->n_masks = 0;
    return HFC_OK;
}

/* The settings an experiment runs with: its own options, the shared --seed,
 * and (id) the one mask of --radius/--mask. */
static hfc_attack_spec attack_spec(const hfc_options *o)
{
    hfc_attack_spec s = o->attack;
    s.seed = o->seed;
    return s;
}

static hfc_id_spec id_spec(const hfc_options *o)
{
    hfc_id_spec s = o->id;
    s.seed = o->seed;
    s.mask = o->masks[0]; /* --radius R, or the default's first: the disc of 4 */
    return s;
}

static size_t attack_tallies(const hfc_options *o)
{
    return (size_t)o->n_models * o->n_eps * (o->n_masks > 0 ? o->n_masks : 1);
}

/* FGSM/PGD accuracy per model, eps (and radius). */
static hfc_status run_attack(const hfc_options *o, run_inputs *in, const hfc_progress *progress,
                             run_results *r, hfc_error *err)
{
    if (!(r->tallies = calloc(attack_tallies(o), sizeof(hfc_attack_tally))))
        return no_memory(err);
    const hfc_attack_spec spec = attack_spec(o);
    return hfc_attack(in->engines, in->model_ptrs, o->n_models, &spec, o->eps, o->n_eps,
                      o->masks, o->n_masks, &in->ds, hfc_batch_for(o, &in->ds), progress, r->tallies, err);
}

static hfc_status render_attack(const hfc_options *o, const run_inputs *in, const run_results *r,
                                double seconds, char **text, hfc_error *err)
{
    const size_t n = attack_tallies(o);
    const hfc_attack_tally *tallies = r->tallies;
    const hfc_attack_spec spec = attack_spec(o);
    report_text b;
    hfc_status st = text_start(&b, err);
    for (size_t i = 0; !st && i < n; i++)
        st = append_line(&b,
                         hfc_report_attack_json(&tallies[i], &spec,
                                                &in->models[i / (n / o->n_models)], &in->ds,
                                                &o->protocol, o->shard_index, o->shard_count,
                                                seconds, o->pretty),
                         err);
    return text_end(&b, st, text);
}

/* --------------------------------------------------------------- margin */

static hfc_status validate_margin(hfc_options *o, hfc_error *err)
{
    if (o->protocol.bn_batch || o->protocol.rescale_max || o->table || o->shard_count)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "margin runs on running BatchNorm statistics and prints JSON: not with "
                        "--bn-stats batch, --rescale, --table or --shard");
    return HFC_OK;
}

/* Per model, every subspace's margins; DIR/margin.png. */
/* The margin spec with the images' shorter side. */
static hfc_margin_spec margin_spec(const hfc_options *o, const hfc_dataset *ds)
{
    hfc_margin_spec spec = o->margin;
    spec.side = ds->height < ds->width ? ds->height : ds->width;
    return spec;
}

static hfc_status run_margin(const hfc_options *o, run_inputs *in, const hfc_progress *progress,
                             run_results *r, hfc_error *err)
{
    const hfc_margin_spec spec = margin_spec(o, &in->ds);
    const size_t per = (size_t)hfc_margin_subspaces(&spec) * in->ds.n;
    float *margins = malloc((per ? per : 1) * o->n_models * sizeof *margins);
    if (!(r->tallies = margins))
        return no_memory(err);
    hfc_status st = HFC_OK;
    for (int j = 0; !st && j < o->n_models; j++)
        st = hfc_margin(in->engines[j], in->model_ptrs[j], &in->ds, &spec, hfc_batch_for(o, &in->ds), progress,
                        margins + (size_t)j * per, err);
    if (!st && o->png_dir)
        st = hfc_margin_picture(o->png_dir, in->model_ptrs, o->n_models, &spec, margins,
                                in->ds.n, err);
    return st;
}

static hfc_status render_margin(const hfc_options *o, const run_inputs *in, const run_results *r,
                                double seconds, char **text, hfc_error *err)
{
    const hfc_margin_spec spec = margin_spec(o, &in->ds);
    const size_t per = (size_t)hfc_margin_subspaces(&spec) * in->ds.n;
    report_text b;
    hfc_status st = text_start(&b, err);
    for (int j = 0; !st && j < o->n_models; j++)
        st = append_line(&b,
                         hfc_report_margin_json((const float *)r->tallies + (size_t)j * per,
                                                &o->margin, &in->models[j], &in->ds,
                                                &o->protocol, seconds, o->pretty),
                         err);
    return text_end(&b, st, text);
}

/* -------------------------------------------------------------- heatmap */

static const char heatmap_refusal[] =
    "heatmap takes --eps, --seed, --extent, --limit, --png and the common options: not --radius, "
    "--bn-stats batch, --rescale, --table, --shard or attack options";

static hfc_status validate_heatmap(hfc_options *o, hfc_error *err)
{
    if (o->protocol.bn_batch || o->protocol.rescale_max || o->table || o->shard_count ||
        o->radius_given)
        return hfc_fail(err, HFC_ERR_USAGE, "", "%s", heatmap_refusal);
    return HFC_OK;
}

/* Per model, the Fourier heat map; DIR/MODEL-heatmap.png. */
static hfc_status run_heatmap(const hfc_options *o, run_inputs *in, const hfc_progress *progress,
                              run_results *r, hfc_error *err)
{
    if (!(r->tallies = calloc((size_t)o->n_models, sizeof(hfc_heatmap_tally))))
        return no_memory(err);
    hfc_heatmap_spec spec = o->heatmap;
    spec.seed = o->seed;
    hfc_status st = hfc_heatmap(in->engines, in->model_ptrs, o->n_models, &spec, &in->ds,
                                hfc_batch_for(o, &in->ds), progress, r->tallies, err);
    if (!st && o->png_dir)
        st = hfc_heatmap_picture(o->png_dir, in->model_ptrs, o->n_models, r->tallies, err);
    return st;
}

static hfc_status render_heatmap(const hfc_options *o, const run_inputs *in,
                                 const run_results *r, double seconds, char **text,
                                 hfc_error *err)
{
    report_text b;
    hfc_status st = text_start(&b, err);
    for (int j = 0; !st && j < o->n_models; j++)
        st = append_line(&b,
                         hfc_report_heatmap_json((const hfc_heatmap_tally *)r->tallies + j,
                                                 &in->models[j], &in->ds, seconds, o->pretty),
                         err);
    return text_end(&b, st, text);
}

/* ------------------------------------------------------------------- id */

#define ID_CAP (HFC_MAX_ID_LAYERS * HFC_VERSIONS) /* results per model */

static const char id_refusal[] =
    "id takes --version, --radius, --mask, --resamples, --seed, --limit, --png: not "
    "--bn-stats batch, --rescale, --table, --shard or attack options";

static hfc_status validate_id(hfc_options *o, hfc_error *err)
{
    if (o->protocol.bn_batch || o->protocol.rescale_max || o->table || o->shard_count)
        return hfc_fail(err, HFC_ERR_USAGE, "", "%s", id_refusal);
    if (o->limit < 3)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--limit %zu: id needs at least 3 images",
                        o->limit);
    if (o->radius_given && o->n_masks != 1)
        return hfc_fail(err, HFC_ERR_USAGE, "", "id takes one --radius (for low and high)");
    return HFC_OK;
}

/* Per model, version and block output, the TwoNN estimate; DIR/id.png. */
static hfc_status run_id(const hfc_options *o, run_inputs *in, const hfc_progress *progress,
                         run_results *r, hfc_error *err)
{
    hfc_id_layer *layers = calloc((size_t)o->n_models * ID_CAP, sizeof *layers);
    if (!(r->tallies = layers))
        return no_memory(err);
    const hfc_id_spec spec = id_spec(o);
    hfc_status st = HFC_OK;
    for (int j = 0; !st && j < o->n_models; j++)
        st = hfc_intrinsic_dimension(in->engines[j], in->model_ptrs[j], &in->ds, &spec, progress,
                                     layers + (size_t)j * ID_CAP, ID_CAP, &r->counts[j], err);
    if (st || !o->png_dir)
        return st;
    hfc_id_layer *packed = malloc((size_t)o->n_models * ID_CAP * sizeof *packed);
    if (!packed) /* the picture takes the layers packed, model after model */
        return no_memory(err);
    size_t at = 0;
    for (int j = 0; j < o->n_models; j++) {
        memcpy(packed + at, layers + (size_t)j * ID_CAP, (size_t)r->counts[j] * sizeof *packed);
        at += (size_t)r->counts[j];
    }
    st = hfc_id_picture(o->png_dir, in->model_ptrs, o->n_models, packed, r->counts, err);
    free(packed);
    return st;
}

static hfc_status render_id(const hfc_options *o, const run_inputs *in, const run_results *r,
                            double seconds, char **text, hfc_error *err)
{
    const hfc_id_spec spec = id_spec(o);
    report_text b;
    hfc_status st = text_start(&b, err);
    for (int j = 0; !st && j < o->n_models; j++)
        for (int k = 0; !st && k < r->counts[j]; k++)
            st = append_line(&b,
                             hfc_report_id_json((const hfc_id_layer *)r->tallies +
                                                    (size_t)j * ID_CAP + k,
                                                &spec, &in->models[j], &in->ds, seconds,
                                                o->pretty),
                             err);
    return text_end(&b, st, text);
}

/* --------------------------------------------------------------- protos */

static const char protos_refusal[] =
    "protos takes --radius (one), --top, --images, --prototypes, --png, --push and the common "
    "options: not --bn-stats batch, --rescale, --table, --shard or attack options";

static hfc_status validate_protos(hfc_options *o, hfc_error *err)
{
    if (o->protocol.bn_batch || o->protocol.rescale_max || o->table || o->shard_count)
        return hfc_fail(err, HFC_ERR_USAGE, "", "%s", protos_refusal);
    if (o->n_models != 1)
        return hfc_fail(err, HFC_ERR_USAGE, "", "protos takes one MODEL");
    if (o->radius_given && o->n_masks != 1)
        return hfc_fail(err, HFC_ERR_USAGE, "", "protos takes one --radius (for low and high)");
    if (o->push && (o->radius_given || o->top || o->n_proto_images || o->prototypes || o->png_dir))
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "protos --push searches --data for each prototype's nearest patch: not "
                        "with --radius, --top, --images, --prototypes or --png");
    o->top = o->top ? o->top : 5;
    return HFC_OK;
}

/* What a protos run leaves for render: the push record, or the report. */
typedef struct {
    hfc_protos_spec spec;
    size_t explain[HFC_MAX_PNG_IMAGES];
    int has_record;
    hfc_push_record record;
    hfc_protos_result result;
} protos_results;

static void release_protos(void *p)
{
    protos_results *pr = p;
    hfc_push_free(&pr->record);
    hfc_protos_free(&pr->result);
}

/* --images, else the first image of each of the first 10 classes. */
static int default_explain(const hfc_options *o, const hfc_dataset *ds, size_t *out)
{
    if (o->n_proto_images) {
        memcpy(out, o->proto_images, (size_t)o->n_proto_images * sizeof *out);
        return o->n_proto_images;
    }
    int n = 0;
    for (int k = 0; k < ds->n_classes && k < 10; k++)
        for (size_t i = 0; i < ds->n; i++)
            if (ds->labels[i] == k) {
                out[n++] = i;
                break;
            }
    return n;
}

static hfc_status run_protos(const hfc_options *o, run_inputs *in, const hfc_progress *progress,
                             run_results *r, hfc_error *err)
{
    protos_results *pr = calloc(1, sizeof *pr);
    if (!(r->tallies = pr))
        return no_memory(err);
    r->release = release_protos;
    const size_t batch = hfc_batch_for(o, &in->ds);
    if (o->push)
        return hfc_protos_push(in->engines[0], in->model_ptrs[0], &in->ds, batch, progress,
                               &pr->record, err);
    hfc_status st = HFC_OK;
    if (o->prototypes && !(st = hfc_push_read(o->prototypes, in->model_ptrs[0], &pr->record, err)))
        pr->has_record = 1;
    pr->spec = (hfc_protos_spec){o->top, o->masks[0], pr->explain, 0};
    pr->spec.n_explain = default_explain(o, &in->ds, pr->explain);
    if (!st)
        st = hfc_protos(in->engines[0], in->model_ptrs[0], &in->ds, &pr->spec, batch, progress,
                        &pr->result, err);
    if (!st && o->png_dir)
        st = hfc_protos_picture(o->png_dir, in->model_ptrs[0], &pr->result, &pr->spec,
                                pr->has_record ? &pr->record : NULL, in->ds.channels,
                                in->ds.height, in->ds.width, err);
    return st;
}

static hfc_status render_protos(const hfc_options *o, const run_inputs *in, const run_results *r,
                                double seconds, char **text, hfc_error *err)
{
    const protos_results *pr = r->tallies;
    report_text b;
    hfc_status st = text_start(&b, err);
    if (!st)
        st = append_line(&b,
                         o->push ? hfc_report_push_json(&pr->record, &in->models[0], &in->ds,
                                                        seconds, o->pretty)
                                 : hfc_report_protos_json(&pr->result, &pr->spec,
                                                          pr->has_record ? &pr->record : NULL,
                                                          &in->models[0], &in->ds, seconds,
                                                          o->pretty),
                         err);
    return text_end(&b, st, text);
}

/* ---------------------------------------------------------------- merge */

static hfc_status validate_merge(hfc_options *o, hfc_error *err)
{
    if (o->table)
        return hfc_fail(err, HFC_ERR_USAGE, "", "merge prints JSON only: --table does not apply");
    return HFC_OK;
}

static hfc_status render_merge(const hfc_options *o, const run_inputs *in, const run_results *r,
                               double seconds, char **text, hfc_error *err)
{
    (void)in, (void)r, (void)seconds;
    return hfc_merge(o->models, o->n_models, o->pretty, text, err);
}

/* ---------------------------------------------------------------- table */

const hfc_command_row hfc_commands[] = {
    {NULL, "hfc-eval [options] MODEL...", 0, NULL, 0, INPUTS_PLAIN, 0, validate_evaluate,
     run_evaluate, render_evaluate},
    {"compare", "hfc-eval compare [options] MODEL...   (same, with a table by default)", 0, NULL,
     1, INPUTS_PLAIN, 0, validate_evaluate, run_evaluate, render_evaluate},
    {"merge", "hfc-eval merge [-o FILE] [--pretty] REPORT...   (shards -> one report)", 0, NULL,
     0, INPUTS_NONE, 0, validate_merge, NULL, render_merge},
    {"attack", "hfc-eval attack [--method fgsm|pgd] [--eps LIST] [options] MODEL...",
     OPT_ATTACK | OPT_SEED, NULL, 0, INPUTS_GRADIENTS, 0, validate_attack, run_attack,
     render_attack},
    {"margin", "hfc-eval margin [--subspace dct] [--block 8] [--stride 2] [options] MODEL...",
     OPT_MARGIN, NULL, 0, INPUTS_GRADIENTS, 100, validate_margin, run_margin, render_margin},
    {"heatmap", "hfc-eval heatmap [--eps 4] [--seed 0] [--extent K] [--limit 1000] [--png DIR] MODEL...",
     OPT_HEATMAP | OPT_SEED, heatmap_refusal, 0, INPUTS_PLAIN, 1000, validate_heatmap, run_heatmap,
     render_heatmap},
    {"id", "hfc-eval id [--version original,low,high] [--radius R] [--resamples 5] MODEL...",
     OPT_ID | OPT_SEED, id_refusal, 0, INPUTS_VALUES, 2000, validate_id, run_id, render_id},
    {"protos", "hfc-eval protos [--top 5] [--images LIST] [--radius R] [--prototypes FILE] "
     "[--png DIR] MODEL\n       hfc-eval protos --push --data TRAIN [--set train] MODEL",
     OPT_PROTOS, protos_refusal, 0, INPUTS_PROTOTYPES, 0, validate_protos, run_protos,
     render_protos},
};
const int hfc_n_commands = sizeof hfc_commands / sizeof hfc_commands[0];

const hfc_command_row *hfc_command_for(const char *arg, int *named)
{
    *named = 0;
    for (int k = 1; arg && k < hfc_n_commands; k++)
        if (!strcmp(arg, hfc_commands[k].name)) {
            *named = 1;
            return &hfc_commands[k];
        }
    return &hfc_commands[0];
}
