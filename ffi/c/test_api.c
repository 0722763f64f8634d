/* Every function and every error code of the C ABI. */
#define _POSIX_C_SOURCE 200809L
#include "nanobreaker.h"
#include "check.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The open wait. Long enough that a run under valgrind on a loaded machine
 * does not see it pass between two calls meant to happen while open. */
#define OPEN_MS 200

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static nb_config small_config(void) {
    nb_config c;
    nb_config_default(&c, sizeof c);
    c.minimum_calls = 4;
    c.window_size = 10;
    c.open_wait_ns = OPEN_MS * 1000000ULL;
    c.max_open_wait_ns = 2 * OPEN_MS * 1000000ULL;
    c.jitter = 0.0;
    c.half_open_permits = 1;
    return c;
}

struct seen {
    int count;
    uint32_t states[16];
    uint32_t reasons[16];
    int freed;
};

static void on_transition(const nb_transition *t, void *userdata) {
    struct seen *s = userdata;
    if (s->count < 16) {
        s->states[s->count] = t->to;
        s->reasons[s->count] = t->reason;
    }
    s->count++;
}

static void on_free(void *userdata) { ((struct seen *)userdata)->freed++; }

static void strings(void) {
    CHECK_EQ_STR(nb_version(), NB_VERSION_STRING);
    CHECK_EQ_STR(nb_result_str(NB_OK), "NB_OK");
    CHECK_EQ_STR(nb_result_str(NB_REJECTED), "NB_REJECTED");
    CHECK_EQ_STR(nb_result_str(NB_NULL_ARGUMENT), "NB_NULL_ARGUMENT");
    CHECK_EQ_STR(nb_result_str(NB_INVALID_CONFIG), "NB_INVALID_CONFIG");
    CHECK_EQ_STR(nb_result_str(NB_INVALID_ARGUMENT), "NB_INVALID_ARGUMENT");
    CHECK_EQ_STR(nb_result_str(NB_FOREIGN_PERMIT), "NB_FOREIGN_PERMIT");
    CHECK_EQ_STR(nb_result_str(NB_PANIC), "NB_PANIC");
    CHECK_EQ_STR(nb_result_str(NB_PERMIT_SPENT), "NB_PERMIT_SPENT");
    CHECK_EQ_STR(nb_result_str(NB_REGISTRY_FULL), "NB_REGISTRY_FULL");
    CHECK_EQ_STR(nb_result_str(NB_NOT_FOUND), "NB_NOT_FOUND");
    CHECK_EQ_STR(nb_result_str(NB_OUT_OF_MEMORY), "NB_OUT_OF_MEMORY");
    CHECK_EQ_STR(nb_result_str(12345), "NB_UNKNOWN_RESULT");
    CHECK_EQ_STR(nb_state_str(NB_STATE_HALF_OPEN), "half_open");
    CHECK_EQ_STR(nb_state_str(NB_STATE_UNKNOWN), "unknown");
    CHECK_EQ_STR(nb_reason_str(NB_REASON_FAILURE_RATE), "failure_rate");
    CHECK_EQ_STR(nb_reason_str(NB_REASON_MANUAL), "manual");
    CHECK_EQ_STR(nb_reason_str(NB_REASON_FLEET), "fleet");
    CHECK_EQ_STR(nb_reason_str(99), "unknown");
}

