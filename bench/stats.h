/*
 * stats.h: the percentile arithmetic the bench helpers share: sort a sample,
 * then read nearest-rank percentiles off it.
 */
#ifndef WF_BENCH_STATS_H
#define WF_BENCH_STATS_H

/* qsort comparator for doubles, ascending. */
int stats_cmp_double(const void *a, const void *b);

/* Nearest-rank percentile p (0..100) of sorted v[0..n-1]; 0 when n <= 0. */
double stats_pct(const double *v, long n, double p);

#endif
