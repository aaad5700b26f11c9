/* data/image.h - one image file to planes: PNG and JPEG decoding, the
 * channel conversion and the Resize/CenterCrop of torchvision on PIL
 * images (src/data/image.c, resize.c). Internal to src/data. */
#ifndef HFC_DATA_IMAGE_H
#define HFC_DATA_IMAGE_H

#include "hfc/data.h"

/* A decoded image: (channels, height, width) planes of 8-bit values. */
typedef struct {
    int channels, height, width;
    uint8_t *planes; /* malloc'd */
} hfc_image;

/* What becomes of each image: `channels` (3: grey is repeated, as PIL's
 * convert("RGB"); 1: RGB becomes PIL's luma, (19595 R + 38470 G + 7471 B +
 * 32768) >> 16), then resize (the shorter side to `resize`, 0: none), then
 * a centre crop to crop x crop (0: none). */
typedef struct {
    int channels;
    int resize, crop;
} hfc_image_plan;

/* Decode PNG (by its signature) or JPEG (by its SOI marker) bytes; alpha is
 * dropped, 16-bit samples keep their high byte, a palette is expanded.
 * HFC_ERR_DATA with the decoder's reason, naming path. */
hfc_status hfc_image_decode(const uint8_t *raw, size_t len, const char *path, int channels,
                            hfc_image *out, hfc_error *err);
/* The plan's resize and crop applied to im (replaced). */
hfc_status hfc_image_transform(hfc_image *im, const hfc_image_plan *plan, const char *path,
                               hfc_error *err);
/* The size Resize(s) gives an h x w image (torchvision: the shorter side
 * to s, the longer to int(s * long / short)). */
void hfc_resize_size(int h, int w, int s, int *out_h, int *out_w);
/* PIL's Image.resize((out_w, out_h), BILINEAR) of one 8-bit plane: the
 * antialiased two-pass convolution of Pillow's Resample.c (horizontal pass
 * first, 22-bit fixed-point weights, rounding to 8 bits after each pass). */
hfc_status hfc_resize_plane(const uint8_t *in, int h, int w, uint8_t *out, int out_h, int out_w);

#endif
