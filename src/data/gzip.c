/* gzip.c - the whole of a compressed stream in memory (zlib), for the
 * sources that come compressed: MNIST's .gz idx files, deflated .npz members. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/npy.h"

#define CHUNK ((size_t)1 << 30) /* zlib counts in uInt */

hfc_status hfc_inflate(const uint8_t *in, size_t in_len, int gzip, size_t max, uint8_t **out,
                       size_t *out_len, const char *path, hfc_error *err)
{
    *out = NULL;
    *out_len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* 16 + 15: a gzip header and trailer; -15: raw deflate (a zip member) */
    if (inflateInit2(&z, gzip ? 16 + MAX_WBITS : -MAX_WBITS) != Z_OK)
        return hfc_fail(err, HFC_ERR_NOMEM, path, "zlib could not start");
    const size_t limit = max + 1; /* one byte past max tells that there is more */
    size_t cap = in_len < limit / 4 ? 4 * in_len + 4096 : limit, len = 0, left = in_len;
    cap = cap < limit ? cap : limit;
    uint8_t *buf = malloc(cap);
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    while (rc == Z_OK) {
        if (len == cap) {
            if (cap == limit)
                break; /* more than max */
            size_t grown_cap = cap < limit / 2 ? cap * 2 : limit;
            uint8_t *grown = realloc(buf, grown_cap);
            if (!grown) {
                rc = Z_MEM_ERROR;
                break;
            }
            buf = grown;
            cap = grown_cap;
        }
        z.next_in = (Bytef *)(in + (in_len - left));
        z.avail_in = (uInt)(left < CHUNK ? left : CHUNK);
        z.next_out = buf + len;
        z.avail_out = (uInt)(cap - len < CHUNK ? cap - len : CHUNK);
        uInt in_before = z.avail_in, out_before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        left -= in_before - z.avail_in;
        len += out_before - z.avail_out;
        if (rc == Z_BUF_ERROR && z.avail_out)
            break; /* no progress with room left: the input ended early */
        if (rc == Z_BUF_ERROR)
            rc = Z_OK;
    }
    const char *zmsg = z.msg; /* a static string */
    inflateEnd(&z);
    const char *why = rc == Z_STREAM_END && left ? "data after the end of the compressed stream"
                      : rc == Z_STREAM_END       ? NULL
                      : len == limit             ? "inflates past the size its header gives"
                      : rc == Z_OK || rc == Z_BUF_ERROR ? "truncated compressed data"
                                                        : "damaged compressed data";
    if (rc == Z_MEM_ERROR) {
        free(buf);
        return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory inflating");
    }
    if (why) {
        free(buf);
        return hfc_fail(err, HFC_ERR_DATA, path, "%s (zlib, %zu of %zu bytes read%s%s)", why,
                        in_len - left, in_len, zmsg ? ": " : "", zmsg ? zmsg : "");
    }
    *out = buf;
    *out_len = len;
    return HFC_OK;
}
