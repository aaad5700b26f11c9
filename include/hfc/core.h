/* hfc/core.h - errors, progress, files, SHA-256, strict JSON, the CPU probe (src/core).
 *
 * Every function that can fail returns an hfc_status and fills an
 * hfc_error with the path it was reading and a one-line reason; only
 * src/cli/main.c prints them. Objects come in load/new and free pairs; the
 * caller owns what a load or new function returns and frees it with its pair. */
#ifndef HFC_CORE_H
#define HFC_CORE_H

#include <stddef.h>
#include <stdint.h>

#define HFC_VERSION "1.0.0"

/* ---------------------------------------------------------------- errors */

typedef enum {
    HFC_OK = 0,
    HFC_ERR_USAGE = 1,  /* bad command line */
    HFC_ERR_IO = 2,     /* a file could not be opened, read or written */
    HFC_ERR_DATA = 3,   /* the CIFAR-10 file is malformed */
    HFC_ERR_MODEL = 4,  /* the model file is malformed or unsupported */
    HFC_ERR_NOMEM = 5,  /* out of memory or a resource could not be made */
} hfc_status;

typedef struct {
    char path[1024];   /* the file the error is about ("" for none) */
    char reason[512];  /* one line, no trailing newline */
} hfc_error;

/* Fill err and return status. fmt is printf-style. */
hfc_status hfc_fail(hfc_error *err, hfc_status status, const char *path,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* -------------------------------------------------------------- progress */

/* A long run says how far it is: update(ctx, done, total) in the calling
 * thread after each batch, `done` rising to `total` (units: images). A NULL
 * hfc_progress, or a NULL update, reports nothing. */
typedef struct {
    void (*update)(void *ctx, size_t done, size_t total);
    void *ctx;
} hfc_progress;

/* ------------------------------------------------------------------ util */

/* What this CPU can do (src/core/cpu.c): AVX-512F, the SHA extensions. */
int hfc_cpu_avx512f(void);
int hfc_cpu_sha(void);

/* The instruction set the kernels use, chosen once per run: the best this
 * CPU has, or a lower one named by the environment variable HFC_ISA
 * (generic, avx2, avx512) for tests and benchmarks. generic: no
 * hand-written kernels (im2col + OpenBLAS's SGEMM, loops the compiler
 * vectorised for the x86-64-v3 baseline); avx2: the tiled kernels on 8
 * lanes; avx512: on 16. Every level gives the same counts as PyTorch; avx2
 * and avx512 give the same floats. */
typedef enum { HFC_ISA_GENERIC, HFC_ISA_AVX2, HFC_ISA_AVX512 } hfc_isa_level;
hfc_isa_level hfc_isa(void);
hfc_isa_level hfc_isa_of_cpu(void);
const char *hfc_isa_name(hfc_isa_level level);
/* 1 and *level set when name is one of the names above, else 0. */
int hfc_isa_parse(const char *name, hfc_isa_level *level);

/* SHA-256 of data as 64 hex digits: with the CPU's SHA instructions where
 * it has them (hfc_sha256_uses_cpu), else portable C; tests compare the two. */
void hfc_sha256_hex(const uint8_t *data, size_t len, char out[65]);
void hfc_sha256_hex_portable(const uint8_t *data, size_t len, char out[65]);
int hfc_sha256_uses_cpu(void);
/* In one pass: the SHA-256 of data[0, prefix) as 32 bytes and of the whole
 * data[0, len) as hex (a version-3 model's checksum and its model_sha256). */
void hfc_sha256_prefix_and_whole(const uint8_t *data, size_t len, size_t prefix,
                                 uint8_t prefix_digest[32], char whole_hex[65]);
/* Strict JSON (src/core/json_strict.c; RFC 8259, which cJSON does not hold to):
 * hfc_json_strict scans one value from text (leading whitespace allowed)
 * and sets *end past it; hfc_json_strict_whole also refuses anything but
 * whitespace after it. Both return 0, or -1 with why = "byte N: reason".
 * hfc_json_duplicate: the first key given twice in some object of the
 * tree, or NULL. */
int hfc_json_strict(const char *text, size_t len, size_t *end, char *why, size_t cap);
int hfc_json_strict_whole(const char *text, size_t len, char *why, size_t cap);
struct cJSON;
const char *hfc_json_duplicate(const struct cJSON *v);
/* Base64 (RFC 4648, with padding): the bytes the text of n bytes takes,
 * its NUL included; encode into out. Decoding returns the bytes written to
 * out (at most cap), or -1 for text that is not base64 or too long. */
size_t hfc_base64_size(size_t n);
void hfc_base64_encode(const uint8_t *in, size_t n, char *out);
long long hfc_base64_decode(const char *text, uint8_t *out, size_t cap);
/* The index of the largest of v[0..n) (the first, at a tie): a prediction. */
int hfc_argmax(const float *v, int n);
/* Memory for a big buffer (free with free()): 64-byte aligned, and from
 * 2 MiB up, 2 MiB aligned and advised to use huge pages where Linux allows
 * it: one page fault per 2 MiB instead of per 4 KiB (measured here: a 4 KiB
 * fault costs ~12 us in this VM, 18 ms for the split's 6 MB of output).
 * NULL when out of memory. */
void *hfc_alloc_big(size_t bytes);
/* Write a finished report to path (src/core/output.c): a regular file (or a new
 * one) is replaced atomically, symbolic links are followed and kept, the
 * target's permission bits kept; a device, a FIFO or "-", /dev/stdout,
 * /dev/stderr, /dev/fd/N is written directly. */
hfc_status hfc_write_output(const char *path, const char *text, hfc_error *err);
/* Read a whole file into *buf (caller frees). Only a regular file: a FIFO,
 * device or directory is refused without blocking (opened O_NONBLOCK, then
 * fstat); a file whose stat size is 0 (/proc) is read to its end. */
hfc_status hfc_read_file(const char *path, uint8_t **buf, size_t *len, hfc_error *err);
/* The same, its first min(size, max) bytes (HFC_ERR_IO if fewer come). */
hfc_status hfc_read_file_head(const char *path, size_t max, uint8_t **buf, size_t *len,
                              hfc_error *err);

#endif
