/* Versioning both ways. tests/ffi.rs builds this three times against the
 * current library, each time with a different copy of the header:
 *   - as is;
 *   - NB_SHRUNK: an older program, whose nb_config lacks its last two
 *     fields, nb_metrics its last seven (the first release's, which ended
 *     at events_lost) and nb_transition its last one;
 *   - NB_GROWN: a newer program, whose nb_config, nb_metrics,
 *     nb_fast_path and nb_transition each end with one more field,
 *     `uint64_t newer`.
 * The library must read and write only the bytes both sides know. */
#include "nanobreaker.h"
#include "check.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Each struct is followed by guard bytes the library must never touch. */
struct config_box {
    nb_config c;
    unsigned char guard[64];
};
struct metrics_box {
    nb_metrics m;
    unsigned char guard[64];
};
struct fast_box {
    nb_fast_path f;
    unsigned char guard[64];
};

static int untouched(const unsigned char *guard) {
    size_t i;
    for (i = 0; i < 64; i++) {
        if (guard[i] != 0xA5) return 0;
    }
    return 1;
}

static size_t transition_size;

static void on_transition(const nb_transition *t, void *userdata) {
    (void)userdata;
    transition_size = t->size;
#ifdef NB_GROWN
    /* Only read `newer` when the library says it has it. */
    if (t->size >= offsetof(nb_transition, newer) + sizeof t->newer) transition_size = 0;
#endif
}

int main(void) {
    struct config_box cfg, read;
    struct metrics_box met;
    struct fast_box fast;
    nb_breaker *b = NULL;
    nb_permit p;
    int i;

    /* Defaults: written within the caller's struct, size = the caller's. */
    memset(&cfg, 0xA5, sizeof cfg);
    CHECK(nb_config_default(&cfg.c, sizeof cfg.c) == NB_OK);
    CHECK(untouched(cfg.guard));
    CHECK(cfg.c.size == sizeof cfg.c);
    CHECK(cfg.c.failure_rate_threshold == 0.5 && cfg.c.half_open_permits == 5);
#ifdef NB_GROWN
    CHECK(cfg.c.newer == 0); /* unknown to the library: zeroed, i.e. unset */
#endif
    cfg.c.minimum_calls = 4;
    cfg.c.window_size = 10;
    cfg.c.jitter = 0.0;
    CHECK(nb_config_invalid_field(&cfg.c) == NULL);
    CHECK(nb_breaker_new(&cfg.c, &b) == NB_OK && b != NULL);

    /* The configuration in force, read back. */
    memset(&read, 0xA5, sizeof read);
    CHECK(nb_breaker_config(b, &read.c, sizeof read.c) == NB_OK);
    CHECK(untouched(read.guard));
    CHECK(read.c.size == sizeof read.c && read.c.minimum_calls == 4 && read.c.window_size == 10);
#ifdef NB_SHRUNK
    /* The fields this program lacks took their defaults: a valid breaker
     * whose trial policy is the default, first failure reopens. */
#else
    CHECK(read.c.half_open_policy == NB_HALF_OPEN_FIRST_FAILURE && read.c.stripes == 0);
#endif
#ifdef NB_GROWN
    CHECK(read.c.newer == 0);
    /* A setting this library does not know is refused, not ignored. */
    {
        nb_breaker *refused = NULL;
        cfg.c.newer = 1;
        CHECK(nb_breaker_new(&cfg.c, &refused) == NB_INVALID_CONFIG && refused == NULL);
        CHECK(nb_config_invalid_field(&cfg.c) != NULL && strcmp(nb_config_invalid_field(&cfg.c), "size") == 0);
        CHECK(nb_breaker_reconfigure(b, &cfg.c) == NB_INVALID_CONFIG);
        cfg.c.newer = 0;
    }
#endif
    CHECK(nb_breaker_reconfigure(b, &cfg.c) == NB_OK);

    /* Metrics: filled up to what both know; size says how far. */
    for (i = 0; i < 3; i++) {
        CHECK(nb_acquire(b, &p) == NB_OK && nb_success(b, &p) == NB_OK);
    }
    memset(&met, 0xA5, sizeof met);
    CHECK(nb_breaker_metrics(b, &met.m, sizeof met.m) == NB_OK);
    CHECK(untouched(met.guard));
    CHECK(met.m.calls == 3 && met.m.successes == 3 && met.m.state == NB_STATE_CLOSED);
#ifdef NB_GROWN
    CHECK(met.m.size == offsetof(nb_metrics, newer) && met.m.newer == 0);
#else
    CHECK(met.m.size == sizeof met.m);
#endif

    /* The fast path: filled up to what both know, and usable. */
    memset(&fast, 0xA5, sizeof fast);
    CHECK(nb_breaker_fast_path(b, &fast.f, sizeof fast.f) == NB_OK);
    CHECK(untouched(fast.guard));
#ifdef NB_GROWN
    CHECK(fast.f.size == offsetof(nb_fast_path, newer) && fast.f.newer == 0);
#else
    CHECK(fast.f.size == sizeof fast.f);
#endif
    CHECK(nb_acquire_fast(b, &fast.f, &p) == NB_OK && nb_success(b, &p) == NB_OK);
    CHECK(nb_acquire_fast(b, &fast.f, &p) == NB_OK && nb_success_fast(b, &fast.f, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &met.m, sizeof met.m) == NB_OK && met.m.calls == 5);

    /* Transitions: the library's size, whatever the caller's header. */
    CHECK(nb_breaker_on_transition(b, on_transition, NULL, NULL) == NB_OK);
    CHECK(nb_breaker_transition_to(b, NB_STATE_FORCED_OPEN) == NB_OK);
#ifdef NB_SHRUNK
    CHECK(transition_size > sizeof(nb_transition)); /* more than this program knows */
#elif defined(NB_GROWN)
    CHECK(transition_size == offsetof(nb_transition, newer)); /* less: `newer` is absent */
#else
    CHECK(transition_size == sizeof(nb_transition));
#endif

    /* Version checks a program can make at run time. */
    CHECK(nb_version_num() == NB_VERSION_NUM);
    CHECK(nb_version_num() / 1000000 == NB_VERSION_MAJOR);
    CHECK(strcmp(nb_version(), NB_VERSION_STRING) == 0);

    nb_breaker_free(b);
    return report();
}
