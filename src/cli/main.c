/* main.c - the hfc-eval command line. Everything else is library code in
 * src/; this is the only file that prints errors or picks exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/data.h"

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

/* --data, or $HFC_DATA, or the default; a path that does not exist is
 * refused here, before the models load (a second for a large one), by the
 * loader itself so that it says what it would say later. */
static hfc_status resolve_data(hfc_options *o, hfc_error *err)
{
    if (!o->data) {
        const char *env = getenv("HFC_DATA");
        o->data = env && *env ? env : "data/cifar-10-batches-bin";
    }
    struct stat sb;
    if (stat(o->data, &sb) == 0)
        return HFC_OK;
    hfc_dataset ds = {0};
    hfc_status st = hfc_load_data(o, 0, 3, &ds, err);
    hfc_dataset_free(&ds);
    return st;
}

/* The models and their engines. */
static hfc_status load_models(hfc_options *o, hfc_inputs_kind kind, run_inputs *in, hfc_error *err)
{
    hfc_status st;
    memset(in, 0, sizeof *in);
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
                                 .bn_batch = o->protocol.bn_batch,
                                 .gradients = kind == INPUTS_GRADIENTS,
                                 .keep_values = kind == INPUTS_VALUES};
        hfc_prototypes protos;
        if (kind == INPUTS_PROTOTYPES && !(st = hfc_model_prototypes(m, &protos, err)))
            eo.tap = protos.feature_node;
        if (st || (o->protocol.smooth > 0 && (st = hfc_model_smooth_first_conv(m, o->protocol.smooth, err))) ||
            (st = hfc_engine_new(&in->engines[in->n_loaded], m, &eo, err))) {
            hfc_model_free(m);
            return st;
        }
        hfc_model_release_conv_weights(m); /* the engine has its own */
    }
    return HFC_OK;
}

/* Data set k of the run into in->ds (the one before freed). */
static hfc_status load_set(const hfc_options *o, int k, run_inputs *in, hfc_error *err)
{
    hfc_dataset_free(&in->ds);
    hfc_status st = hfc_load_data(o, k, in->n_loaded ? in->models[0].channels : 3, &in->ds, err);
    if (st)
        return st;
    if (in->ds.skipped)
        fprintf(stderr, "hfc-eval: %s: warning: %zu image%s could not be read and %s left out "
                "(--skip-bad-images); the first: %s\n", in->ds.path, in->ds.skipped,
                in->ds.skipped > 1 ? "s" : "", in->ds.skipped > 1 ? "are" : "is",
                in->ds.skipped_note);
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

/* Append b to *a (both malloc'd; b is freed). */
static hfc_status append_text(char **a, char *b, hfc_error *err)
{
    if (!*a) {
        *a = b;
        return HFC_OK;
    }
    size_t n = strlen(*a), m = strlen(b);
    char *joined = realloc(*a, n + m + 1);
    if (joined) {
        memcpy(joined + n, b, m + 1);
        *a = joined;
    }
    free(b);
    return joined ? HFC_OK : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
}

/* Run the command on data set k (loaded here) and append its report. */
static hfc_status run_set(hfc_options *o, int k, run_inputs *in, double t0, char **text,
                          hfc_error *err)
{
    const hfc_command_row *c = o->cmd;
    run_results r = {0};
    char *part = NULL;
    hfc_status st = load_set(o, k, in, err);
    in->set_index = k;
    if (!st) {
        progress_line line = {"images", now(), 0, 0};
        hfc_progress progress = {progress_draw, &line};
        int show = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
        st = c->run(o, in, show ? &progress : NULL, &r, err);
        progress_end(&line);
    }
    double seconds = round((now() - t0) * 1000.0) / 1000.0;
    if (!st && !(st = c->render(o, in, &r, seconds, &part, err)))
        st = append_text(text, part, err);
    if (r.release && r.tallies)
        r.release(r.tallies);
    free(r.tallies);
    return st;
}

/* The command's row: load its models, then for each data set of the run
 * (one, or a CIFAR-10-C sweep) run it with a progress line and render its
 * report; free. */
static hfc_status run_command(hfc_options *o, double t0, char **text, hfc_error *err)
{
    const hfc_command_row *c = o->cmd;
    if (c->inputs == INPUTS_NONE) {
        run_results r = {0};
        double seconds = round((now() - t0) * 1000.0) / 1000.0;
        return c->render(o, NULL, &r, seconds, text, err);
    }
    run_inputs *in = malloc(sizeof *in);
    if (!in)
        return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    int sets = 1;
    memset(in, 0, sizeof *in);
    hfc_status st = resolve_data(o, err);
    if (!st)
        st = hfc_data_sweep(o, &sets, err);
    if (!st)
        st = load_models(o, c->inputs, in, err);
    for (int k = 0; !st && k < sets; k++, t0 = now())
        st = run_set(o, k, in, t0, text, err);
    free_inputs(in);
    free(in);
    free(o->sweep);
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
        else if (action == HFC_CLI_HELP) {
            for (int i = 0; i < hfc_n_commands; i++)
                printf("%s%s\n", i ? "       " : "usage: ", hfc_commands[i].usage);
            for (int i = 0; hfc_usage[i]; i++)
                fputs(hfc_usage[i], stdout);
        }
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
    const char *isa = getenv("HFC_ISA");  /* for tests and benchmarks: see hfc/core.h */
    hfc_isa_level want;
    if (isa && *isa && !hfc_isa_parse(isa, &want)) {
        st = hfc_fail(&err, HFC_ERR_USAGE, "", "HFC_ISA='%.40s' is not avx512, avx2 or generic", isa);
        goto out;
    }
    if (isa && *isa && want > hfc_isa_of_cpu()) {
        st = hfc_fail(&err, HFC_ERR_USAGE, "", "HFC_ISA=%s: this CPU has only %s", isa,
                      hfc_isa_name(hfc_isa_of_cpu()));
        goto out;
    }
    st = run_command(&o, t0, &text, &err);
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
