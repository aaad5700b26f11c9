/* main.c - the hfc-eval command line. Everything else is library code in
 * src/; this is the only file that prints errors or picks exit codes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hfc.h"

/* Append the text of every model x radius to `out` (JSON Lines or a table). */
static char *render(const hfc_options *o, hfc_model *models, const hfc_tally *tallies,
                    const char *data_path, double seconds)
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
        for (int r = 0; r < o->n_radii; r++) {
            const hfc_tally *t = &tallies[j * o->n_radii + r];
            char *line = NULL, row[1200];
            if (o->table) {
                const char *base = strrchr(models[j].path, '/');
                double n = t->images ? (double)t->images : 1.0;
                snprintf(row, sizeof row, "%-28s %7g %9.4f %9.4f %9.4f\n",
                         base ? base + 1 : models[j].path, t->radius, t->correct[0] / n,
                         t->correct[1] / n, t->correct[2] / n);
            } else {
                line = hfc_report_json(t, &models[j], data_path, seconds, o->pretty);
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

int main(int argc, char **argv)
{
    hfc_options o;
    hfc_options_default(&o);
    hfc_error err = {{0}, {0}};
    hfc_dataset ds = {0};
    hfc_model models[HFC_MAX_MODELS];
    hfc_engine *engines[HFC_MAX_MODELS] = {0};
    const hfc_model *model_ptrs[HFC_MAX_MODELS];
    hfc_tally *tallies = NULL;
    char *text = NULL;
    int n_loaded = 0;
    hfc_cli_action action;
    double t0 = now();

    hfc_status st = hfc_parse_args(argc, argv, &o, &action, &err);
    if (st)
        goto out;
    if (action != HFC_CLI_RUN) {
        fputs(action == HFC_CLI_HELP ? hfc_usage : "hfc-eval " HFC_VERSION "\n", stdout);
        goto out;
    }
    if (!o.data) {
        const char *env = getenv("HFC_DATA");
        o.data = env && *env ? env : "data/cifar-10-batches-bin";
    }
    for (; n_loaded < o.n_models; n_loaded++) {
        if ((st = hfc_model_load(&models[n_loaded], o.models[n_loaded], &err)))
            goto out;
        model_ptrs[n_loaded] = &models[n_loaded];
        if ((st = hfc_engine_new(&engines[n_loaded], &models[n_loaded], o.threads, &err))) {
            hfc_model_free(&models[n_loaded]);
            goto out;
        }
    }
    if ((st = hfc_dataset_load(&ds, o.data, o.limit, &err)))
        goto out;
    tallies = calloc((size_t)o.n_models * o.n_radii, sizeof *tallies);
    if (!tallies) {
        st = hfc_fail(&err, HFC_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((st = hfc_evaluate(engines, model_ptrs, o.n_models, o.radii, o.n_radii, &ds, o.batch,
                           tallies, &err)))
        goto out;
    if (o.png_dir &&
        (st = hfc_pictures(o.png_dir, engines, model_ptrs, o.n_models, o.radii, o.n_radii, &ds,
                           o.png_images, o.n_png_images, tallies, &err)))
        goto out;
    double seconds = round((now() - t0) * 1000.0) / 1000.0;
    text = render(&o, models, tallies, ds.path, seconds);
    if (!text) {
        st = hfc_fail(&err, HFC_ERR_NOMEM, "", "out of memory writing the report");
        goto out;
    }
    if (o.output) {
        st = hfc_write_output(o.output, text, &err);
    } else if (fputs(text, stdout) < 0 || fflush(stdout) != 0) {
        st = hfc_fail(&err, HFC_ERR_IO, "stdout", "write failed: %s", strerror(errno));
    }
out:
    free(text);
    free(tallies);
    hfc_dataset_free(&ds);
    for (int j = 0; j < n_loaded; j++) {
        hfc_engine_free(engines[j]);
        hfc_model_free(&models[j]);
    }
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
