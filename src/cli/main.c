/* main.c - the hfc-eval command line. Everything else is library code in
 * src/; this is the only file that prints errors or picks exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/options.h"

/* Append the text of every model x radius to `out` (JSON Lines or a table). */
static char *render(const hfc_options *o, hfc_model *models, const hfc_tally *tallies,
                    const hfc_dataset *ds, double seconds)
{
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = 0;
    if (o->table)
        len += (size_t)snprintf(out, cap, "%-28s %7s %9s %9s %9s\n", "model", "radius",
                                "original", "low", "high");
    for (int j = 0; j < o->n_models; j++)
        for (int r = 0; r < o->n_masks; r++) {
            const hfc_tally *t = &tallies[j * o->n_masks + r];
            char *line = NULL, row[1200];
            if (o->table) {
                const char *base = strrchr(models[j].path, '/');
                double n = t->images ? (double)t->images : 1.0;
                char label[64];
                hfc_mask_label(&t->mask, label, sizeof label);
                snprintf(row, sizeof row, "%-28s %7s %9.4f %9.4f %9.4f\n",
                         base ? base + 1 : models[j].path, label, t->correct[0] / n,
                         t->correct[1] / n, t->correct[2] / n);
            } else {
                line = hfc_report_json(t, &models[j], ds, &o->protocol, o->shard_index,
                                       o->shard_count, seconds, o->pretty);
                if (!line) {
                    free(out);
                    return NULL;
                }
            }
            const char *text = line ? line : row;
            size_t need = len + strlen(text) + 2;
            if (need > cap) {
                char *grown = realloc(out, cap = need * 2);
                if (!grown) {
                    free(line);
                    free(out);
                    return NULL;
                }
                out = grown;
            }
            len += (size_t)sprintf(out + len, line ? "%s\n" : "%s", text);
            free(line);
        }
    return out;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The progress line on stderr: images done, a bar, rate and time left,
 * redrawn at most 5 times a second and erased when the run ends. */
typedef struct {
    const char *what;  /* "images" */
    double start, last;
    int drawn;
} progress_line;

static void progress_draw(void *ctx, size_t done, size_t total)
{
    progress_line *p = ctx;
    double t = now();
    if (done < total && t - p->last < 0.2)
        return;
    p->last = t;
    double rate = done / (t - p->start > 1e-6 ? t - p->start : 1e-6);
    char bar[21];
    int fill = total ? (int)(20 * done / total) : 20;
    for (int i = 0; i < 20; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    double left = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\r%zu/%zu %s [%s] %3d%%  %.0f %s/s  %.0f s left\033[K", done, total,
            p->what, bar, total ? (int)(100 * done / total) : 100, rate, p->what, left);
    fflush(stderr);
    p->drawn = 1;
}

static void progress_end(progress_line *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

/* Append a report's line (and a newline) to *out, taking the line (freed
 * here); NULL line: out of memory. */
static hfc_status append_line(char **out, size_t *len, char *line, hfc_error *err)
{
    char *grown = line && *out ? realloc(*out, *len + strlen(line) + 2) : NULL;
    if (!grown) {
        free(line);
        return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory writing the report");
    }
    *out = grown;
    *len += (size_t)sprintf(*out + *len, "%s\n", line);
    free(line);
    return HFC_OK;
}

/* What every experiment works on: the models with their engines, the data. */
typedef struct {
    hfc_model models[HFC_MAX_MODELS];
    const hfc_model *model_ptrs[HFC_MAX_MODELS];
    hfc_engine *engines[HFC_MAX_MODELS];
    int n_loaded;
    hfc_dataset ds;
} run_inputs;

static hfc_status load_inputs(hfc_options *o, int gradients, int keep_values, run_inputs *in,
                              hfc_error *err)
{
    hfc_status st;
    memset(in, 0, sizeof *in);
    if (!o->data) {
        const char *env = getenv("HFC_DATA");
        o->data = env && *env ? env : "data/cifar-10-batches-bin";
    }
    for (; in->n_loaded < o->n_models; in->n_loaded++) {
        hfc_model *m = &in->models[in->n_loaded];
        if ((st = hfc_model_load(m, o->models[in->n_loaded], err)))
            return st;
        if (m->format_version < 3)
            fprintf(stderr,
                    "hfc-eval: %s: warning: format version %u carries no checksum, so damage "
                    "cannot be detected (rewrite it with tools/export_pytorch.py --upgrade)\n",
                    m->path, m->format_version);
        in->model_ptrs[in->n_loaded] = m;
        hfc_engine_options eo = {.threads = o->threads, .conv = o->conv,
                                 .bn_batch = o->protocol.bn_batch, .gradients = gradients,
                                 .keep_values = keep_values};
        if ((o->protocol.smooth > 0 && (st = hfc_model_smooth_first_conv(m, o->protocol.smooth, err))) ||
            (st = hfc_engine_new(&in->engines[in->n_loaded], m, &eo, err))) {
            hfc_model_free(m);
            return st;
        }
        hfc_model_release_conv_weights(m); /* the engine has its own */
    }
    if ((st = hfc_dataset_load(&in->ds, o->data, o->dataset, o->set, o->limit, err)))
        return st;
    if (o->shard_count && (st = hfc_dataset_shard(&in->ds, o->shard_index, o->shard_count, err)))
        return st;
    if (o->protocol.bn_batch && in->ds.first % (size_t)o->protocol.bn_batch)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--shard %d/%d starts at image %zu, inside a batch of --bn-batch %d: with "
                        "--bn-stats batch, shards must start at multiples of it (choose N so that "
                        "%zu/N is one)",
                        o->shard_index, o->shard_count, in->ds.first, o->protocol.bn_batch,
                        in->ds.set_images);
    return HFC_OK;
}

static void free_inputs(run_inputs *in)
{
    hfc_dataset_free(&in->ds);
    for (int j = 0; j < in->n_loaded; j++) {
        hfc_engine_free(in->engines[j]);
        hfc_model_free(&in->models[j]);
    }
}

/* Evaluate: the split's three accuracies, pictures, the report. */
static hfc_status run_evaluate(hfc_options *o, run_inputs *in, const hfc_progress *progress,
                               double t0, char **text, hfc_error *err)
{
    hfc_tally *tallies = calloc((size_t)o->n_models * o->n_masks, sizeof *tallies);
    if (!tallies)
        return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    hfc_status st = hfc_evaluate(in->engines, in->model_ptrs, o->n_models, o->masks, o->n_masks,
                                 &in->ds, o->batch, &o->protocol, progress, tallies, err);
    if (!st && o->png_dir) {
        hfc_grid_data g;
        if (!(st = hfc_png_dir(o->png_dir, err)) &&
            !(st = hfc_grid_predict(in->engines, in->model_ptrs, o->n_models, o->masks,
                                    o->n_masks, &in->ds, o->png_images, o->n_png_images, &g,
                                    err))) {
            st = hfc_pictures(o->png_dir, in->model_ptrs, o->n_models, o->masks, o->n_masks, &g,
                              tallies, err);
            hfc_grid_free(&g);
        }
    }
    double seconds = round((now() - t0) * 1000.0) / 1000.0;
    if (!st && !(*text = render(o, in->models, tallies, &in->ds, seconds)))
        st = hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory writing the report");
    free(tallies);
    return st;
}

/* Attack: FGSM/PGD accuracy per model, eps (and radius), as JSON Lines. */
static hfc_status run_attack(hfc_options *o, run_inputs *in, const hfc_progress *progress,
                             double t0, char **text, hfc_error *err)
{
    const int R = o->n_masks > 0 ? o->n_masks : 1;
    const size_t n = (size_t)o->n_models * o->n_eps * R;
    hfc_attack_tally *tallies = calloc(n, sizeof *tallies);
    if (!tallies)
        return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    hfc_status st = hfc_attack(in->engines, in->model_ptrs, o->n_models, &o->attack, o->eps,
                               o->n_eps, o->masks, o->n_masks, &in->ds, o->batch, progress,
                               tallies, err);
    double seconds = round((now() - t0) * 1000.0) / 1000.0;
    size_t len = 0;
    char *out = calloc(1, 1);
    for (size_t i = 0; !st && i < n; i++)
        st = append_line(&out, &len,
                         hfc_report_attack_json(&tallies[i], &o->attack,
                                                &in->models[i / (n / o->n_models)], &in->ds,
                                                &o->protocol, o->shard_index, o->shard_count,
                                                seconds, o->pretty),
                         err);
    free(tallies);
    if (st)
        free(out);
    else
        *text = out;
    return st;
}

/* Margin: per model, every subspace's margins, as JSON Lines. */
static hfc_status run_margin(hfc_options *o, run_inputs *in, const hfc_progress *progress,
                             double t0, char **text, hfc_error *err)
{
    const size_t per = (size_t)hfc_margin_subspaces(&o->margin) * in->ds.n;
    float *margins = malloc((per ? per : 1) * o->n_models * sizeof *margins);
    char *out = calloc(1, 1);
    size_t len = 0;
    hfc_status st = margins && out ? HFC_OK : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    for (int j = 0; !st && j < o->n_models; j++) {
        float *mj = margins + (size_t)j * per;
        if ((st = hfc_margin(in->engines[j], in->model_ptrs[j], &in->ds, &o->margin, o->batch,
                             progress, mj, err)))
            break;
        double seconds = round((now() - t0) * 1000.0) / 1000.0;
        st = append_line(&out, &len,
                         hfc_report_margin_json(mj, &o->margin, &in->models[j], &in->ds,
                                                &o->protocol, seconds, o->pretty),
                         err);
    }
    if (!st && o->png_dir)
        st = hfc_margin_picture(o->png_dir, in->model_ptrs, o->n_models, &o->margin, margins,
                                in->ds.n, err);
    free(margins);
    if (st)
        free(out);
    else
        *text = out;
    return st;
}

/* Heatmap: per model, the Fourier heat map, as JSON Lines. */
static hfc_status run_heatmap(hfc_options *o, run_inputs *in, const hfc_progress *progress,
                              double t0, char **text, hfc_error *err)
{
    hfc_heatmap_tally *tallies = calloc((size_t)o->n_models, sizeof *tallies);
    char *out = calloc(1, 1);
    size_t len = 0;
    hfc_status st = tallies && out ? HFC_OK : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    if (!st)
        st = hfc_heatmap(in->engines, in->model_ptrs, o->n_models, &o->heatmap, &in->ds, o->batch,
                         progress, tallies, err);
    double seconds = round((now() - t0) * 1000.0) / 1000.0;
    for (int j = 0; !st && j < o->n_models; j++)
        st = append_line(&out, &len,
                         hfc_report_heatmap_json(&tallies[j], &in->models[j], &in->ds, seconds,
                                                 o->pretty),
                         err);
    if (!st && o->png_dir)
        st = hfc_heatmap_picture(o->png_dir, in->model_ptrs, o->n_models, tallies, err);
    free(tallies);
    if (st)
        free(out);
    else
        *text = out;
    return st;
}

/* Id: per model, version and block output, the TwoNN estimate, as JSON Lines. */
static hfc_status run_id(hfc_options *o, run_inputs *in, const hfc_progress *progress, double t0,
                         char **text, hfc_error *err)
{
    const int cap = HFC_MAX_ID_LAYERS * HFC_VERSIONS;
    hfc_id_layer *layers = calloc((size_t)o->n_models * cap, sizeof *layers);
    int counts[HFC_MAX_MODELS] = {0};
    char *out = calloc(1, 1);
    size_t len = 0;
    hfc_status st = layers && out ? HFC_OK : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    for (int j = 0; !st && j < o->n_models; j++) {
        hfc_id_layer *L = layers + (size_t)j * cap;
        if ((st = hfc_intrinsic_dimension(in->engines[j], in->model_ptrs[j], &in->ds, &o->id,
                                          progress, L, cap, &counts[j], err)))
            break;
        double seconds = round((now() - t0) * 1000.0) / 1000.0;
        for (int k = 0; !st && k < counts[j]; k++)
            st = append_line(&out, &len,
                             hfc_report_id_json(&L[k], &o->id, &in->models[j], &in->ds, seconds,
                                                o->pretty),
                             err);
    }
    if (!st && o->png_dir) { /* the pictures take the layers packed, model after model */
        size_t at = 0;
        for (int j = 0; j < o->n_models; j++) {
            memmove(layers + at, layers + (size_t)j * cap, (size_t)counts[j] * sizeof *layers);
            at += (size_t)counts[j];
        }
        st = hfc_id_picture(o->png_dir, in->model_ptrs, o->n_models, layers, counts, err);
    }
    free(layers);
    if (st)
        free(out);
    else
        *text = out;
    return st;
}

/* Load, run the command's experiment with a progress line, free. */
static hfc_status run_experiment(hfc_options *o, double t0, char **text, hfc_error *err)
{
    run_inputs *in = malloc(sizeof *in);
    if (!in)
        return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    hfc_status st = load_inputs(o, o->command == HFC_CMD_ATTACK || o->command == HFC_CMD_MARGIN,
                                o->command == HFC_CMD_ID, in, err);
    if (!st) {
        progress_line line = {"images", now(), 0, 0};
        hfc_progress progress = {progress_draw, &line};
        int show = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
        if (o->command == HFC_CMD_ATTACK)
            st = run_attack(o, in, show ? &progress : NULL, t0, text, err);
        else if (o->command == HFC_CMD_MARGIN)
            st = run_margin(o, in, show ? &progress : NULL, t0, text, err);
        else if (o->command == HFC_CMD_HEATMAP)
            st = run_heatmap(o, in, show ? &progress : NULL, t0, text, err);
        else if (o->command == HFC_CMD_ID)
            st = run_id(o, in, show ? &progress : NULL, t0, text, err);
        else
            st = run_evaluate(o, in, show ? &progress : NULL, t0, text, err);
        progress_end(&line);
    }
    free_inputs(in);
    free(in);
    return st;
}

/* fds 0-2 that the caller closed get /dev/null, so that no file opened
 * later takes their number (a report would then also receive whatever is
 * printed to stdout). Returns whether stdout was closed: writing to it is
 * then an error, but only if something was to be written there. */
static int guard_standard_fds(void)
{
    int stdout_closed = 0;
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            stdout_closed |= fd == STDOUT_FILENO;
            int got = open("/dev/null", fd ? O_WRONLY : O_RDONLY);
            if (got >= 0 && got != fd)
                close(got); /* lowest free number: got == fd unless opened by a race */
        }
    return stdout_closed;
}

int main(int argc, char **argv)
{
    int stdout_closed = guard_standard_fds();
    hfc_options o;
    hfc_options_default(&o);
    hfc_error err = {{0}, {0}};
    char *text = NULL;
    hfc_cli_action action;
    double t0 = now();

    hfc_status st = hfc_parse_args(argc, argv, &o, &action, &err);
    if (st)
        goto out;
    if (action != HFC_CLI_RUN) {
        if (stdout_closed)
            st = hfc_fail(&err, HFC_ERR_IO, "stdout", "write failed: %s", strerror(EBADF));
        else if (action == HFC_CLI_HELP)
            for (int i = 0; hfc_usage[i]; i++)
                fputs(hfc_usage[i], stdout);
        else
            fputs("hfc-eval " HFC_VERSION "\n", stdout);
        goto out;
    }
    const char *conv = getenv("HFC_CONV");  /* for tests and benchmarks: see hfc.h */
    if (conv && *conv && strcmp(conv, "auto")) {
        if (strcmp(conv, "direct") && strcmp(conv, "gemm")) {
            st = hfc_fail(&err, HFC_ERR_USAGE, "", "HFC_CONV='%.40s' is not auto, direct or gemm",
                          conv);
            goto out;
        }
        o.conv = !strcmp(conv, "gemm") ? HFC_CONV_GEMM : HFC_CONV_DIRECT;
    }
    if (o.command == HFC_CMD_MERGE)
        st = hfc_merge(o.models, o.n_models, o.pretty, &text, &err);
    else
        st = run_experiment(&o, t0, &text, &err);
    if (st)
        goto out;
    int to_stdout = !o.output || !strcmp(o.output, "-") || !strcmp(o.output, "/dev/stdout");
    if (stdout_closed && to_stdout && *text) {
        st = hfc_fail(&err, HFC_ERR_IO, "stdout", "write failed: %s", strerror(EBADF));
    } else if (o.output) {
        st = hfc_write_output(o.output, text, &err);
    } else if (fputs(text, stdout) < 0 || fflush(stdout) != 0) {
        st = hfc_fail(&err, HFC_ERR_IO, "stdout", "write failed: %s", strerror(errno));
    }
out:
    free(text);
    if (fclose(stdout) != 0 && !st)
        st = hfc_fail(&err, HFC_ERR_IO, "stdout", "write failed: %s", strerror(errno));
    if (st) {
        if (err.path[0])
            fprintf(stderr, "hfc-eval: %s: %s\n", err.path, err.reason);
        else
            fprintf(stderr, "hfc-eval: %s\n", err.reason);
    }
    return (int)st;
}
