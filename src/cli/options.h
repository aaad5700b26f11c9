/* cli/options.h - what the command line asks for (src/cli/args.c), private
 * to the command line: src/cli/main.c reads it, nothing below the CLI does. */
#ifndef HFC_CLI_OPTIONS_H
#define HFC_CLI_OPTIONS_H

#include "hfc.h"

/* A subcommand: one row of src/cli/commands.c (cli/commands.h). */
typedef struct hfc_command_row hfc_command_row;

/* What the command line asks for (src/cli/args.c). Strings point into argv. */
typedef struct {
    const hfc_command_row *cmd; /* the subcommand (hfc_commands[0]: evaluate) */
    hfc_mask masks[HFC_MAX_RADII]; /* one per --radius entry, all of --mask's kind */
    int n_masks;
    hfc_mask_kind mask_kind; /* --mask (default disc) */
    const char *data;      /* NULL: $HFC_DATA, then data/cifar-10-batches-bin */
    const char *labels;    /* --labels: the labels of a .npy or idx --data */
    int nchw;              /* --layout nchw: a .npy of (N, C, H, W) */
    int dataset_given;     /* --dataset was on the command line */
    int resize, crop;      /* image folders: --resize S, --crop C (0: none) */
    int skip_bad;          /* image folders: --skip-bad-images */
    const char *corruptions; /* CIFAR-10-C: --corruption LIST or "all" (NULL: all) */
    unsigned severities;   /* CIFAR-10-C: bit s for severity s (0: all) */
    char (*sweep)[32];     /* CIFAR-10-C: the corruptions run (hfc_data_sweep) */
    int n_sweep_corruptions;
    size_t limit;          /* 0: every image */
    size_t batch;          /* --batch-size; 0: hfc_batch_for's default */
    int threads;
    hfc_conv_choice conv;  /* from $HFC_CONV: auto (default), direct or gemm */
    const char *output;    /* NULL: stdout */
    int pretty;
    int table;
    const char *png_dir;   /* NULL: no pictures */
    size_t png_images[HFC_MAX_PNG_IMAGES]; /* test-set indices for the grids */
    int n_png_images;      /* 0: the first image of each class */
    int progress;          /* -1: when stderr is a terminal; 0 never; 1 always */
    int shard_index, shard_count; /* --shard K/N; shard_count 0: the whole set */
    hfc_protocol protocol; /* --bn-stats/--bn-batch, --rescale, --smooth */
    int bn_batch_size;     /* --bn-batch (default 100); used with --bn-stats batch */
    int radius_given;      /* --radius was on the command line */
    int steps_given;       /* --steps was */
    uint64_t seed;         /* --seed, for whichever command takes one (attack, heatmap, id) */
    hfc_attack_spec attack; /* attack: --method, --steps, --step-size, --random-start */
    double eps[HFC_MAX_EPS]; /* attack: --eps LIST */
    hfc_heatmap_spec heatmap; /* heatmap: --eps (one value >= 0) */
    hfc_id_spec id;        /* id: --version, --resamples (its mask: --radius/--mask) */
    hfc_margin_spec margin; /* margin: --block, --stride, --max-iter, --overshoot */
    int top;               /* protos: --top K (0: the default, 5) */
    size_t proto_images[HFC_MAX_PNG_IMAGES]; /* protos: --images LIST */
    int n_proto_images;    /* 0: the first image of each of the first 10 classes */
    int push;              /* protos --push */
    const char *prototypes; /* protos --prototypes FILE: a push record */
    int n_eps;
    hfc_set set;           /* --set */
    hfc_dataset_kind dataset; /* --dataset (default cifar10; mnist, folder, cifar10-c) */
    const char *models[HFC_MAX_MODELS]; /* merge: the report files */
    int n_models;
} hfc_options;

typedef enum { HFC_CLI_RUN, HFC_CLI_HELP, HFC_CLI_VERSION } hfc_cli_action;

/* --help's text after the commands' usage lines (cli/commands.h), in
 * parts; NULL ends it. */
extern const char *const hfc_usage[];

/* Defaults: radii 4,8,12,16, batch 256, one thread per online CPU. */
void hfc_options_default(hfc_options *o);
/* Parse argv[1..argc-1] into o (start from hfc_options_default). Prints
 * nothing: *action says whether to run or to show help or the version. */
hfc_status hfc_parse_args(int argc, char *const *argv, hfc_options *o, hfc_cli_action *action,
                          hfc_error *err);

#endif
