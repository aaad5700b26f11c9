/* cli/data.h - the data options and which source --data names
 * (src/cli/data.c). Private to the command line. */
#ifndef HFC_CLI_DATA_H
#define HFC_CLI_DATA_H

#include "cli/options.h"

/* The data options (--data, --dataset, --labels, --layout, --set,
 * --resize, --crop, --skip-bad-images, --corruption, --severity): -1 for
 * an option that is not one of them, else 0 with *st set. */
int hfc_set_data_value(hfc_options *o, const char *a, const char *val, hfc_status *st,
                       hfc_error *err);
/* Checks across the data options, once all are read. */
hfc_status hfc_check_data_options(const hfc_options *o, hfc_error *err);
/* The data sets a run covers: 1, or for a CIFAR-10-C sweep each corruption
 * at each severity (o->sweep filled here). */
hfc_status hfc_data_sweep(hfc_options *o, int *count, hfc_error *err);
/* Set k of the run; `channels`: what the models take (image folders
 * become that many channels). */
hfc_status hfc_load_data(const hfc_options *o, int k, int channels, hfc_dataset *ds,
                         hfc_error *err);

#endif