static void config(void) {
    nb_config c;
    CHECK(nb_config_default(NULL, sizeof c) == NB_NULL_ARGUMENT);
    CHECK(nb_config_default(&c, sizeof(size_t) - 1) == NB_INVALID_ARGUMENT);
    CHECK(nb_config_default(&c, sizeof c) == NB_OK);
    CHECK(c.size == sizeof(nb_config));
    CHECK(c.failure_rate_threshold == 0.5);
    CHECK(c.minimum_calls == 20 && c.window_kind == NB_WINDOW_COUNT && c.window_size == 100);
    CHECK(c.open_wait_ns == 5000000000ULL && c.max_open_wait_ns == 60000000000ULL);
    CHECK(c.half_open_permits == 5 && c.slow_call_duration_ns == 0 && c.jitter == 0.2);
    CHECK(nb_config_invalid_field(&c) == NULL);
    CHECK_EQ_STR(nb_config_invalid_field(NULL), "config");

    c.failure_rate_threshold = 1.5;
    CHECK_EQ_STR(nb_config_invalid_field(&c), "failure_rate_threshold");
    nb_config_default(&c, sizeof c);
    c.half_open_permits = 0;
    CHECK_EQ_STR(nb_config_invalid_field(&c), "half_open_permits");
    nb_config_default(&c, sizeof c);
    c.window_kind = 7;
    CHECK_EQ_STR(nb_config_invalid_field(&c), "window_kind");
    nb_config_default(&c, sizeof c);
    c.window_kind = NB_WINDOW_TIME;
    c.window_size = 10;
    c.window_length_ns = 5000000; /* 0.5 ms buckets */
    CHECK_EQ_STR(nb_config_invalid_field(&c), "window");
    nb_config_default(&c, sizeof c);
    c.stripes = 65;
    CHECK_EQ_STR(nb_config_invalid_field(&c), "stripes");
    nb_config_default(&c, sizeof c);
    c.size = sizeof(size_t) - 1;
    CHECK_EQ_STR(nb_config_invalid_field(&c), "size");
    /* A caller that knows only `size`: every field beyond is a default,
     * whatever its bytes hold. */
    c.size = sizeof(size_t);
    c.failure_rate_threshold = 1.5;
    CHECK(nb_config_invalid_field(&c) == NULL);

    /* A caller built against a later, larger nb_config. */
    {
        struct {
            nb_config base;
            uint64_t newer_field;
        } big;
        nb_breaker *b = NULL;
        nb_config_default(&big.base, sizeof big.base);
        big.base.size = sizeof big;
        big.newer_field = 0;
        CHECK(nb_config_invalid_field(&big.base) == NULL);
        CHECK(nb_breaker_new(&big.base, &b) == NB_OK);
        nb_breaker_free(b);
        big.newer_field = 1; /* a setting this version cannot honour */
        b = NULL;
        CHECK(nb_breaker_new(&big.base, &b) == NB_INVALID_CONFIG && b == NULL);
        CHECK_EQ_STR(nb_config_invalid_field(&big.base), "size");
    }
}

