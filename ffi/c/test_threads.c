/* Many threads sharing one breaker through the C ABI: the books must balance. */
#define _POSIX_C_SOURCE 200809L
#include "nanobreaker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8
static int CALLS = 200000; /* argv[1] overrides (valgrind runs fewer) */

static nb_breaker *breaker;

struct tally {
    uint64_t ok, rejected, seed;
};

static void *worker(void *arg) {
    struct tally *t = arg;
    uint64_t x = t->seed;
    int i;
    for (i = 0; i < CALLS; i++) {
        nb_permit p;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (nb_acquire(breaker, &p) != NB_OK) {
            t->rejected++;
            continue;
        }
        t->ok++;
        /* Phases: healthy, outage, recovery, by position in the run. */
        if (i > CALLS / 3 && i < 2 * CALLS / 3 ? x % 10 < 8 : x % 100 < 2) {
            nb_failure(breaker, &p);
        } else if (x % 97 == 0) {
            nb_ignore(breaker, &p);
        } else {
            nb_success(breaker, &p);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    nb_config c;
    nb_metrics m;
    pthread_t threads[THREADS];
    struct tally tallies[THREADS];
    uint64_t ok = 0, rejected = 0;
    int i, failed = 0;

    if (argc > 1) CALLS = atoi(argv[1]);
    nb_config_default(&c, sizeof c);
    c.open_wait_ns = 1000000; /* 1 ms */
    c.max_open_wait_ns = 4000000;
    c.half_open_max_wait_ns = 10000000;
    if (nb_breaker_new(&c, &breaker) != NB_OK) {
        return 2;
    }
    for (i = 0; i < THREADS; i++) {
        tallies[i].ok = tallies[i].rejected = 0;
        tallies[i].seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        pthread_create(&threads[i], NULL, worker, &tallies[i]);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ok += tallies[i].ok;
        rejected += tallies[i].rejected;
    }
    nb_breaker_metrics(breaker, &m, sizeof m);
    if (ok + rejected != (uint64_t)THREADS * CALLS) failed++;
    if (m.rejected != rejected) failed++, fprintf(stderr, "rejected %llu vs %llu\n", (unsigned long long)m.rejected, (unsigned long long)rejected);
    if (m.calls + m.ignored != ok) failed++, fprintf(stderr, "calls+ignored %llu vs %llu\n", (unsigned long long)(m.calls + m.ignored), (unsigned long long)ok);
    if (m.successes + m.failures != m.calls) failed++;
    if (m.half_open_in_flight != 0) failed++, fprintf(stderr, "half-open slot leaked\n");
    nb_breaker_free(breaker);
    printf("%d passed, %d failed\n", 5 - failed, failed);
    return failed == 0 ? 0 : 1;
}
