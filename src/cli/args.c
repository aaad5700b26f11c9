/* args.c - the command line's grammar: argv -> hfc_options. Kept out of
 * main.c so that a fuzzer can drive it (tests/fuzz/fuzz_args.c); it prints
 * nothing and never exits. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/data.h"

static const char usage_common[] =
    "\n"
    "Split every CIFAR-10 test image into its low- and high-frequency\n"
    "reconstructions at radius R (Wang et al., CVPR 2020), run each model on\n"
    "the original, low and high images, and print the three accuracies as\n"
    "JSON Lines: one object per model and radius.\n"
    "\n"
    "options:\n"
    "  -r, --radius LIST     radii, comma-separated, each in 0..1000 (default 4,8,12,16);\n"
    "                        an entry A:B is the ring A <= dist < B (--mask band)\n"
    "      --mask KIND       disc (default, the paper's: dist < r), square\n"
    "                        (max(|fy|, |fx|) < r), gaussian (weight exp(-d^2/(2r^2)),\n"
    "                        low = weighted, high = x - low) or band (A:B radii)\n"
    "  -d, --data PATH       the images (default: $HFC_DATA, then\n"
    "                        ./data/cifar-10-batches-bin): a CIFAR binary file or the\n"
    "                        directory of the official files; IMAGES.npy (with\n"
    "                        --labels) or a .npz (images, labels); MNIST idx files\n"
    "                        (.gz or not) or their directory; a CIFAR-10-C directory;\n"
    "                        a folder of class folders of PNG/JPEG images\n"
    "      --dataset NAME    cifar10 (default) or cifar100 (fine labels): the label\n"
    "                        space; mnist, folder, cifar10-c: what --data is\n"
    "      --labels FILE     the labels of IMAGES.npy (a .npy of N integers) or of an\n"
    "                        idx file (default: its name with labels-idx1)\n"
    "      --layout L        of a .npy's images: nhwc (N,H,W,C; default, CIFAR-10-C's)\n"
    "                        or nchw (N,C,H,W); (N,H,W) is one channel; uint8 or\n"
    "                        float32 in 0..255\n"
    "      --resize S        image folders: shorter side to S (torchvision Resize)\n"
    "      --crop C          image folders: centre C x C crop (torchvision CenterCrop)\n"
    "      --skip-bad-images image folders: leave out files that cannot be decoded\n"
    "      --corruption LIST CIFAR-10-C: corruptions, comma-separated, or all (default)\n"
    "      --severity LIST   CIFAR-10-C: severities 1..5, comma-separated, or all\n"
    "      --set NAME        test (default) or train (all training batches; --data\n"
    "                        must then be a directory)\n"
    "  -n, --limit N         use only the first N images\n"
    "      --shard K/N       evaluate only images [K*n/N, (K+1)*n/N) of the n chosen,\n"
    "                        0 <= K < N; `hfc-eval merge` joins the shards' reports\n"
    "  -b, --batch-size N    images per batch (default 256, fewer for large images:\n"
    "                        16 MB of pixels per copy, at 224x224 27)\n"
    "  -j, --threads N       worker threads (default: number of CPUs)\n"
    "  -o, --output FILE     write the JSON to FILE instead of stdout: a regular file\n"
    "                        is replaced atomically (links followed and kept, mode\n"
    "                        kept), a device or FIFO written directly\n"
    "      --pretty          indent the JSON\n"
    "      --table           print a table instead of JSON\n"
    "      --json            print JSON Lines (the default, except for compare)\n"
    "      --png DIR         also draw pictures into DIR (made if missing): per model\n"
    "                        and radius an original|low|high grid with predictions,\n"
    "                        per radius a spectrum with the mask, per model its first\n"
    "                        conv kernels, and accuracy against radius (see README)\n"
    "      --png-images LIST test-set indices for the grids (default: the first\n"
    "                        image of each class; at most 32)\n"
    "\n";

static const char usage_experiments[] =
    "the paper's evaluation protocol (its code, scripts/resnet.py, did all three):\n"
    "      --bn-stats WHICH  running (default): BatchNorm by the file's statistics;\n"
    "                        batch: by each batch of --bn-batch images' own mean and\n"
    "                        biased variance over (N, H, W), in stored order\n"
    "      --bn-batch N      images per batch of statistics (default 100)\n"
    "      --rescale HOW     none (default) or max: each low and high image becomes\n"
    "                        x / max(x) * 255 before the model's preprocessing\n"
    "      --smooth RHO      smooth the first conv's kernels with [[r,r,r],[r,1,r],\n"
    "                        [r,r,r]] (the paper's Eq. 3; default 0: off)\n"
    "\n"
    "attack (FGSM/PGD, L-infinity, on [0, 1] pixels; cross-entropy with the label):\n"
    "      --method M        pgd (default) or fgsm\n"
    "      --eps LIST        budgets in 0..1, comma-separated (default 0.03,0.06,0.09)\n"
    "      --steps N         PGD steps (default 10)\n"
    "      --step-size S     PGD step in 0..1 (default eps/4)\n"
    "      --random-start    start at a uniform point of the eps-ball (--seed N, default 0)\n"
    "      --radius LIST     also attack the low and high images at these radii\n"
    "\n"
    "margin (DeepFool along DCT subspaces, \"Hold me tight!\"; --limit defaults to 100):\n"
    "      --subspace dct    the only kind\n"
    "      --block K         K x K DCT atoms per subspace, K up to the images' side (default 8)\n"
    "      --stride S        between the subspaces' diagonal offsets (default 2)\n"
    "      --max-iter N      DeepFool steps at most (default 100)\n"
    "      --overshoot X     (default 0.02)\n"
    "      --png DIR         also draw DIR/margin.png: median per subspace, every image\n"
    "\n"
    "heatmap (Fourier heat map, Yin et al. 2019; --limit defaults to 1000):\n"
    "      --eps E           L2 norm of each channel's Fourier perturbation in [0, 1]\n"
    "                        pixels (default 4); --seed S picks the signs (default 0)\n"
    "      --extent K        only the K x K frequencies centred on DC (1..64; default:\n"
    "                        every one up to 32 x 32 images, 31 x 31 above)\n"
    "      --png DIR         also draw DIR/MODEL-heatmap.png\n"
    "\n"
    "id (TwoNN intrinsic dimension of every block's output; --limit defaults to 2000):\n"
    "      --version LIST    original (default), low, high, comma-separated; low and\n"
    "                        high split at the one --radius R (default 4, --mask too)\n"
    "      --resamples N     90% subsets for sd (default 5; 0: none); --seed S\n"
    "      --png DIR         also draw DIR/id.png: id against depth\n"
    "\n"
    "protos (prototype networks, ProtoPNet: which prototypes the evidence comes from):\n"
    "      --radius R        one radius for the low and high images (default 4)\n"
    "      --top K           prototypes listed per image and version (default 5)\n"
    "      --images LIST     images listed in full, with similarity maps (default: the\n"
    "                        first image of each of the first 10 classes; at most 32)\n"
    "      --prototypes FILE a push record: each prototype's source in the report\n"
    "      --png DIR         also draw DIR/protos-IMAGE.png per listed image\n"
    "      --push            instead: find each prototype's nearest training patch\n"
    "                        (--data/--set: the training images) and print the record\n"
    "\n"
    "      --progress        a progress line on stderr even when it is not a terminal\n"
    "      --no-progress     none even on a terminal (default: only on a terminal)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 I/O, 3 bad data file, 4 bad model file, 5 out of memory\n";

/* In parts: ISO C promises string literals of 4095 characters only. */
const char *const hfc_usage[] = {usage_common, usage_experiments, NULL};

