/* data/npy.h - what the .npy, .npz and CIFAR-10-C readers share (src/data). Internal. */
#ifndef HFC_DATA_NPY_H
#define HFC_DATA_NPY_H

#include "hfc/data.h"

/* ds emptied and named for a NumPy source of `kind` (its class count). */
void hfc_npy_start(hfc_dataset *ds, hfc_dataset_kind kind, const char *path);
/* ds's images and labels from two .npy arrays in memory, every size
 * checked against the bytes given; only the `limit` images (0: all the
 * rest) from image `first` on are read. The paths name the arrays in errors. */
hfc_status hfc_npy_fill(hfc_dataset *ds, const uint8_t *img, size_t img_len, const char *img_path,
                        const uint8_t *lab, size_t lab_len, const char *lab_path, int nchw,
                        size_t first, size_t limit, hfc_error *err);
/* The first dimension of a .npy array in memory (its header checked). */
hfc_status hfc_npy_count(const uint8_t *raw, size_t len, const char *path, size_t *n,
                         hfc_error *err);
/* A regular file mapped read-only (never blocking on a FIFO); munmap it.
 * An empty file gives map NULL, len 0. */
hfc_status hfc_map_file(const char *path, const uint8_t **map, size_t *len, hfc_error *err);

/* A .npz archive's images.npy and labels.npy, in memory (the fuzzer's). */
hfc_status hfc_npz_fill(hfc_dataset *ds, const uint8_t *z, size_t len, const char *path, int nchw,
                        size_t limit, hfc_error *err);
/* An idx set from its two files' bytes in memory (the fuzzer's). */
hfc_status hfc_idx_fill(hfc_dataset *ds, const uint8_t *img, size_t img_len, const char *img_path,
                        const uint8_t *lab, size_t lab_len, const char *lab_path, size_t limit,
                        hfc_error *err);
/* Inflate a gzip member (gzip) or raw deflate data (a zip member): the
 * result (malloc'd) is at most max bytes, else HFC_ERR_DATA; damaged or
 * truncated data is HFC_ERR_DATA naming path. */
hfc_status hfc_inflate(const uint8_t *in, size_t in_len, int gzip, size_t max, uint8_t **out,
                       size_t *out_len, const char *path, hfc_error *err);

#endif
