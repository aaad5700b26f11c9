/* hfc/report.h - results as JSON and pictures, and merge (src/report). */
#ifndef HFC_REPORT_H
#define HFC_REPORT_H

#include "hfc/experiments.h"

/* ---------------------------------------------------------------- report */

/* One JSON object (no newline) for a model at one radius of a run over ds
 * (its path, dataset, set, class names and, when ds is a shard of shard_count,
 * the shard); caller frees. Schema: README, "Output: JSON Lines". */
char *hfc_report_json(const hfc_tally *t, const hfc_model *m, const hfc_dataset *ds,
                      const hfc_protocol *protocol, int shard_index, int shard_count,
                      double seconds, int pretty);

/* One JSON object for an attack tally (schema: README, "Attacks"); caller frees. */
char *hfc_report_attack_json(const hfc_attack_tally *t, const hfc_attack_spec *spec,
                             const hfc_model *m, const hfc_dataset *ds,
                             const hfc_protocol *protocol, int shard_index, int shard_count,
                             double seconds, int pretty);

/* One JSON object for a model's margins (schema: README, "Margins"). */
/* {"experiment":"heatmap","eps":..,"seed":..,"images":N,"clean_error":..,
 * "error":[32 rows of 32],...the run's fields}. */
char *hfc_report_heatmap_json(const hfc_heatmap_tally *t, const hfc_model *m,
                              const hfc_dataset *ds, double seconds, int pretty);
char *hfc_report_margin_json(const float *margins, const hfc_margin_spec *spec,
                             const hfc_model *m, const hfc_dataset *ds,
                             const hfc_protocol *protocol, double seconds, int pretty);

/* protos: the report (schema: README, "Prototype networks") and the push
 * record; rec (may be NULL) adds each prototype's source. */
char *hfc_report_protos_json(const hfc_protos_result *r, const hfc_protos_spec *spec,
                             const hfc_push_record *rec, const hfc_model *m, const hfc_dataset *ds,
                             double seconds, int pretty);
char *hfc_report_push_json(const hfc_push_record *rec, const hfc_model *m, const hfc_dataset *ds,
                           double seconds, int pretty);
/* Read a push record written for model m: HFC_ERR_USAGE when it was made
 * for another model (its sha256), HFC_ERR_DATA when it is malformed. */
hfc_status hfc_push_read(const char *path, const hfc_model *m, hfc_push_record *rec,
                         hfc_error *err);
/* DIR/protos-IMAGE.png per listed image: per version a row of the image,
 * then for each of its top K prototypes the image under the similarity
 * map's heat with the box outlined, next to the prototype's source patch
 * (with a push record). Draws r's data only. */
hfc_status hfc_protos_picture(const char *dir, const hfc_model *m, const hfc_protos_result *r,
                              const hfc_protos_spec *spec, const hfc_push_record *rec,
                              int channels, int height, int width, hfc_error *err);

/* hfc-eval merge: read the JSON reports in paths (shards of one run, in any
 * order), check that the shards of each model, radius and settings tile the
 * set exactly, and return in *text (caller frees) what one run over the
 * whole set prints, `seconds` being the shards' sum. HFC_ERR_DATA names the
 * file for overlaps, gaps, different settings or a malformed report. */
hfc_status hfc_merge(const char *const *paths, int n_paths, int pretty, char **text,
                     hfc_error *err);

/* The directory pictures go to, made if missing (HFC_ERR_IO: a file there,
 * or it cannot be made). Every picture function below calls it. */
hfc_status hfc_png_dir(const char *dir, hfc_error *err);
/* Draw the paper's pictures into dir (files named in src/report/png.c and
 * README): for each model and radius a Figure-1 grid of g's images with
 * the model's predictions, per radius the spectrum of the first of them with
 * the mask, per model its first conv's kernels, and, with two or more
 * radii, accuracy against radius from tallies (as hfc_evaluate filled them;
 * against epoch too for checkpoints of a series). Draws data only: g comes
 * from hfc_grid_predict. */
hfc_status hfc_pictures(const char *dir, const hfc_model *const *models, int n_models,
                        const hfc_mask *masks, int n_radii, const hfc_grid_data *g,
                        const hfc_tally *tallies, hfc_error *err);

/* dir/margin.png: every model's median margin per subspace (discs on a
 * line, one colour each) over every image's margin (dots), low to high
 * frequency. margins: (n_models, subspaces, n) as hfc_margin fills them. */
hfc_status hfc_margin_picture(const char *dir, const hfc_model *const *models, int n_models,
                              const hfc_margin_spec *spec, const float *margins, size_t n,
                              hfc_error *err);
/* DIR/MODEL-heatmap.png per model: the error per frequency cell on a fixed
 * 0..1 colour scale with its legend. */
hfc_status hfc_heatmap_picture(const char *dir, const hfc_model *const *models, int n_models,
                               const hfc_heatmap_tally *tallies, hfc_error *err);

/* intrinsic dimension: the JSON lines and DIR/id.png */
char *hfc_report_id_json(const hfc_id_layer *L, const hfc_id_spec *spec, const hfc_model *m,
                         const hfc_dataset *ds, double seconds, int pretty);
/* DIR/id.png: id against depth, one line per model and version. layers:
 * n_models runs of counts[j] entries. */
hfc_status hfc_id_picture(const char *dir, const hfc_model *const *models, int n_models,
                          const hfc_id_layer *layers, const int *counts, hfc_error *err);

#endif