void hfc_options_default(hfc_options *o)
{
    memset(o, 0, sizeof *o);
    o->cmd = &hfc_commands[0];
    for (int k = 0; k < 4; k++)
        o->masks[k] = (hfc_mask){HFC_MASK_DISC, 4.0 * (k + 1), 0};
    o->n_masks = 4;
    o->batch = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cpus > 0 ? (int)(cpus < 256 ? cpus : 256) : 1;
    o->progress = -1;
    o->bn_batch_size = 100;
    o->attack = (hfc_attack_spec){.pgd = 1, .steps = 10};
    o->margin = (hfc_margin_spec){.block = 8, .stride = 2, .max_iter = 100, .overshoot = 0.02};
    o->heatmap = (hfc_heatmap_spec){.eps = 4, .seed = 0};
    o->id = (hfc_id_spec){.versions = {HFC_ORIGINAL}, .n_versions = 1, .resamples = 5};
    static const double eps[] = {0.03, 0.06, 0.09};
    memcpy(o->eps, eps, sizeof eps);
    o->n_eps = 3;
}

/* Every list option refuses a value given twice (a radius twice would run
 * twice, and its shards could not be merged). */
static hfc_status given_twice(const char *option, int len, const char *value, hfc_error *err)
{
    return hfc_fail(err, HFC_ERR_USAGE, "", "%s: %.*s is given twice", option, len, value);
}

