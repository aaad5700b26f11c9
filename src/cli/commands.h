/* cli/commands.h - the table of subcommands: a subcommand is one row here
 * (src/cli/commands.c) plus its experiment (src/experiments/). */
#ifndef HFC_CLI_COMMANDS_H
#define HFC_CLI_COMMANDS_H

#include "cli/options.h"

/* Groups of options that belong to some commands only; the parser tags
 * what it reads (src/cli/args.c) and refuses a group a command does not
 * accept. The rest are common to every command but merge; what a command
 * does with them its validate function checks. */
enum {
    OPT_ATTACK = 1,  /* --method, --eps LIST, --steps, --step-size, --random-start */
    OPT_SEED = 2,    /* --seed */
    OPT_MARGIN = 4,  /* --subspace, --block, --stride, --max-iter, --overshoot */
    OPT_HEATMAP = 8, /* --eps E (one value), --extent K */
    OPT_ID = 16,     /* --version LIST, --resamples */
    OPT_PROTOS = 32, /* --images, --top, --push, --prototypes */
};

/* What a command's models are loaded for. */
typedef enum {
    INPUTS_NONE,      /* no models or data: merge reads reports */
    INPUTS_PLAIN,     /* inference engines */
    INPUTS_GRADIENTS, /* engines planned for input gradients */
    INPUTS_VALUES,    /* engines that keep every node's value (id) */
    INPUTS_PROTOTYPES,/* engines that hand over the prototype layer's feature map (protos) */
} hfc_inputs_kind;

/* What every experiment works on: the models with their engines, the data. */
typedef struct {
    hfc_model models[HFC_MAX_MODELS];
    const hfc_model *model_ptrs[HFC_MAX_MODELS];
    hfc_engine *engines[HFC_MAX_MODELS];
    int n_loaded;
    hfc_dataset ds;
    int set_index;   /* which data set of the run this is: 0, or k of a CIFAR-10-C sweep */
} run_inputs;

/* What a run leaves for render: one experiment's results. */
typedef struct {
    void *tallies;              /* the experiment's: hfc_tally, hfc_attack_tally, ... */
    int counts[HFC_MAX_MODELS]; /* id: block outputs per model */
    char *text;                 /* merge: the merged reports */
    void (*release)(void *tallies); /* what tallies hold besides themselves, or NULL */
} run_results;

struct hfc_command_row {
    const char *name;  /* the first argument that selects it; NULL: the default command */
    const char *usage; /* its line of --help */
    unsigned accepts;  /* OPT_* groups it takes */
    const char *refusal; /* the message for a group it does not take (NULL: the group's) */
    int table;         /* prints a table unless --json */
    hfc_inputs_kind inputs;
    size_t limit;      /* images used when --limit is not given (0: all) */
    /* once parsed: its defaults and the checks of its options */
    hfc_status (*validate)(hfc_options *o, hfc_error *err);
    /* the experiment (and its pictures) on the loaded inputs (NULL for INPUTS_NONE) */
    hfc_status (*run)(const hfc_options *o, run_inputs *in, const hfc_progress *progress,
                      run_results *r, hfc_error *err);
    /* the results as the report's text (*text, caller frees) */
    hfc_status (*render)(const hfc_options *o, const run_inputs *in, const run_results *r,
                         double seconds, char **text, hfc_error *err);
};

extern const hfc_command_row hfc_commands[];
extern const int hfc_n_commands;
/* The row named argv[1], else the default command's. */
const hfc_command_row *hfc_command_for(const char *arg, int *named);

#endif
