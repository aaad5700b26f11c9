/* npz.c - NumPy .npz archives (np.savez / np.savez_compressed): a zip file
 * whose members images.npy and labels.npy are read as npy.c reads the two
 * files. Members stored (np.savez) are used where they lie in the mapped
 * file; deflated ones (savez_compressed) are inflated. Each member's CRC-32
 * is checked, and every offset and size against the file's length.
 *
 * The zip layout read: the end-of-central-directory record (the last 22+
 * bytes, signature PK\5\6; with Zip64, its locator PK\6\7 and record PK\6\6
 * before it), the central directory it points to (entries PK\1\2: method,
 * CRC, sizes, name, the local header's offset; 0xFFFFFFFF fields come from
 * the Zip64 extra field, id 1), and each member's local header (PK\3\4:
 * its name and extra lengths say where the data starts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

#include "data/npy.h"

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int b = bytes - 1; b >= 0; b--)
        v = v << 8 | p[b];
    return v;
}

typedef struct {
    const uint8_t *data; /* the member's bytes (in the map, or owned) */
    size_t len;
    uint8_t *owned;
} member;

static hfc_status zip_fail(const char *path, const char *what, hfc_error *err)
{
    return hfc_fail(err, HFC_ERR_DATA, path, "not a .npz this tool reads: %s", what);
}

/* The central directory: where it starts and how many entries. */
static hfc_status central_directory(const uint8_t *z, size_t len, const char *path,
                                    uint64_t *offset, uint64_t *entries, hfc_error *err)
{
    if (len < 22)
        return zip_fail(path, "shorter than a zip end record", err);
    size_t at = len - 22, stop = len - 22 > 65535 ? len - 22 - 65535 : 0;
    while (le(z + at, 4) != 0x06054b50) { /* the end record, after a comment of < 64 KiB */
        if (at == stop)
            return zip_fail(path, "no zip end-of-central-directory record", err);
        at--;
    }
    *entries = le(z + at + 10, 2);
    *offset = le(z + at + 16, 4);
    if (*entries == 0xFFFF || *offset == 0xFFFFFFFF) { /* Zip64 */
        if (at < 20 || le(z + at - 20, 4) != 0x07064b50)
            return zip_fail(path, "no Zip64 locator before the end record", err);
        uint64_t rec = le(z + at - 20 + 8, 8);
        if (len < 56 || rec > len - 56 || le(z + rec, 4) != 0x06064b50)
            return zip_fail(path, "the Zip64 end record is not where its locator says", err);
        *entries = le(z + rec + 32, 8);
        *offset = le(z + rec + 48, 8);
    }
    if (*offset > len)
        return zip_fail(path, "the central directory starts past the end of the file", err);
    return HFC_OK;
}

/* Entry fields that may be 0xFFFFFFFF: their values from the Zip64 extra. */
static void zip64_fields(const uint8_t *extra, size_t xlen, uint64_t *usize, uint64_t *csize,
                         uint64_t *local)
{
    for (size_t p = 0; p + 4 <= xlen;) {
        size_t id = le(extra + p, 2), n = le(extra + p + 2, 2), q = p + 4;
        if (p + 4 + n > xlen)
            return;
        if (id == 1) {
            uint64_t *f[3] = {usize, csize, local};
            for (int k = 0; k < 3; k++)
                if (*f[k] == 0xFFFFFFFF && q + 8 <= p + 4 + n) {
                    *f[k] = le(extra + q, 8);
                    q += 8;
                }
            return;
        }
        p += 4 + n;
    }
}