/* --eps: numbers in [0, 1], comma-separated. */
static hfc_status parse_eps(const char *s, hfc_options *o, hfc_error *err)
{
    o->n_eps = 0;
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v < 0 || v > 1 || (*end && *end != ','))
            return hfc_fail(err, HFC_ERR_USAGE, "",
                            "--eps: '%s' is not a comma-separated list of numbers in 0..1", s);
        if (o->n_eps == HFC_MAX_EPS)
            return hfc_fail(err, HFC_ERR_USAGE, "", "--eps: at most %d values", HFC_MAX_EPS);
        for (int k = 0; k < o->n_eps; k++)
            if (o->eps[k] == v)
                return given_twice("--eps", (int)(end - p), p, err);
        o->eps[o->n_eps++] = v;
        if (!*end)
            return HFC_OK;
        p = end + 1;
    }
}

/* --shard K/N: 0 <= K < N <= 1000000. */
static hfc_status parse_shard(const char *s, hfc_options *o, hfc_error *err)
{
    const char *slash = strchr(s, '/');
    char *end;
    long long k = -1, n = -1;
    if (slash && slash > s && s[0] >= '0' && s[0] <= '9' && slash[1] >= '0' && slash[1] <= '9') {
        errno = 0;
        k = strtoll(s, &end, 10);
        if (end != slash || errno)
            k = -1;
        n = strtoll(slash + 1, &end, 10);
        if (*end || errno)
            n = -1;
    }
    if (k < 0 || n < 0)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--shard: '%s' is not K/N (e.g. 0/4)", s);
    if (n < 1 || n > 1000000)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--shard: '%s': N must be in 1..1000000", s);
    if (k >= n)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--shard: '%s': K must be below N (shards are numbered 0..N-1)", s);
    o->shard_index = (int)k;
    o->shard_count = (int)n;
    return HFC_OK;
}

static hfc_status parse_count(const char *s, const char *opt, long long lo, long long hi,
                              long long *out, hfc_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return hfc_fail(err, HFC_ERR_USAGE, "", "%s: '%s' is not an integer in %lld..%lld", opt,
                        s, lo, hi);
    *out = v;
    return HFC_OK;
}

/* "4,8" or "0:4,4:8": each entry a radius or a band A:B (kind BAND; the
 * others get --mask's kind in finish()). */
static hfc_status parse_radii(const char *s, hfc_options *o, hfc_error *err)
{
    o->n_masks = 0;
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        hfc_mask m = {HFC_MASK_DISC, strtod(p, &end), 0};
        int ok = end != p && !errno && isfinite(m.r) && m.r >= 0 && m.r <= 1000;
        if (ok && *end == ':') {
            const char *q = end + 1;
            m.kind = HFC_MASK_BAND;
            m.outer = strtod(q, &end);
            ok = end != q && !errno && isfinite(m.outer) && m.outer >= 0 && m.outer <= 1000;
        }
        if (!ok || (*end && *end != ','))
            return hfc_fail(err, HFC_ERR_USAGE, "",
                            "--radius: '%s' is not a comma-separated list of radii R or bands A:B "
                            "in 0..1000", s);
        if (o->n_masks == HFC_MAX_RADII)
            return hfc_fail(err, HFC_ERR_USAGE, "", "--radius: at most %d radii", HFC_MAX_RADII);
        for (int k = 0; k < o->n_masks; k++)
            if (o->masks[k].kind == m.kind && o->masks[k].r == m.r && o->masks[k].outer == m.outer)
                return given_twice("--radius", (int)(end - p), p, err);
        o->masks[o->n_masks++] = m;
        if (!*end)
            return HFC_OK;
        p = end + 1;
    }
}

