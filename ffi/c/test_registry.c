/* Names, handles, the registry and its Prometheus render, from C. */
#define _POSIX_C_SOURCE 200809L
#include "nanobreaker.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define KEY(s) (s), strlen(s)

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static nb_config tripping_config(double threshold) {
    nb_config c;
    nb_config_default(&c, sizeof c);
    c.minimum_calls = 2;
    c.window_size = 4;
    c.failure_rate_threshold = threshold;
    c.open_wait_ns = 60ULL * 1000000000ULL; /* stays open for the test */
    c.max_open_wait_ns = 60ULL * 1000000000ULL;
    return c;
}

/* The breaker's name, as a NUL-terminated copy in `buf`. */
static const char *name_of(const nb_breaker *b, char *buf, size_t cap) {
    const char *p = NULL;
    size_t n = 0;
    if (nb_breaker_name(b, &p, &n) != NB_OK || n >= cap) return "";
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* Fails calls until the breaker opens (at most two: `tripping_config`
 * trips on them). Whether it opened. */
static int fail_twice(const nb_breaker *b) {
    for (int i = 0; i < 2; i++) {
        nb_permit p;
        if (nb_acquire(b, &p) == NB_OK) nb_record(b, &p, NB_FAILURE);
    }
    return nb_breaker_state(b) == NB_STATE_OPEN;
}

static void named_breakers_and_handles(void) {
    nb_config c;
    nb_config_default(&c, sizeof c);
    nb_breaker *b = NULL, *b2 = NULL;
    char buf[300];

    CHECK(nb_breaker_new_named(&c, "inventory", &b) == NB_OK);
    CHECK_EQ_STR(name_of(b, buf, sizeof buf), "inventory");
    CHECK(nb_breaker_new_named(&c, NULL, &b2) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_new_named(&c, "\xff\xfe", &b2) == NB_INVALID_ARGUMENT);
    char long_name[NB_MAX_NAME_LEN + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK(nb_breaker_new_named(&c, long_name, &b2) == NB_INVALID_ARGUMENT);
    long_name[NB_MAX_NAME_LEN] = '\0';
    CHECK(nb_breaker_new_named(&c, long_name, &b2) == NB_OK);
    nb_breaker_free(b2);

    nb_breaker *anon = NULL;
    CHECK(nb_breaker_new(&c, &anon) == NB_OK);
    const char *p = "junk";
    size_t n = 99;
    CHECK(nb_breaker_name(anon, &p, &n) == NB_OK && n == 0);
    CHECK(nb_breaker_name(NULL, &p, &n) == NB_NULL_ARGUMENT);
    CHECK(nb_breaker_name(anon, NULL, &n) == NB_NULL_ARGUMENT);
    nb_breaker_free(anon);

    /* A clone is a second handle to the same breaker: a permit of one is
     * recorded through the other, and the breaker outlives the first. */
    CHECK(nb_breaker_clone(b, &b2) == NB_OK && b2 == b); /* counted, not distinct */
    CHECK(nb_breaker_clone(NULL, &b2) == NB_NULL_ARGUMENT);
    nb_permit permit;
    CHECK(nb_acquire(b, &permit) == NB_OK);
    nb_breaker_free(b);
    CHECK(nb_record(b2, &permit, NB_SUCCESS) == NB_OK);
    nb_metrics m;
    CHECK(nb_breaker_metrics(b2, &m, sizeof m) == NB_OK && m.successes == 1);
    /* A count window without a slow-call rule times no success. */
    CHECK(m.since_last_success_ns == UINT64_MAX && m.since_last_failure_ns == UINT64_MAX);
    CHECK_EQ_STR(name_of(b2, buf, sizeof buf), "inventory");
    nb_breaker_free(b2);
}

struct log {
    int transitions, freed;
    char last_name[64];
    uint32_t last_to;
};

static void on_registry_transition(const char *name, size_t len, const nb_transition *t, void *ud) {
    struct log *l = ud;
    l->transitions++;
    if (len < sizeof l->last_name) {
        memcpy(l->last_name, name, len);
        l->last_name[len] = '\0';
    }
    l->last_to = t->to;
}

static void on_free(void *ud) { ((struct log *)ud)->freed++; }

struct visit {
    const nb_registry *reg;
    int seen, names_match;
    nb_breaker *kept;
};

/* Checks the name against the breaker's, keeps one handle past the call
 * (a clone), and uses the registry from inside the callback. */
static int count_visit(const nb_breaker *b, const char *name, size_t len, void *ud) {
    struct visit *v = ud;
    const char *own = NULL;
    size_t own_len = 0;
    v->seen++;
    if (nb_breaker_name(b, &own, &own_len) == NB_OK && own_len == len && memcmp(own, name, len) == 0) {
        v->names_match++;
    }
    nb_breaker *again = NULL;
    if (nb_registry_find(v->reg, name, len, &again) == NB_OK) {
        nb_breaker_free(again);
    }
    if (v->kept == NULL) nb_breaker_clone(b, &v->kept);
    return 0;
}

static int stop_at_first(const nb_breaker *b, const char *name, size_t len, void *ud) {
    (void)b;
    (void)name;
    (void)len;
    (*(int *)ud)++;
    return 1;
}

static void builder_errors(void) {
    nb_registry_builder *rb = NULL;
    nb_registry *r = NULL;
    nb_config c = tripping_config(0.5), bad = tripping_config(0.5);
    bad.failure_rate_threshold = 2.0;

    CHECK(nb_registry_builder_new(NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_registry_builder_new(&rb) == NB_OK);
    CHECK(nb_registry_builder_default_config(rb, &bad) == NB_INVALID_CONFIG);
    CHECK_EQ_STR(nb_config_invalid_field(&bad), "failure_rate_threshold");
    CHECK(nb_registry_builder_default_config(NULL, &c) == NB_NULL_ARGUMENT);
    CHECK(nb_registry_builder_default_config(rb, NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_registry_builder_template(rb, "", &c) == NB_INVALID_ARGUMENT);
    CHECK(nb_registry_builder_template(rb, NULL, &c) == NB_NULL_ARGUMENT);
    CHECK(nb_registry_builder_template(rb, "ok.*", &bad) == NB_INVALID_CONFIG);
    CHECK(nb_registry_builder_named(rb, "", &c) == NB_INVALID_ARGUMENT);
    CHECK(nb_registry_builder_on_transition(rb, NULL, NULL, NULL) == NB_NULL_ARGUMENT);
    nb_registry_builder_free(rb); /* unbuilt: freed */
    nb_registry_builder_free(NULL);

    /* A bad setting: the build fails and still consumes the builder. */
    CHECK(nb_registry_builder_new(&rb) == NB_OK);
    CHECK(nb_registry_builder_settings(rb, 0, 0, 65, 0) == NB_OK);
    CHECK(nb_registry_build(rb, &r) == NB_INVALID_ARGUMENT && r == NULL);
    CHECK(nb_registry_build(NULL, &r) == NB_NULL_ARGUMENT);

    /* Its listener's userdata is freed with an unbuilt builder. */
    struct log l = {0};
    CHECK(nb_registry_builder_new(&rb) == NB_OK);
    CHECK(nb_registry_builder_on_transition(rb, on_registry_transition, &l, on_free) == NB_OK);
    nb_registry_builder_free(rb);
    CHECK(l.freed == 1);
}

static void registry(void) {
    nb_registry_builder *rb = NULL;
    nb_registry *r = NULL;
    nb_config strict = tripping_config(0.5), lenient = tripping_config(1.0), visa = tripping_config(0.5);
    visa.minimum_calls = 7;
    struct log l = {0};

    CHECK(nb_registry_builder_new(&rb) == NB_OK);
    CHECK(nb_registry_builder_default_config(rb, &lenient) == NB_OK);
    CHECK(nb_registry_builder_template(rb, "payments.*", &strict) == NB_OK);
    CHECK(nb_registry_builder_named(rb, "payments.visa", &visa) == NB_OK);
    CHECK(nb_registry_builder_settings(rb, 3, 0, 1, 32) == NB_OK);
    CHECK(nb_registry_builder_record_latency(rb, 1) == NB_OK);
    CHECK(nb_registry_builder_record_latency(NULL, 1) == NB_NULL_ARGUMENT);
    CHECK(nb_registry_builder_on_transition(rb, on_registry_transition, &l, on_free) == NB_OK);
    CHECK(nb_registry_build(rb, &r) == NB_OK && r != NULL);

    /* Get-or-create: the same key gives the same breaker (a permit of one
     * handle is recorded through the other), its name is the key, and its
     * config comes from the named override, else a template, else the
     * default. */
    nb_breaker *a = NULL, *a2 = NULL, *visa_b = NULL, *other = NULL;
    nb_config read;
    char buf[64];
    CHECK(nb_registry_get(r, KEY("payments.amex"), &a) == NB_OK);
    CHECK(nb_registry_get(r, KEY("payments.amex"), &a2) == NB_OK);
    nb_permit p;
    CHECK(nb_acquire(a, &p) == NB_OK && nb_record(a2, &p, NB_SUCCESS) == NB_OK);
    CHECK_EQ_STR(name_of(a, buf, sizeof buf), "payments.amex");
    CHECK(nb_breaker_config(a, &read, sizeof read) == NB_OK && read.failure_rate_threshold == 0.5);
    CHECK(nb_registry_get(r, KEY("payments.visa"), &visa_b) == NB_OK);
    CHECK(nb_breaker_config(visa_b, &read, sizeof read) == NB_OK && read.minimum_calls == 7);
    CHECK(nb_registry_get(r, KEY("search"), &other) == NB_OK);
    CHECK(nb_breaker_config(other, &read, sizeof read) == NB_OK && read.failure_rate_threshold == 1.0);
    CHECK(nb_registry_len(r) == 3);
    CHECK(nb_registry_len(NULL) == 0);

    /* Bad keys. */
    nb_breaker *x = NULL;
    CHECK(nb_registry_get(r, "", 0, &x) == NB_INVALID_ARGUMENT);
    CHECK(nb_registry_get(r, NULL, 0, &x) == NB_INVALID_ARGUMENT); /* empty, whatever the pointer */
    CHECK(nb_registry_get(r, "\xc3\x28", 2, &x) == NB_INVALID_ARGUMENT);
    CHECK(nb_registry_get(r, KEY("a-key-longer-than-thirty-two-bytes!"), &x) == NB_INVALID_ARGUMENT);
    CHECK(nb_registry_get(r, NULL, 3, &x) == NB_NULL_ARGUMENT);
    CHECK(nb_registry_get(r, KEY("k"), NULL) == NB_NULL_ARGUMENT);
    CHECK(nb_registry_get(NULL, KEY("k"), &x) == NB_NULL_ARGUMENT);
    CHECK(x == NULL);

    /* Full: three breakers, each held by a handle, none evictable. */
    CHECK(nb_registry_get(r, KEY("fourth"), &x) == NB_REGISTRY_FULL && x == NULL);

    /* A trip through the registry reaches its listener with the name. */
    CHECK(fail_twice(a));
    CHECK(l.transitions == 1 && strcmp(l.last_name, "payments.amex") == 0 && l.last_to == NB_STATE_OPEN);
    nb_metrics m;
    CHECK(nb_breaker_metrics(a, &m, sizeof m) == NB_OK);
    /* One success and one failure: a rate of 0.5 trips. */
    CHECK(m.opens == 1 && m.transitions_by_reason[NB_REASON_FAILURE_RATE] == 1 && m.failures == 1);
    CHECK(m.since_last_failure_ns < 60ULL * 1000000000ULL && m.probes_succeeded == 0 && m.timeouts == 0);

    /* Find never makes; remove takes a key out, its handles stay valid,
     * and a later get makes a new breaker (which refuses the old one's
     * permits). */
    CHECK(nb_registry_find(r, KEY("nope"), &x) == NB_NOT_FOUND && x == NULL);
    CHECK(nb_registry_find(r, KEY("search"), &x) == NB_OK && x != NULL);
    nb_breaker_free(x);
    CHECK(nb_registry_remove(r, KEY("search")) == NB_OK);
    CHECK(nb_registry_remove(r, KEY("search")) == NB_NOT_FOUND);
    CHECK(nb_registry_len(r) == 2);
    CHECK(nb_acquire(other, &p) == NB_OK);
    CHECK(nb_registry_get(r, KEY("search"), &x) == NB_OK);
    CHECK(nb_record(x, &p, NB_SUCCESS) == NB_FOREIGN_PERMIT);
    CHECK(nb_record(other, &p, NB_SUCCESS) == NB_OK);
    nb_breaker_free(x);
    nb_breaker_free(other);

    /* for_each sees every breaker; a non-zero return stops it. */
    struct visit v = {r, 0, 0, NULL};
    CHECK(nb_registry_for_each(r, count_visit, &v) == NB_OK && v.seen == 3 && v.names_match == 3);
    CHECK(v.kept != NULL && nb_breaker_state(v.kept) != NB_STATE_UNKNOWN);
    nb_breaker_free(v.kept);
    int seen = 0;
    CHECK(nb_registry_for_each(r, stop_at_first, &seen) == NB_OK && seen == 1);
    CHECK(nb_registry_for_each(r, NULL, &seen) == NB_NULL_ARGUMENT);

    /* The Prometheus text of every breaker. */
    char *text = NULL;
    size_t len = 0;
    CHECK(nb_registry_render_prometheus(r, &text, &len) == NB_OK && text != NULL);
    CHECK(len == strlen(text));
    CHECK(strstr(text, "nanobreaker_state{name=\"payments.amex\",state=\"open\"} 1\n") != NULL);
    CHECK(strstr(text, "nanobreaker_calls_total{name=\"payments.amex\",outcome=\"failure\"} 1\n") != NULL);
    CHECK(strstr(text, "nanobreaker_opens_total{name=\"payments.amex\"} 1\n") != NULL);
    CHECK(strstr(text, "name=\"payments.visa\"") != NULL);
    CHECK(strstr(text, "nanobreaker_call_duration_seconds_count{name=\"payments.amex\"} 2\n") != NULL);
    nb_string_free(text);
    nb_string_free(NULL);
    CHECK(nb_registry_render_prometheus(r, NULL, &len) == NB_NULL_ARGUMENT);

    /* The registry goes first; the breakers live on in their handles, and
     * the listener's userdata goes with the last of them. */
    nb_registry_free(r);
    CHECK(l.freed == 0);
    CHECK(nb_breaker_state(a) == NB_STATE_OPEN);
    nb_breaker_free(a);
    nb_breaker_free(a2);
    CHECK(l.freed == 0);
    nb_breaker_free(visa_b);
    CHECK(l.freed == 1);
    nb_registry_free(NULL);
}

static void eviction(void) {
    nb_registry_builder *rb = NULL;
    nb_registry *r = NULL;
    CHECK(nb_registry_builder_new(&rb) == NB_OK);
    CHECK(nb_registry_builder_settings(rb, 0, 200 * 1000000ULL /* 200 ms */, 1, 0) == NB_OK);
    CHECK(nb_registry_build(rb, &r) == NB_OK);

    nb_breaker *held = NULL, *open = NULL, *idle = NULL;
    CHECK(nb_registry_get(r, KEY("held"), &held) == NB_OK);
    CHECK(nb_registry_get(r, KEY("open"), &open) == NB_OK);
    CHECK(nb_breaker_transition_to(open, NB_STATE_OPEN) == NB_OK);
    nb_breaker_free(open);
    CHECK(nb_registry_get(r, KEY("idle"), &idle) == NB_OK);
    nb_breaker_free(idle);
    CHECK(nb_registry_evict_idle(r) == 0); /* nothing idle for 200 ms yet */
    sleep_ms(300);
    /* Only the closed breaker nobody holds goes. */
    CHECK(nb_registry_evict_idle(r) == 1);
    CHECK(nb_registry_find(r, KEY("idle"), &idle) == NB_NOT_FOUND);
    CHECK(nb_registry_find(r, KEY("open"), &open) == NB_OK);
    nb_breaker_free(open);
    CHECK(nb_registry_len(r) == 2);
    CHECK(nb_registry_evict_idle(NULL) == 0);
    nb_breaker_free(held);
    nb_registry_free(r);
}

int main(void) {
    named_breakers_and_handles();
    builder_errors();
    registry();
    eviction();
    return report();
}
