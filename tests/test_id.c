/* test_id.c - hfc_twonn on manifolds of known dimension embedded in a
 * higher one: d-dimensional linear subspaces (Gaussian coordinates through a
 * random D x d map) and curved ones (a d-sphere through a random rotation
 * of R^(d+1) into R^D, a Swiss roll). TwoNN must land within 5% of d. Also:
 * duplicates are dropped, the sd is 0 without resamples, too few points fail. */
#include <math.h>

#include "test_util.h"

static uint64_t state = 12345;
static double uniform(void) { return (hfc_splitmix64(state++) >> 11) * 0x1.0p-53; }
static double gauss(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * 3.14159265358979323846 * v);
}

/* points (n, D) = z (n, k) times a random k x D map */
static void embed(const double *z, size_t n, int k, int D, float *x)
{
    double *map = malloc((size_t)k * D * sizeof *map);
    for (int i = 0; i < k * D; i++)
        map[i] = gauss();
    for (size_t p = 0; p < n; p++)
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int i = 0; i < k; i++)
                s += z[p * k + i] * map[i * D + j];
            x[p * D + j] = (float)s;
        }
    free(map);
}

static void expect_id(const char *what, const float *x, size_t n, int D, double d)
{
    hfc_id_result r;
    hfc_error err;
    hfc_status st = hfc_twonn(x, n, (size_t)D, 5, 0, &r, &err);
    check(st == HFC_OK && fabs(r.id - d) <= 0.05 * d && r.sd > 0 && r.sd < 0.1 * d,
          "%s: id %.3f (sd %.3f, %zu points) for d = %g", what, r.id, r.sd, r.points, d);
}

int main(void)
{
    enum { N = 2000, D = 64 };
    double *z = malloc(N * 8 * sizeof *z);
    float *x = malloc((size_t)N * D * sizeof *x);
    for (int d = 2; d <= 8; d += 3) { /* linear subspaces: d = 2, 5, 8 */
        for (int i = 0; i < N * d; i++)
            z[i] = gauss();
        embed(z, N, d, D, x);
        char what[64];
        snprintf(what, sizeof what, "Gaussian on a %d-dim subspace of R^%d", d, D);
        expect_id(what, x, N, D, d);
    }
    for (int d = 2; d <= 4; d += 2) { /* d-spheres in R^(d+1), mapped into R^D */
        for (int p = 0; p < N; p++) {
            double norm = 0;
            for (int i = 0; i <= d; i++) {
                z[p * (d + 1) + i] = gauss();
                norm += z[p * (d + 1) + i] * z[p * (d + 1) + i];
            }
            for (int i = 0; i <= d; i++)
                z[p * (d + 1) + i] /= sqrt(norm);
        }
        embed(z, N, d + 1, D, x);
        char what[64];
        snprintf(what, sizeof what, "%d-sphere (curved) in R^%d", d, D);
        expect_id(what, x, N, D, d);
    }
    for (int p = 0; p < N; p++) { /* Swiss roll: a curved 2-d sheet in R^3 */
        double t = 1.5 * 3.14159265358979323846 * (1 + 2 * uniform()), h = 21 * uniform();
        z[p * 3] = t * cos(t);
        z[p * 3 + 1] = h;
        z[p * 3 + 2] = t * sin(t);
    }
    embed(z, N, 3, D, x);
    expect_id("Swiss roll in R^64", x, N, D, 2);

    hfc_id_result r, r2;
    hfc_error err;
    for (int i = 0; i < 10 * D; i++) /* points 0..9 and 10..19 the same: 20 dropped */
        x[(10 + i / D) * D + i % D] = x[i];
    /* also dropped: points whose two nearest are a duplicated pair (r1 = r2) */
    hfc_status st = hfc_twonn(x, N, D, 0, 0, &r, &err);
    check(st == HFC_OK && r.points <= N - 20 && r.points >= N - 60 && r.sd == 0,
          "duplicated points are dropped (r1 = 0, or r1 = r2 beside them): %zu of %d kept; "
          "sd 0 without resamples", r.points, N);
    check(hfc_twonn(x, N, D, 3, 7, &r, &err) == HFC_OK &&
              hfc_twonn(x, N, D, 3, 7, &r2, &err) == HFC_OK && r.id == r2.id && r.sd == r2.sd,
          "the same seed gives the same id and sd");
    check(hfc_twonn(x, 2, D, 0, 0, &r, &err) == HFC_ERR_USAGE, "2 points: %s", err.reason);
    free(z);
    free(x);
    return test_failures != 0;
}