/* id --version original,low,high (any of them, in that order of mention). */
static hfc_status parse_versions(const char *s, hfc_options *o, hfc_error *err)
{
    static const char *NAMES[HFC_VERSIONS] = {"original", "low", "high"};
    o->id.n_versions = 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        int v = -1;
        for (int k = 0; k < HFC_VERSIONS; k++)
            if (len == strlen(NAMES[k]) && !strncmp(p, NAMES[k], len))
                v = k;
        for (int k = 0; v >= 0 && k < o->id.n_versions; k++)
            v = o->id.versions[k] == v ? -1 : v;
        if (v < 0)
            return hfc_fail(err, HFC_ERR_USAGE, "",
                            "--version: '%s' is not a list of original, low and high (each once)", s);
        o->id.versions[o->id.n_versions++] = v;
        if (!p[len])
            return HFC_OK;
        p += len + 1;
    }
}

/* Give every --radius entry --mask's kind, and check each mask. */
static hfc_status resolve_masks(hfc_options *o, hfc_error *err)
{
    for (int k = 0; k < o->n_masks; k++) {
        hfc_mask *m = &o->masks[k];
        if (m->kind == HFC_MASK_BAND && o->mask_kind != HFC_MASK_DISC &&
            o->mask_kind != HFC_MASK_BAND)
            return hfc_fail(err, HFC_ERR_USAGE, "", "--radius %g:%g: bands are rings of the "
                            "disc; --mask %s takes single radii", m->r, m->outer,
                            hfc_mask_kind_name(o->mask_kind));
        if (m->kind != HFC_MASK_BAND && o->mask_kind == HFC_MASK_BAND)
            return hfc_fail(err, HFC_ERR_USAGE, "", "--mask band: give each radius as A:B "
                            "(A <= dist < B), not %g", m->r);
        if (m->kind != HFC_MASK_BAND)
            m->kind = o->mask_kind;
        hfc_status st = hfc_mask_check(m, err);
        if (st)
            return st;
    }
    return HFC_OK;
}

/* A comma-separated list of image indices (decimal digits only) for
 * option `name`. */
static hfc_status parse_indices(const char *s, const char *name, size_t *out, int *n, hfc_error *err)
{
    *n = 0;
    for (const char *p = s;;) {
        char *end = (char *)p;
        unsigned long long v = 0;
        errno = 0;
        if (*p >= '0' && *p <= '9') /* strtoull alone would take "-1" and " 1" */
            v = strtoull(p, &end, 10);
        if (end == p || errno || v > 1000000000 || (*end && *end != ','))
            return hfc_fail(err, HFC_ERR_USAGE, "",
                            "%s: '%s' is not a comma-separated list of image indices", name, s);
        if (*n == HFC_MAX_PNG_IMAGES)
            return hfc_fail(err, HFC_ERR_USAGE, "", "%s: at most %d images", name,
                            HFC_MAX_PNG_IMAGES);
        for (int k = 0; k < *n; k++)
            if (out[k] == (size_t)v)
                return given_twice(name, (int)(end - p), p, err);
        out[(*n)++] = (size_t)v;
        if (!*end)
            return HFC_OK;
        p = end + 1;
    }
}

static int is(const char *a, const char *short_name, const char *long_name)
{
    return (short_name && !strcmp(a, short_name)) || !strcmp(a, long_name);
}

/* The OPT_* group of an option that takes a value (0: a common one). */
static unsigned option_group(const hfc_options *o, const char *a)
{
    if (is(a, NULL, "--method") || is(a, NULL, "--steps") || is(a, NULL, "--step-size") ||
        (is(a, NULL, "--eps") && !(o->cmd->accepts & OPT_HEATMAP)))
        return OPT_ATTACK;
    if (is(a, NULL, "--seed"))
        return OPT_SEED;
    if (is(a, NULL, "--extent"))
        return OPT_HEATMAP;
    if (is(a, NULL, "--images") || is(a, NULL, "--top") || is(a, NULL, "--prototypes"))
        return OPT_PROTOS;
    if (is(a, NULL, "--subspace") || is(a, NULL, "--block") || is(a, NULL, "--stride") ||
        is(a, NULL, "--max-iter") || is(a, NULL, "--overshoot"))
        return OPT_MARGIN;
    return 0;
}

