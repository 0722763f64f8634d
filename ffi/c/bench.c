/* ns per acquire + record through the C ABI, one thread, closed breaker.
 * Run by benches/ffi.sh beside the same call from Rust and from Go. */
#define _POSIX_C_SOURCE 200809L
#include "nanobreaker.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 50000000L;
    nb_config cfg;
    nb_breaker *b = NULL;
    nb_fast_path fast;
    double best = 1e18;
    int round;
    nb_config_default(&cfg, sizeof cfg);
    if (nb_breaker_new(&cfg, &b) != NB_OK) return 1;
    for (round = 0; round < 5; round++) {
        long i;
        double start = now_ns(), per;
        for (i = 0; i < n; i++) {
            nb_permit p;
            if (nb_acquire(b, &p) == NB_OK) nb_record(b, &p, NB_SUCCESS);
        }
        per = (now_ns() - start) / (double)n;
        if (per < best) best = per;
    }
    printf("C: nb_acquire + nb_record(NB_SUCCESS): %.2f ns/call (best of 5 x %ld)\n", best, n);
    best = 1e18;
    if (nb_breaker_fast_path(b, &fast, sizeof fast) != NB_OK) return 1;
    for (round = 0; round < 5; round++) {
        long i;
        double start = now_ns(), per;
        for (i = 0; i < n; i++) {
            nb_permit p;
            if (nb_acquire_fast(b, &fast, &p) == NB_OK) nb_record(b, &p, NB_SUCCESS);
        }
        per = (now_ns() - start) / (double)n;
        if (per < best) best = per;
    }
    printf("C: nb_acquire_fast + nb_record(NB_SUCCESS): %.2f ns/call (best of 5 x %ld)\n", best, n);
    best = 1e18;
    for (round = 0; round < 5; round++) {
        long i;
        double start = now_ns(), per;
        for (i = 0; i < n; i++) {
            nb_permit p;
            if (nb_acquire_fast(b, &fast, &p) == NB_OK) nb_success_fast(b, &fast, &p);
        }
        per = (now_ns() - start) / (double)n;
        if (per < best) best = per;
    }
    printf("C: nb_acquire_fast + nb_success_fast: %.2f ns/call (best of 5 x %ld)\n", best, n);
    nb_breaker_free(b);
    return 0;
}
