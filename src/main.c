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

#define MAX_RADII 64
#define MAX_MODELS 32

static const char USAGE[] =
    "usage: hfc-eval [options] MODEL...\n"
    "       hfc-eval compare [options] MODEL...   (same, with a table by default)\n"
    "\n"
    "Split every CIFAR-10 test image into its low- and high-frequency\n"
    "reconstructions at radius R (Wang et al., CVPR 2020), run each model on\n"
    "the original, low and high images, and print the three accuracies as\n"
    "JSON Lines: one object per model and radius.\n"
    "\n"
    "options:\n"
    "  -r, --radius LIST     radii, comma-separated, each >= 0 (default 4,8,12,16)\n"
    "  -d, --data PATH       CIFAR-10 binary file or directory holding test_batch.bin\n"
    "                        (default: $HFC_DATA, then ./data/cifar-10-batches-bin)\n"
    "  -n, --limit N         use only the first N images\n"
    "  -b, --batch-size N    images per batch (default 256)\n"
    "  -j, --threads N       worker threads (default: number of CPUs)\n"
    "  -o, --output FILE     write the JSON to FILE (atomically) instead of stdout\n"
    "      --pretty          indent the JSON\n"
    "      --table           print a table instead of JSON\n"
    "      --json            print JSON Lines (the default, except for compare)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 I/O, 3 bad data file, 4 bad model file, 5 out of memory\n";

typedef struct {
    double radii[MAX_RADII];
    int n_radii;
    const char *data;
    size_t limit;
    size_t batch;
    int threads;
    const char *output;
    int pretty;
    int table;
    const char *models[MAX_MODELS];
    int n_models;
} options;

static hfc_status usage_error(hfc_error *err, const char *fmt, const char *arg)
{
    return hfc_fail(err, HFC_ERR_USAGE, "", fmt, arg);
}

static hfc_status parse_count(const char *s, const char *opt, long long lo, long long hi,
                              long long *out, hfc_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        hfc_fail(err, HFC_ERR_USAGE, "", "%s: '%s' is not an integer in %lld..%lld", opt, s, lo, hi);
        return HFC_ERR_USAGE;
    }
    *out = v;
    return HFC_OK;
}

static hfc_status parse_radii(const char *s, options *o, hfc_error *err)
{
    o->n_radii = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        double r = strtod(p, &end);
        if (end == p || errno || !isfinite(r) || r < 0 || r > 1000 || (*end && *end != ','))
            return usage_error(err, "--radius: '%s' is not a comma-separated list of numbers in 0..1000", s);
        if (o->n_radii == MAX_RADII)
            return hfc_fail(err, HFC_ERR_USAGE, "", "--radius: at most %d radii", MAX_RADII);
        o->radii[o->n_radii++] = r;
        if (!*end)
            return HFC_OK;
        p = end + 1;
    }
}

static hfc_status parse_args(int argc, char **argv, options *o, int *done, hfc_error *err)
{
    *done = 0;
    int i = 1;
    if (argc > 1 && !strcmp(argv[1], "compare")) {
        o->table = 1;
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long v;
        hfc_status st = HFC_OK;
#define NEEDS_VALUE()                                                           \
    do {                                                                        \
        if (!val)                                                               \
            return usage_error(err, "%s needs a value (see --help)", a);        \
        i++;                                                                    \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            *done = 1;
            return HFC_OK;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("hfc-eval %s\n", HFC_VERSION);
            *done = 1;
            return HFC_OK;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--radius")) {
            NEEDS_VALUE();
            st = parse_radii(val, o, err);
        } else if (!strcmp(a, "-d") || !strcmp(a, "--data")) {
            NEEDS_VALUE();
            o->data = val;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--limit")) {
            NEEDS_VALUE();
            if (!(st = parse_count(val, a, 1, 1000000000, &v, err)))
                o->limit = (size_t)v;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            NEEDS_VALUE();
            if (!(st = parse_count(val, a, 1, 65536, &v, err)))
                o->batch = (size_t)v;
        } else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) {
            NEEDS_VALUE();
            if (!(st = parse_count(val, a, 1, 256, &v, err)))
                o->threads = (int)v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            NEEDS_VALUE();
            o->output = val;
        } else if (!strcmp(a, "--pretty")) {
            o->pretty = 1;
        } else if (!strcmp(a, "--table")) {
            o->table = 1;
        } else if (!strcmp(a, "--json")) {
            o->table = 0;
        } else if (a[0] == '-' && a[1]) {
            return usage_error(err, "unknown option '%s' (see --help)", a);
        } else {
            if (o->n_models == MAX_MODELS)
                return hfc_fail(err, HFC_ERR_USAGE, "", "at most %d models", MAX_MODELS);
            o->models[o->n_models++] = a;
        }
#undef NEEDS_VALUE
        if (st)
            return st;
    }
    if (o->n_models == 0)
        return usage_error(err, "no MODEL given%s", " (see --help)");
    return HFC_OK;
}

/* Append the text of every model x radius to `out` (JSON Lines or a table). */
static char *render(const options *o, hfc_model *models, const hfc_tally *tallies,
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

/* Write text to path through a temporary file in the same directory, so an
 * error never leaves a half-written file in place of the old one. */
static hfc_status write_atomically(const char *path, const char *text, hfc_error *err)
{
    char tmp[1200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
        return hfc_fail(err, HFC_ERR_IO, path, "path too long");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return hfc_fail(err, HFC_ERR_IO, path, "cannot create a file beside it: %s", strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(errno));
    }
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(e));
    }
    return HFC_OK;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    options o = {.radii = {4, 8, 12, 16}, .n_radii = 4, .batch = 256};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = cpus > 0 ? (int)(cpus < 256 ? cpus : 256) : 1;
    hfc_error err = {{0}, {0}};
    hfc_dataset ds = {0};
    hfc_model models[MAX_MODELS];
    hfc_engine *engines[MAX_MODELS] = {0};
    const hfc_model *model_ptrs[MAX_MODELS];
    hfc_tally *tallies = NULL;
    char *text = NULL;
    int n_loaded = 0, done;
    double t0 = now();

    hfc_status st = parse_args(argc, argv, &o, &done, &err);
    if (st || done)
        goto out;
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
    double seconds = round((now() - t0) * 1000.0) / 1000.0;
    text = render(&o, models, tallies, ds.path, seconds);
    if (!text) {
        st = hfc_fail(&err, HFC_ERR_NOMEM, "", "out of memory writing the report");
        goto out;
    }
    if (o.output) {
        st = write_atomically(o.output, text, &err);
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