/* A number that is the whole of val (no range checked). */
static int real(const char *val, double *x)
{
    char *end;
    errno = 0;
    *x = strtod(val, &end);
    return end != val && !*end && !errno;
}

/* The options of a run: what to read, what to split, how to run and write.
 * Each set_*_value returns -1 for an option it does not know. */
static int set_run_value(hfc_options *o, const char *a, const char *val, hfc_status *st,
                         hfc_error *err)
{
    long long v = 0;
    if (is(a, "-r", "--radius")) {
        *st = parse_radii(val, o, err);
        o->radius_given = 1;
    } else if (!strcmp(a, "--mask")) {
        int k = hfc_mask_kind_parse(val);
        if (k < 0)
            *st = hfc_fail(err, HFC_ERR_USAGE, "",
                           "--mask: unknown mask '%s' (disc, square, gaussian or band)", val);
        else
            o->mask_kind = (hfc_mask_kind)k;
    } else if (is(a, "-n", "--limit")) {
        if (!(*st = parse_count(val, a, 1, 1000000000, &v, err)))
            o->limit = (size_t)v;
    } else if (is(a, "-b", "--batch-size")) {
        if (!(*st = parse_count(val, a, 1, 65536, &v, err)))
            o->batch = (size_t)v;
    } else if (is(a, "-j", "--threads")) {
        if (!(*st = parse_count(val, a, 1, 256, &v, err)))
            o->threads = (int)v;
    } else if (is(a, "-o", "--output")) {
        o->output = val;
    } else if (is(a, NULL, "--png")) {
        if (!*val)
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--png: the directory name is empty");
        o->png_dir = val;
    } else if (is(a, NULL, "--png-images")) {
        *st = parse_indices(val, "--png-images", o->png_images, &o->n_png_images, err);
    } else if (is(a, NULL, "--shard")) {
        *st = parse_shard(val, o, err);
    } else {
        return -1;
    }
    return 0;
}

/* The paper's protocol: --bn-stats, --bn-batch, --rescale, --smooth. */
static int set_protocol_value(hfc_options *o, const char *a, const char *val, hfc_status *st,
                              hfc_error *err)
{
    long long v = 0;
    double x;
    if (is(a, NULL, "--bn-stats")) {
        if (!strcmp(val, "running") || !strcmp(val, "batch"))
            o->protocol.bn_batch = !strcmp(val, "batch"); /* the size is set after parsing */
        else
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--bn-stats: '%s' is not running or batch", val);
    } else if (is(a, NULL, "--bn-batch")) {
        if (!(*st = parse_count(val, a, 1, 65536, &v, err)))
            o->bn_batch_size = (int)v;
    } else if (is(a, NULL, "--rescale")) {
        if (!strcmp(val, "none") || !strcmp(val, "max"))
            o->protocol.rescale_max = !strcmp(val, "max");
        else
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--rescale: '%s' is not none or max", val);
    } else if (is(a, NULL, "--smooth")) {
        if (!real(val, &x) || !isfinite(x) || x < 0 || x > 100)
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--smooth: '%s' is not a number in 0..100", val);
        else
            o->protocol.smooth = x;
    } else {
        return -1;
    }
    return 0;
}

/* The subcommands' own options: attack, margin, heatmap, id (which
 * commands take them is the table's business: cli/commands.h). */