/* The bytes of member `name` (e.g. "images.npy"); HFC_ERR_DATA if absent or damaged. */
static hfc_status find_member(const uint8_t *z, size_t len, const char *path, const char *name,
                              member *m, hfc_error *err)
{
    memset(m, 0, sizeof *m);
    uint64_t at = 0, entries = 0;
    hfc_status st = central_directory(z, len, path, &at, &entries, err);
    for (uint64_t e = 0; !st && e < entries; e++) {
        if (at > len - 46 || len < 46 || le(z + at, 4) != 0x02014b50)
            return zip_fail(path, "a central directory entry is damaged", err);
        size_t method = le(z + at + 10, 2), nlen = le(z + at + 28, 2),
               xlen = le(z + at + 30, 2), clen = le(z + at + 32, 2);
        uint32_t crc = (uint32_t)le(z + at + 16, 4);
        uint64_t csize = le(z + at + 20, 4), usize = le(z + at + 24, 4),
                 local = le(z + at + 42, 4);
        if (46 + nlen + xlen + clen > len - at)
            return zip_fail(path, "a central directory entry runs past the end", err);
        const uint8_t *entry_name = z + at + 46;
        zip64_fields(entry_name + nlen, xlen, &usize, &csize, &local);
        at += 46 + nlen + xlen + clen;
        if (nlen != strlen(name) || memcmp(entry_name, name, nlen))
            continue;
        if (local > len - 30 || le(z + local, 4) != 0x04034b50)
            return hfc_fail(err, HFC_ERR_DATA, path, "%s: its local header is damaged", name);
        uint64_t start = local + 30 + le(z + local + 26, 2) + le(z + local + 28, 2);
        if (start > len || csize > len - start)
            return hfc_fail(err, HFC_ERR_DATA, path,
                            "%s: its %llu bytes run past the end of the file (truncated?)", name,
                            (unsigned long long)csize);
        if (method == 0 && csize == usize) {
            m->data = z + start;
            m->len = (size_t)usize;
        } else if (method == 8) {
            if ((st = hfc_inflate(z + start, (size_t)csize, 0, (size_t)usize, &m->owned, &m->len,
                                  path, err)))
                return st;
            if (m->len != usize)
                return hfc_fail(err, HFC_ERR_DATA, path, "%s inflates to %zu bytes, not %llu",
                                name, m->len, (unsigned long long)usize);
            m->data = m->owned;
        } else {
            return hfc_fail(err, HFC_ERR_DATA, path,
                            "%s: compression method %zu (only stored and deflated are read)",
                            name, method);
        }
        uLong got = crc32(0L, Z_NULL, 0);
        for (size_t p = 0; p < m->len; p += (size_t)1 << 30) {
            size_t n = m->len - p < ((size_t)1 << 30) ? m->len - p : ((size_t)1 << 30);
            got = crc32(got, m->data + p, (uInt)n);
        }
        if ((uint32_t)got != crc)
            return hfc_fail(err, HFC_ERR_DATA, path,
                            "%s: CRC-32 %08x, the archive says %08x (damaged)", name,
                            (unsigned)got, (unsigned)crc);
        return HFC_OK;
    }
    return st ? st : zip_fail(path, name[0] == 'i' ? "no member images.npy (np.savez(f, images=..., labels=...))"
                                                   : "no member labels.npy (np.savez(f, images=..., labels=...))",
                              err);
}

hfc_status hfc_npz_fill(hfc_dataset *ds, const uint8_t *z, size_t len, const char *path, int nchw,
                        size_t limit, hfc_error *err)
{
    member im, lb = {0};
    char ipath[1100], lpath[1100];
    snprintf(ipath, sizeof ipath, "%s:images.npy", path);
    snprintf(lpath, sizeof lpath, "%s:labels.npy", path);
    hfc_status st = find_member(z, len, path, "images.npy", &im, err);
    if (!st && !(st = find_member(z, len, path, "labels.npy", &lb, err)))
        st = hfc_npy_fill(ds, im.data, im.len, ipath, lb.data, lb.len, lpath, nchw, 0, limit, err);
    free(im.owned);
    free(lb.owned);
    return st;
}

hfc_status hfc_dataset_load_npz(hfc_dataset *ds, const char *path, int nchw,
                                hfc_dataset_kind kind, size_t limit, hfc_error *err)
{
    hfc_npy_start(ds, kind, path);
    const uint8_t *z = NULL;
    size_t len = 0;
    hfc_status st = hfc_map_file(path, &z, &len, err);
    if (!st)
        st = hfc_npz_fill(ds, z, len, path, nchw, limit, err);
    if (z)
        munmap((void *)z, len);
    if (st)
        hfc_dataset_free(ds);
    return st;
}
