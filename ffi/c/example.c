/* The smallest useful program: protect a call with a breaker.
 *
 *   cc example.c $(pkg-config --cflags --libs nanobreaker)
 */
#include "nanobreaker.h"

#include <stdio.h>

static int call_dependency(int i) { return i % 3 == 0 ? -1 : 0; } /* fails 1 in 3 */

int main(void) {
    nb_config cfg;
    nb_breaker *breaker = NULL;
    nb_metrics m;
    nb_result r;
    int i;

    nb_config_default(&cfg, sizeof cfg);
    cfg.minimum_calls = 10;
    cfg.failure_rate_threshold = 0.25;
    r = nb_breaker_new(&cfg, &breaker);
    if (r != NB_OK) {
        fprintf(stderr, "nb_breaker_new: %s (field %s)\n", nb_result_str(r), nb_config_invalid_field(&cfg));
        return 1;
    }
    for (i = 0; i < 20; i++) {
        nb_permit permit;
        uint64_t retry_ns = 0;
        if (nb_acquire_ex(breaker, &permit, &retry_ns) == NB_REJECTED) {
            printf("call %2d: rejected, retry in %.1f s\n", i, (double)retry_ns / 1e9);
            continue;
        }
        nb_record(breaker, &permit, call_dependency(i) == 0 ? NB_SUCCESS : NB_FAILURE);
        printf("call %2d: made, breaker %s\n", i, nb_state_str(nb_breaker_state(breaker)));
    }
    nb_breaker_metrics(breaker, &m, sizeof m);
    printf("nanobreaker %s: %llu calls, %llu failed, %llu rejected\n", nb_version(),
           (unsigned long long)m.calls, (unsigned long long)m.failures, (unsigned long long)m.rejected);
    nb_breaker_free(breaker);
    return 0;
}