static int set_experiment_value(hfc_options *o, const char *a, const char *val, hfc_status *st,
                                hfc_error *err)
{
    long long v = 0;
    double x;
    if (is(a, NULL, "--images")) {
        *st = parse_indices(val, "--images", o->proto_images, &o->n_proto_images, err);
    } else if (is(a, NULL, "--top")) {
        if (!(*st = parse_count(val, a, 1, HFC_MAX_TOP, &v, err)))
            o->top = (int)v;
    } else if (is(a, NULL, "--prototypes")) {
        o->prototypes = val;
    } else if (!strcmp(a, "--version") && (o->cmd->accepts & OPT_ID)) {
        *st = parse_versions(val, o, err);
    } else if (!strcmp(a, "--resamples") && (o->cmd->accepts & OPT_ID)) {
        if (!(*st = parse_count(val, a, 0, 1000, &v, err)))
            o->id.resamples = (int)v;
    } else if (is(a, NULL, "--method")) {
        if (!strcmp(val, "fgsm") || !strcmp(val, "pgd"))
            o->attack.pgd = !strcmp(val, "pgd");
        else
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--method: '%s' is not fgsm or pgd", val);
    } else if (is(a, NULL, "--eps") && (o->cmd->accepts & OPT_HEATMAP)) {
        if (!real(val, &x) || !isfinite(x) || x < 0 || x > 1000)
            *st = hfc_fail(err, HFC_ERR_USAGE, "",
                           "--eps: '%s' is not a number in 0..1000 (the heat map's L2 norm)", val);
        else
            o->heatmap.eps = x;
    } else if (is(a, NULL, "--eps")) {
        *st = parse_eps(val, o, err);
    } else if (is(a, NULL, "--extent")) {
        if (!(*st = parse_count(val, a, 1, HFC_MAX_EXTENT, &v, err)))
            o->heatmap.extent = (int)v;
    } else if (is(a, NULL, "--steps")) {
        if (!(*st = parse_count(val, a, 1, 100000, &v, err)))
            o->attack.steps = (int)v;
    } else if (is(a, NULL, "--step-size")) {
        if (!real(val, &x) || !(x > 0) || x > 1)
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--step-size: '%s' is not a number in (0, 1]", val);
        else
            o->attack.step_size = x;
    } else if (is(a, NULL, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long seed = strtoull(val, &end, 10);
        if (!(*val >= '0' && *val <= '9') || *end || errno)
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--seed: '%s' is not a non-negative integer", val);
        else
            o->seed = seed;
    } else if (is(a, NULL, "--subspace")) {
        if (strcmp(val, "dct"))
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--subspace: '%s' is not dct", val);
    } else if (is(a, NULL, "--block")) {
        if (!(*st = parse_count(val, a, 1, HFC_MAX_SIDE, &v, err)))
            o->margin.block = (int)v; /* at most the images' side: hfc_margin checks */
    } else if (is(a, NULL, "--stride")) {
        if (!(*st = parse_count(val, a, 1, HFC_MAX_SIDE, &v, err)))
            o->margin.stride = (int)v;
    } else if (is(a, NULL, "--max-iter")) {
        if (!(*st = parse_count(val, a, 1, 100000, &v, err)))
            o->margin.max_iter = (int)v;
    } else if (is(a, NULL, "--overshoot")) {
        if (!real(val, &x) || !(x >= 0) || x > 1)
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--overshoot: '%s' is not a number in 0..1", val);
        else
            o->margin.overshoot = x;
    } else {
        return -1;
    }
    return 0;
}

/* Options that take a value. Returns -1 for an option it does not know. */
static int set_value(hfc_options *o, const char *a, const char *val, hfc_status *st,
                     hfc_error *err)
{
    if (set_run_value(o, a, val, st, err) == 0 || hfc_set_data_value(o, a, val, st, err) == 0 ||
        set_protocol_value(o, a, val, st, err) == 0)
        return 0;
    return set_experiment_value(o, a, val, st, err);
}

/* argv[*i], an option that takes a value, and its value as getopt takes it:
 * attached to a short option (-j1), after '=' (--threads=1), else the next
 * argument (then *i moves past it). Known options are told from unknown
 * ones before a missing value is reported, so the message names the right
 * problem. */
static hfc_status take_value_option(int argc, char *const *argv, int *i, hfc_options *o,
                                    unsigned *groups, hfc_error *err)
{
    const char *arg = argv[*i], *eq = arg[1] == '-' ? strchr(arg, '=') : NULL, *val;
    char a[40];
    int attached = eq || (arg[1] != '-' && arg[2]);
    if (eq) {
        snprintf(a, sizeof a, "%.*s", (int)(eq - arg < 39 ? eq - arg : 39), arg);
        val = eq + 1;
    } else if (arg[1] != '-' && arg[2]) {
        snprintf(a, sizeof a, "-%c", arg[1]);
        val = arg + 2;
    } else {
        snprintf(a, sizeof a, "%.39s", arg);
        val = *i + 1 < argc ? argv[*i + 1] : "";
    }
    hfc_status st = HFC_OK;
    if (set_value(o, a, val, &st, err) < 0)
        return hfc_fail(err, HFC_ERR_USAGE, "", "unknown option '%s' (see --help)", arg);
    if (!attached && *i + 1 == argc)
        return hfc_fail(err, HFC_ERR_USAGE, "", "%s needs a value (see --help)", a);
    if (st)
        return st;
    o->steps_given |= is(a, NULL, "--steps");
    *groups |= option_group(o, a);
    if (o->cmd->inputs == INPUTS_NONE && !is(a, "-o", "--output"))
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "merge takes only -o and --pretty: '%s' belongs to the runs it merges",
                        a);
    *i += !attached;
    return HFC_OK;
}