static void lifecycle_and_errors(void) {
    nb_config c = small_config();
    nb_breaker *b = NULL, *other = NULL;
    nb_permit p, q;
    nb_metrics m;
    uint64_t retry = 0;

    CHECK(nb_breaker_new(NULL, &b) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_new(&c, NULL) == NB_NULL_ARGUMENT);
    c.jitter = 1.0;
    b = (nb_breaker *)&c; /* must stay untouched on error */
    CHECK(nb_breaker_new(&c, &b) == NB_INVALID_CONFIG && b == (nb_breaker *)&c);
    c.jitter = 0.0;
    CHECK(nb_breaker_new(&c, &b) == NB_OK && b != NULL);
    CHECK(nb_breaker_new(&c, &other) == NB_OK);
    nb_breaker_free(NULL);

    CHECK(nb_breaker_state(NULL) == NB_STATE_UNKNOWN);
    CHECK(nb_breaker_state(b) == NB_STATE_CLOSED);
    CHECK(nb_acquire(NULL, &p) == NB_NULL_ARGUMENT);
    CHECK(nb_acquire(b, NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_acquire_ex(b, NULL, &retry) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_metrics(NULL, &m, sizeof m) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_metrics(b, NULL, sizeof m) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_metrics(b, &m, 4) == NB_INVALID_ARGUMENT);
    CHECK(nb_breaker_reset(NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_transition_to(NULL, NB_STATE_OPEN) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_reconfigure(NULL, &c) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_reconfigure(b, NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_config(NULL, &c, sizeof c) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_config(b, NULL, sizeof c) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_config(b, &c, 4) == NB_INVALID_ARGUMENT);
    CHECK(nb_breaker_on_transition(NULL, on_transition, NULL, NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_on_transition(b, NULL, NULL, NULL) == NB_NULL_ARGUMENT);

    /* Record: every outcome, a bad outcome, a foreign permit. */
    CHECK(nb_acquire(b, &p) == NB_OK);
    CHECK(nb_record(NULL, &p, NB_SUCCESS) == NB_NULL_ARGUMENT);
    CHECK(nb_record(b, &p, 3) == NB_INVALID_ARGUMENT);
    CHECK(nb_acquire(other, &q) == NB_OK);
    CHECK(nb_record(b, &q, NB_SUCCESS) == NB_FOREIGN_PERMIT);
    CHECK(nb_record(other, &q, NB_SUCCESS) == NB_OK);
    CHECK(nb_record(b, &p, NB_SUCCESS) == NB_OK);
    CHECK(nb_acquire(b, &p) == NB_OK && nb_ignore(b, &p) == NB_OK);
    CHECK(nb_acquire(b, &p) == NB_OK && nb_success(b, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK);
    CHECK(m.calls == 2 && m.successes == 2 && m.failures == 0 && m.ignored == 1 && m.rejected == 0);
    CHECK(m.state == NB_STATE_CLOSED && m.window_calls == 2 && m.failure_rate == 0.0);
    CHECK(nb_breaker_metrics(other, &m, sizeof m) == NB_OK && m.calls == 1);

    nb_breaker_free(other);
    nb_breaker_free(b);
}

static void transitions(void) {
    /* Waits long enough that a run under valgrind, slow as it is, cannot
     * pass one between two lines that expect the breaker still open. */
    nb_config c = small_config();
    c.open_wait_ns = 200 * 1000000ULL;
    c.max_open_wait_ns = 400 * 1000000ULL;
    nb_breaker *b = NULL;
    nb_permit p, untouched;
    uint64_t retry = 0;
    nb_metrics m;
    struct seen seen;
    int i;

    memset(&seen, 0, sizeof seen);
    CHECK(nb_breaker_new(&c, &b) == NB_OK);
    CHECK(nb_breaker_on_transition(b, on_transition, &seen, on_free) == NB_OK);

    for (i = 0; i < 4; i++) {
        CHECK(nb_acquire(b, &p) == NB_OK && nb_failure(b, &p) == NB_OK);
    }
    CHECK(nb_breaker_state(b) == NB_STATE_OPEN);
    memset(&untouched, 0xAB, sizeof untouched);
    p = untouched;
    CHECK(nb_acquire_ex(b, &p, &retry) == NB_REJECTED);
    CHECK(memcmp(&p, &untouched, sizeof p) == 0);
    CHECK(retry > 0 && retry <= OPEN_MS * 1000000ULL);
    CHECK(nb_acquire(b, &p) == NB_REJECTED);

    sleep_ms(OPEN_MS * 3 / 2);
    CHECK(nb_acquire(b, &p) == NB_OK);
    CHECK(nb_breaker_state(b) == NB_STATE_HALF_OPEN);
    CHECK(nb_acquire(b, &untouched) == NB_REJECTED); /* one permit */
    CHECK(nb_failure(b, &p) == NB_OK);
    CHECK(nb_breaker_state(b) == NB_STATE_OPEN);
    CHECK(nb_acquire_ex(b, &p, &retry) == NB_REJECTED && retry > OPEN_MS * 1000000ULL); /* backoff */

    sleep_ms(OPEN_MS * 5 / 2);
    CHECK(nb_acquire(b, &p) == NB_OK && nb_success(b, &p) == NB_OK);
    CHECK(nb_breaker_state(b) == NB_STATE_CLOSED);

    CHECK(seen.count == 5);
    CHECK(seen.states[0] == NB_STATE_OPEN && seen.reasons[0] == NB_REASON_FAILURE_RATE);
    CHECK(seen.states[1] == NB_STATE_HALF_OPEN && seen.reasons[1] == NB_REASON_OPEN_WAIT_ELAPSED);
    CHECK(seen.states[2] == NB_STATE_OPEN && seen.reasons[2] == NB_REASON_PROBES_FAILED);
    CHECK(seen.states[4] == NB_STATE_CLOSED && seen.reasons[4] == NB_REASON_PROBES_SUCCEEDED);

    /* Manual transitions. */
    CHECK(nb_breaker_transition_to(b, 6) == NB_INVALID_ARGUMENT);
    CHECK(nb_breaker_transition_to(b, NB_STATE_UNKNOWN) == NB_INVALID_ARGUMENT);
    CHECK(nb_breaker_transition_to(b, NB_STATE_FORCED_OPEN) == NB_OK);
    CHECK(nb_acquire_ex(b, &p, &retry) == NB_REJECTED && retry == UINT64_MAX);
    CHECK(nb_breaker_transition_to(b, NB_STATE_DISABLED) == NB_OK);
    CHECK(nb_acquire(b, &p) == NB_OK && nb_failure(b, &p) == NB_OK);
    CHECK(nb_breaker_transition_to(b, NB_STATE_METRICS_ONLY) == NB_OK);
    for (i = 0; i < 10; i++) {
        CHECK(nb_acquire(b, &p) == NB_OK && nb_failure(b, &p) == NB_OK);
    }
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK);
    CHECK(m.state == NB_STATE_METRICS_ONLY && m.failure_rate == 1.0 && m.window_calls == 10);
    CHECK(nb_breaker_reset(b) == NB_OK && nb_breaker_state(b) == NB_STATE_CLOSED);
    CHECK(seen.count == 9 && seen.reasons[8] == NB_REASON_MANUAL);

    CHECK(seen.freed == 0);
    nb_breaker_free(b);
    CHECK(seen.freed == 1);
}

/* A permit counts once: a second record is refused, in closed and in
 * half-open (where it would count one probe as two), and so is a permit of
 * a breaker since freed, even by a new breaker at the same address. */
static void permit_used_once(void) {
    nb_config c = small_config();
    nb_breaker *b = NULL, *gone = NULL;
    nb_permit p, p2, forged;
    nb_metrics m;
    int i;

    c.half_open_permits = 2;
    CHECK(nb_breaker_new(&c, &b) == NB_OK);
    CHECK(nb_acquire(b, &p) == NB_OK);
    CHECK(nb_record(b, &p, NB_SUCCESS) == NB_OK);
    CHECK(nb_record(b, &p, NB_SUCCESS) == NB_PERMIT_SPENT);
    CHECK(nb_failure(b, &p) == NB_PERMIT_SPENT);
    CHECK(nb_ignore(b, &p) == NB_PERMIT_SPENT);
    CHECK(nb_record(b, NULL, NB_SUCCESS) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.calls == 1 && m.successes == 1 && m.ignored == 0);

    /* Not written by nb_acquire. */
    memset(&forged, 0, sizeof forged);
    CHECK(nb_success(b, &forged) == NB_INVALID_ARGUMENT);
    memset(&forged, 0xFF, sizeof forged);
    CHECK(nb_success(b, &forged) == NB_INVALID_ARGUMENT);

    /* Half-open with two probes: the first one recorded twice must not
     * count as both, so the trial stays open until the second reports. */
    CHECK(nb_breaker_reset(b) == NB_OK);
    for (i = 0; i < 4; i++) {
        CHECK(nb_acquire(b, &p) == NB_OK && nb_failure(b, &p) == NB_OK);
    }
    CHECK(nb_breaker_state(b) == NB_STATE_OPEN);
    sleep_ms(OPEN_MS * 3 / 2);
    CHECK(nb_acquire(b, &p) == NB_OK && nb_breaker_state(b) == NB_STATE_HALF_OPEN);
    CHECK(nb_acquire(b, &p2) == NB_OK);
    CHECK(nb_success(b, &p) == NB_OK);
    CHECK(nb_success(b, &p) == NB_PERMIT_SPENT);
    CHECK(nb_breaker_state(b) == NB_STATE_HALF_OPEN);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.half_open_in_flight == 1);
    CHECK(nb_success(b, &p2) == NB_OK);
    CHECK(nb_breaker_state(b) == NB_STATE_CLOSED);
    nb_breaker_free(b);

    /* A permit outliving its breaker. */
    CHECK(nb_breaker_new(&c, &gone) == NB_OK);
    CHECK(nb_acquire(gone, &p) == NB_OK);
    nb_breaker_free(gone);
    for (i = 0; i < 4; i++) { /* likely reusing gone's memory */
        b = NULL;
        CHECK(nb_breaker_new(&c, &b) == NB_OK);
        CHECK(nb_success(b, &p) == NB_FOREIGN_PERMIT);
        CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.calls == 0 && m.ignored == 0);
        nb_breaker_free(b);
    }
}

/* The fail-open idiom of the README: if the library fails (NB_PANIC), make
 * the call anyway, unrecorded, and count it. `acquire` is nb_acquire, or a
 * stand-in that fails as the library would on an internal bug. */
typedef nb_result (*acquire_fn)(const nb_breaker *, nb_permit *);
static nb_result acquire_panics(const nb_breaker *b, nb_permit *p) {
    (void)b;
    (void)p;
    return NB_PANIC;
}
static unsigned long failed_open;
static int protected_call(const nb_breaker *b, acquire_fn acquire, int (*call)(void)) {
    nb_permit p;
    nb_result r = acquire(b, &p);
    if (r == NB_OK) {
        int rc = call();
        nb_record(b, &p, rc == 0 ? NB_SUCCESS : NB_FAILURE);
        return rc;
    }
    if (r == NB_PANIC) { /* fail open; a fail-closed program returns an error here */
        failed_open++;
        return call();
    }
    return -1; /* NB_REJECTED: the fallback */
}
static int calls_made;
static int dependency(void) { return calls_made++, 0; }

static void fail_open(void) {
    nb_config c = small_config();
    nb_breaker *b = NULL;
    nb_metrics m;
    CHECK(nb_breaker_new(&c, &b) == NB_OK);
    CHECK(protected_call(b, nb_acquire, dependency) == 0);
    CHECK(protected_call(b, acquire_panics, dependency) == 0);
    CHECK(protected_call(b, acquire_panics, dependency) == 0);
    CHECK(calls_made == 3 && failed_open == 2);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.calls == 1);
    CHECK(nb_breaker_transition_to(b, NB_STATE_FORCED_OPEN) == NB_OK);
    CHECK(protected_call(b, nb_acquire, dependency) == -1 && calls_made == 3);
    nb_breaker_free(b);
}

static void reconfigure(void) {
    nb_config c = small_config(), read;
    nb_breaker *b = NULL;
    CHECK(nb_breaker_new(&c, &b) == NB_OK);

    c.failure_rate_threshold = 0.0;
    CHECK(nb_breaker_reconfigure(b, &c) == NB_INVALID_CONFIG);
    CHECK(nb_breaker_config(b, &read, sizeof read) == NB_OK && read.failure_rate_threshold == 0.5);

    c = small_config();
    c.window_size = 11;
    CHECK(nb_breaker_reconfigure(b, &c) == NB_INVALID_CONFIG);
    CHECK(nb_config_invalid_field(&c) == NULL); /* valid alone: only this breaker's window is fixed */

    c = small_config();
    c.failure_rate_threshold = 0.75;
    c.slow_call_duration_ns = 1000;
    CHECK(nb_breaker_reconfigure(b, &c) == NB_OK);
    CHECK(nb_breaker_config(b, &read, sizeof read) == NB_OK);
    CHECK(read.size == sizeof read && read.failure_rate_threshold == 0.75 && read.slow_call_duration_ns == 1000);
    nb_breaker_free(b);
}

/* nb_acquire_fast: the header's inline acquire hands out the permit
 * nb_acquire would, records like it, and falls back to the library in
 * every state but Closed. */
static void fast_path(void) {
    nb_config c;
    nb_breaker *b = NULL, *other = NULL;
    nb_fast_path f, small;
    nb_permit p, q;
    nb_metrics m;
    CHECK(nb_config_default(&c, sizeof c) == NB_OK);
    CHECK(nb_breaker_new(&c, &b) == NB_OK && nb_breaker_new(&c, &other) == NB_OK);
    CHECK(nb_breaker_fast_path(NULL, &f, sizeof f) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_fast_path(b, NULL, sizeof f) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_fast_path(b, &f, 4) == NB_INVALID_ARGUMENT);
    CHECK(nb_breaker_fast_path(b, &f, sizeof f) == NB_OK && f.size == sizeof f && f.word != NULL);
    /* An older caller's smaller struct gets the fields it knows. */
    CHECK(nb_breaker_fast_path(b, &small, 3 * sizeof(uint64_t)) == NB_OK && small.size == 3 * sizeof(uint64_t));
    CHECK(small.word == f.word && small.mask == f.mask);

    CHECK(nb_acquire_fast(b, &f, &p) == NB_OK && nb_acquire(b, &q) == NB_OK);
    CHECK(memcmp(&p, &q, sizeof p) == 0); /* the permit nb_acquire gives */
    CHECK(nb_record(other, &p, NB_SUCCESS) == NB_FOREIGN_PERMIT);
    CHECK(nb_success(b, &p) == NB_OK && nb_success(b, &p) == NB_PERMIT_SPENT);
    CHECK(nb_ignore(b, &q) == NB_OK);
    CHECK(nb_acquire_fast(b, NULL, &p) == NB_OK && nb_failure(b, &p) == NB_OK); /* no path: the library */
    CHECK(nb_acquire_fast(b, &f, NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_acquire_fast(NULL, &f, &p) == NB_NULL_ARGUMENT);
    memset(&small, 0, sizeof small); /* never filled: the library decides */
    CHECK(nb_acquire_fast(b, &small, &p) == NB_OK && nb_ignore(b, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.calls == 2 && m.failures == 1 && m.ignored == 2);

    /* Any other state: the library decides. */
    CHECK(nb_breaker_transition_to(b, NB_STATE_FORCED_OPEN) == NB_OK);
    CHECK(nb_acquire_fast(b, &f, &p) == NB_REJECTED);
    CHECK(nb_breaker_transition_to(b, NB_STATE_OPEN) == NB_OK);
    CHECK(nb_acquire_fast(b, &f, &p) == NB_REJECTED);
    CHECK(nb_breaker_transition_to(b, NB_STATE_HALF_OPEN) == NB_OK);
    CHECK(nb_acquire_fast(b, &f, &p) == NB_OK && nb_success(b, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.rejected == 2 && m.probes_succeeded == 1);
    /* A permit from before a transition is stale: spent and dropped. */
    CHECK(nb_breaker_transition_to(b, NB_STATE_CLOSED) == NB_OK);
    CHECK(nb_acquire_fast(b, &f, &p) == NB_OK);
    CHECK(nb_breaker_reset(b) == NB_OK);
    CHECK(nb_success(b, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.window_calls == 0);
    nb_breaker_free(b);
    nb_breaker_free(other);
}

#ifdef NB_COUNT_CALLS
/* Built by tests/ffi.rs once more with -Wl,--wrap=nb_success and
 * -Wl,--wrap=nb_success_landed: counts the calls this program makes to
 * them, so the test can show nb_success_fast takes none on its rule. */
static long success_calls, landed_calls;
nb_result __real_nb_success(const nb_breaker *b, nb_permit *permit);
nb_result __real_nb_success_landed(const nb_breaker *b, nb_permit *permit, uint64_t stripe, uint64_t position);
nb_result __wrap_nb_success(const nb_breaker *b, nb_permit *permit);
nb_result __wrap_nb_success_landed(const nb_breaker *b, nb_permit *permit, uint64_t stripe, uint64_t position);
nb_result __wrap_nb_success(const nb_breaker *b, nb_permit *permit) {
    success_calls++;
    return __real_nb_success(b, permit);
}
nb_result __wrap_nb_success_landed(const nb_breaker *b, nb_permit *permit, uint64_t stripe, uint64_t position) {
    landed_calls++;
    return __real_nb_success_landed(b, permit, stripe, position);
}
#endif

/* nb_success_fast: the header's inline success (nb_fast_path's success
 * rule) counts each success once across the window's laps, judges the
 * success that fills the window, and leaves every other case to the
 * library, which answers as always. */
static void fast_success(void) {
    nb_config c;
    nb_breaker *b = NULL, *other = NULL;
    nb_fast_path f, fo;
    nb_permit p, q;
    nb_metrics m;
    int i;
    uint64_t stripe = nb_thread_stripe();
    CHECK(stripe != 0 && nb_thread_stripe() == stripe);
    CHECK(nb_config_default(&c, sizeof c) == NB_OK);
    c.window_size = 10;
    c.minimum_calls = 10;
    c.failure_rate_threshold = 0.5;
    c.stripes = 4;
    CHECK(nb_breaker_new(&c, &b) == NB_OK && nb_breaker_new(&c, &other) == NB_OK);
    CHECK(nb_breaker_fast_path(b, &f, sizeof f) == NB_OK && f.cursors != NULL && f.slots != NULL);
    CHECK(f.stripe_mask == 3 && f.ring == 10);
#ifdef NB_COUNT_CALLS
    success_calls = landed_calls = 0;
#endif
    for (i = 0; i < 1000; i++) {
        CHECK(nb_acquire_fast(b, &f, &p) == NB_OK && nb_success_fast(b, &f, &p) == NB_OK);
    }
#ifdef NB_COUNT_CALLS
    /* No nb_success; nb_success_landed for the first lap's empty slots and
     * then once per lap of 10 while successes take the cursor; with the
     * clean rule (an rseq area: not under valgrind), only until the ring
     * holds its 10 successes and is marked clean, the lap that looks at it
     * once more included. */
    if (f.clean != NULL) {
        CHECK(success_calls == 0 && landed_calls >= 10 && landed_calls <= 30);
    } else {
        CHECK(success_calls == 0 && landed_calls >= 100 && landed_calls <= 111);
    }
#endif
    CHECK(nb_success_fast(b, &f, &p) == NB_PERMIT_SPENT);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK);
    CHECK(m.calls == 1000 && m.successes == 1000 && m.window_calls == 10);
    /* The thread's cursor was folded at each lap's end. */
    CHECK((*(uint64_t *)((char *)f.cursors + (stripe & f.stripe_mask) * f.cursor_stride) & f.position_mask) <= f.ring);

    /* Every other case: the library's answer. */
    CHECK(nb_acquire_fast(b, &f, &p) == NB_OK);
    CHECK(nb_breaker_fast_path(other, &fo, sizeof fo) == NB_OK);
    CHECK(nb_success_fast(other, &fo, &p) == NB_FOREIGN_PERMIT);
    CHECK(nb_success_fast(b, &f, NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_success_fast(NULL, &f, &p) == NB_NULL_ARGUMENT);
    CHECK(nb_success_fast(b, NULL, &p) == NB_OK && nb_success_fast(b, &f, &p) == NB_PERMIT_SPENT);
    CHECK(nb_acquire_fast(b, &f, &p) == NB_OK);
    q = p;
    CHECK(nb_success_landed(b, &q, f.stripe_mask + 1, 0) == NB_INVALID_ARGUMENT);
    CHECK(memcmp(&p, &q, sizeof p) == 0); /* refused: left as it was */
    CHECK(nb_success_landed(NULL, &q, 0, 0) == NB_NULL_ARGUMENT);
    CHECK(nb_success(b, &p) == NB_OK);
    /* The clean rule: once marked, successes move no cursor. */
    if (f.clean != NULL) {
        nb_permit r;
        uint64_t *cursor = (uint64_t *)((char *)f.cursors + (stripe & f.stripe_mask) * f.cursor_stride);
        uint64_t before = __atomic_load_n(cursor, __ATOMIC_RELAXED);
        CHECK(*f.clean == ((p.opaque[1] << f.slot_shift) | f.slot_success));
        for (i = 0; i < 100; i++) {
            CHECK(nb_acquire_fast(b, &f, &r) == NB_OK && nb_success_fast(b, &f, &r) == NB_OK);
        }
        CHECK(__atomic_load_n(cursor, __ATOMIC_RELAXED) - before < 5); /* a few preempted sequences at most */
        CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.calls == 1102 && m.successes == 1102);
        /* A failure takes the mark down. */
        CHECK(nb_acquire_fast(b, &f, &r) == NB_OK && nb_record_fast(b, &f, &r, NB_FAILURE) == NB_OK);
        CHECK(*f.clean == 0);
        CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.window_failures == 1 && m.calls == 1103);
        for (i = 0; i < 10; i++) {
            CHECK(nb_acquire_fast(b, &f, &r) == NB_OK && nb_success_fast(b, &f, &r) == NB_OK);
        }
        CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.window_failures == 0 && m.calls == 1113);
    }
    /* An older library fills only the permit rule and zeroes the rest. */
    fo = f;
    memset((char *)&fo + offsetof(nb_fast_path, cursors), 0, sizeof fo - offsetof(nb_fast_path, cursors));
    CHECK(nb_acquire_fast(b, &fo, &p) == NB_OK && nb_success_fast(b, &fo, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.calls == (f.clean != NULL ? 1114 : 1003));

    /* Five failures, then successes by the rule: the fifth fills the
     * window at 50% failures, is judged, and trips it. */
    CHECK(nb_breaker_reset(b) == NB_OK);
    for (i = 0; i < 5; i++) {
        CHECK(nb_acquire_fast(b, &f, &p) == NB_OK && nb_record_fast(b, &f, &p, NB_FAILURE) == NB_OK);
    }
    for (i = 0; i < 5; i++) {
        CHECK(nb_breaker_state(b) == NB_STATE_CLOSED);
        CHECK(nb_acquire_fast(b, &f, &p) == NB_OK && nb_success_fast(b, &f, &p) == NB_OK);
    }
    CHECK(nb_breaker_state(b) == NB_STATE_OPEN);
    /* Open: a permit from before the trip is stale, spent and dropped. */
    CHECK(nb_success_fast(b, &f, &q) == NB_OK);
    nb_breaker_free(b);

    /* A time window has no success rule: the library records. */
    c.window_kind = NB_WINDOW_TIME;
    c.window_length_ns = 1000000000;
    CHECK(nb_breaker_new(&c, &b) == NB_OK);
    CHECK(nb_breaker_fast_path(b, &f, sizeof f) == NB_OK && f.cursors == NULL);
    CHECK(nb_acquire_fast(b, &f, &p) == NB_OK && nb_success_fast(b, &f, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.calls == 1 && m.successes == 1);
    nb_breaker_free(b);
    nb_breaker_free(other);
}

int main(void) {
    strings();
    config();
    lifecycle_and_errors();
    transitions();
    permit_used_once();
    fast_path();
    fast_success();
    fail_open();
    reconfigure();
    return report();
}
