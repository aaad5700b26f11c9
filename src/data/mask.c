/* mask.c - the frequency mask: one value (hfc_mask) and one weight function
 * that the split, the pictures, the JSON and tools/reference.py all follow.
 * Definitions: hfc.h and README ("Masks"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/data.h"

static const char *const KIND_NAMES[] = {"disc", "square", "gaussian", "band"};
_Static_assert(sizeof KIND_NAMES / sizeof *KIND_NAMES == HFC_MASK_KINDS,
               "one name per mask kind");

const char *hfc_mask_kind_name(hfc_mask_kind kind)
{
    return (unsigned)kind < HFC_MASK_KINDS ? KIND_NAMES[kind] : "?";
}

int hfc_mask_kind_parse(const char *name)
{
    for (int k = 0; k < HFC_MASK_KINDS; k++)
        if (!strcmp(name, KIND_NAMES[k]))
            return k;
    return -1;
}

double hfc_mask_weight(const hfc_mask *m, int fy, int fx)
{
    double d2 = (double)fy * fy + (double)fx * fx;
    switch (m->kind) {
    case HFC_MASK_DISC:
        return sqrt(d2) < m->r;
    case HFC_MASK_SQUARE:
        return (abs(fy) > abs(fx) ? abs(fy) : abs(fx)) < m->r;
    case HFC_MASK_GAUSSIAN:
        return exp(-d2 / (2 * m->r * m->r));
    case HFC_MASK_BAND:
        return m->r <= sqrt(d2) && sqrt(d2) < m->outer;
    default:
        return 0;
    }
}

/* -16 and 16 are the same frequency on 32 points. */
static int negate(int f) { return f == -HFC_CIFAR_SIDE / 2 ? f : -f; }

int hfc_mask_sign_symmetric(const hfc_mask *m)
{
    const int H = HFC_CIFAR_SIDE / 2;
    for (int fy = -H; fy < H; fy++)
        for (int fx = -H; fx < H; fx++) {
            double w = hfc_mask_weight(m, fy, fx);
            if (w != hfc_mask_weight(m, negate(fy), fx) || w != hfc_mask_weight(m, fy, negate(fx)))
                return 0;
        }
    return 1;
}

int hfc_mask_max_frequency(const hfc_mask *m)
{
    const int H = HFC_CIFAR_SIDE / 2;
    int top = -1;
    for (int fy = -H; fy < H; fy++)
        for (int fx = -H; fx < H; fx++)
            if (hfc_mask_weight(m, fy, fx) != 0) {
                int f = abs(fy) > abs(fx) ? abs(fy) : abs(fx);
                top = f > top ? f : top;
            }
    return top;
}

hfc_status hfc_mask_check(const hfc_mask *m, hfc_error *err)
{
    if ((unsigned)m->kind >= HFC_MASK_KINDS)
        return hfc_fail(err, HFC_ERR_USAGE, "", "unknown mask kind %d", (int)m->kind);
    if (!(m->r >= 0 && m->r <= 1000))
        return hfc_fail(err, HFC_ERR_USAGE, "", "--radius: %g is not in 0..1000", m->r);
    if (m->kind == HFC_MASK_GAUSSIAN && !(m->r > 0))
        return hfc_fail(err, HFC_ERR_USAGE, "", "--mask gaussian: the radius (sigma) must be > 0");
    if (m->kind == HFC_MASK_BAND && !(m->r < m->outer && m->outer <= 1000))
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--radius %g:%g: a band A:B needs 0 <= A < B <= 1000", m->r, m->outer);
    return HFC_OK;
}

void hfc_mask_label(const hfc_mask *m, char *buf, size_t cap)
{
    if (m->kind == HFC_MASK_BAND)
        snprintf(buf, cap, "%g:%g", m->r, m->outer);
    else
        snprintf(buf, cap, "%g", m->r);
}

void hfc_mask_describe(const hfc_mask *m, char *buf, size_t cap)
{
    switch (m->kind) {
    case HFC_MASK_DISC:
        snprintf(buf, cap, "dist < %g", m->r);
        break;
    case HFC_MASK_SQUARE:
        snprintf(buf, cap, "max(|fy|, |fx|) < %g", m->r);
        break;
    case HFC_MASK_GAUSSIAN:
        snprintf(buf, cap, "gaussian, sigma %g", m->r);
        break;
    default:
        snprintf(buf, cap, "%g <= dist < %g", m->r, m->outer);
        break;
    }
}

double hfc_mask_position(const hfc_mask *m)
{
    return m->kind == HFC_MASK_BAND ? (m->r + m->outer) / 2 : m->r;
}

int hfc_mask_equal(const hfc_mask *a, const hfc_mask *b)
{
    return a->kind == b->kind && a->r == b->r && (a->kind != HFC_MASK_BAND || a->outer == b->outer);
}