hfc_status hfc_parse_args(int argc, char *const *argv, hfc_options *o, hfc_cli_action *action,
                          hfc_error *err)
{
    *action = HFC_CLI_RUN;
    int named; /* the subcommand, if the first argument names one */
    o->cmd = hfc_command_for(argc > 1 ? argv[1] : NULL, &named);
    o->table = o->cmd->table;
    int i = 1 + named;
    unsigned groups = 0; /* the OPT_* groups given */
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (is(a, "-h", "--help")) {
            *action = HFC_CLI_HELP;
            return HFC_OK;
        } else if (is(a, "-V", "--version") && !((o->cmd->accepts & OPT_ID) && a[1] == '-')) {
            *action = HFC_CLI_VERSION;
            return HFC_OK;
        } else if (is(a, NULL, "--pretty")) {
            o->pretty = 1;
        } else if (is(a, NULL, "--table")) {
            o->table = 1;
        } else if (is(a, NULL, "--json")) {
            o->table = 0;
        } else if (is(a, NULL, "--progress") || is(a, NULL, "--no-progress")) {
            o->progress = !strcmp(a, "--progress");
        } else if (is(a, NULL, "--skip-bad-images")) {
            o->skip_bad = 1;
        } else if (is(a, NULL, "--random-start")) {
            o->attack.random_start = 1;
            groups |= OPT_ATTACK;
        } else if (is(a, NULL, "--push")) {
            o->push = 1;
            groups |= OPT_PROTOS;
        } else if (a[0] != '-' || !a[1]) {
            if (o->n_models == HFC_MAX_MODELS)
                return hfc_fail(err, HFC_ERR_USAGE, "", "at most %d models", HFC_MAX_MODELS);
            o->models[o->n_models++] = a;
        } else {
            hfc_status st = take_value_option(argc, argv, &i, o, &groups, err);
            if (st)
                return st;
        }
    }
    if (o->n_models == 0)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        o->cmd->inputs == INPUTS_NONE ? "merge: no REPORT file given (see --help)"
                                                      : "no MODEL given (see --help)");
    if (o->protocol.bn_batch)
        o->protocol.bn_batch = o->bn_batch_size;
    unsigned refused = groups & ~o->cmd->accepts;
    if (refused & (OPT_ATTACK | OPT_SEED))
        return hfc_fail(err, HFC_ERR_USAGE, "", "%s",
                        o->cmd->refusal ? o->cmd->refusal
                                        : "--method, --eps, --steps, --step-size, --random-start "
                                          "and --seed are for 'hfc-eval attack'");
    if (refused & OPT_MARGIN)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--subspace, --block, --stride, --max-iter and --overshoot are for "
                        "'hfc-eval margin'");
    if (refused & OPT_PROTOS)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--images, --top, --push and --prototypes are for 'hfc-eval protos'");
    if (!o->limit)
        o->limit = o->cmd->limit;
    hfc_status st = o->cmd->validate(o, err);
    if (st || (st = resolve_masks(o, err)) || (st = hfc_check_data_options(o, err)))
        return st;
    if (o->shard_count && o->png_dir)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--png draws a whole run: not with --shard (merge the shards' reports)");
    return HFC_OK;
}
