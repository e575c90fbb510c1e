/*
 * stats.c: see stats.h.
 */
#include "stats.h"

int stats_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y ? 1 : 0;
}

double stats_pct(const double *v, long n, double p)
{
    long k;

    if (n <= 0)
        return 0;
    k = (long)((p / 100.0) * (double)n + 0.999999999) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return v[k];
}
