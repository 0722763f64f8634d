/* A region fuzz: a fresh region file, damaged in one of several ways, then
 * opened. nb_shared_open must answer NB_OK or a documented error, never
 * crash or hang; a breaker it opens over damaged words must acquire,
 * record, report, force open and reset (to Closed) like any other.
 *
 *   fuzz_shared [rounds [seed]]      (default 300 rounds)
 *
 * Clean under ASAN+UBSAN and valgrind; a round that hangs fails the run. */
#define _POSIX_C_SOURCE 200809L
#include "nanobreaker.h"
#include "check.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORDS_AT 640 /* the breaker's words start here; the header is before */
#define HEADER_WORDS 75 /* u64s of the header: magic .. the config buffers */

static unsigned long long first_seed = 0x5eedf00dULL;
static uint64_t seed;
static uint64_t next(void) { /* xorshift64 */
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

enum damage { ANYWHERE, WORDS, HEADER_WORD, TRUNCATED, GROWN, RANDOM_FILE, KINDS };
static const char *kind_names[KINDS] = {"bytes anywhere", "words after the header", "one header word",
                                        "truncated", "grown", "random file"};
/* Per damage kind: NB_OK, NB_SHARED_CORRUPT, NB_CONFIG_MISMATCH, NB_SHARED_IO. */
static int tally[KINDS][4];

static char dir[256], path[320], fresh[320];
static char hung[96];
static size_t hung_len;
static void on_alarm(int sig) {
    (void)sig;
    if (write(2, hung, hung_len) < 0) _exit(2);
    _exit(1);
}

static nb_config config_for(int round) {
    nb_config c;
    nb_config_default(&c, sizeof c);
    c.minimum_calls = 5;
    c.window_size = round % 2 == 0 ? 20 : 10;
    if (round % 2 == 1) {
        c.window_kind = NB_WINDOW_TIME;
        c.window_length_ns = 1000000000ULL; /* 1 s in 10 buckets */
    }
    c.open_wait_ns = 1000000; /* 1 ms: the run sees trials */
    c.max_open_wait_ns = 4000000;
    c.half_open_permits = 2;
    c.half_open_max_wait_ns = 50000000;
    c.stripes = 1u << (round % 4);
    return c;
}

/* A fresh region's bytes: made by nb_shared_open, read back, removed. */
static unsigned char *fresh_region(const nb_config *c, size_t *len) {
    nb_breaker *b = NULL;
    unsigned char *bytes = NULL;
    FILE *f;
    long n;
    unlink(fresh);
    CHECK(nb_shared_open(fresh, c, 0, 0, &b) == NB_OK);
    nb_breaker_free(b);
    f = fopen(fresh, "rb");
    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > WORDS_AT && fseek(f, 0, SEEK_SET) == 0) {
        bytes = malloc((size_t)n);
        if (bytes != NULL && fread(bytes, 1, (size_t)n, f) == (size_t)n) *len = (size_t)n;
        else free(bytes), bytes = NULL;
    }
    if (f != NULL) fclose(f);
    CHECK(bytes != NULL && unlink(fresh) == 0);
    return bytes;
}

/* Writes the damaged bytes to `path` as a new file: the last round's file,
 * which its mapping (the watcher thread may hold it a moment after the
 * free) still names, is unlinked, never changed under it. */
static void write_region(const unsigned char *bytes, size_t len) {
    int fd;
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && (len == 0 || write(fd, bytes, len) == (ssize_t)len) && close(fd) == 0);
}

static void random_bytes(unsigned char *p, size_t n) {
    while (n-- > 0) *p++ = (unsigned char)next();
}

/* Damages a region of `*len` bytes (reallocated when it grows). */
static unsigned char *damage(unsigned char *r, size_t *len, enum damage kind) {
    size_t i, n, at, old = *len;
    uint64_t v;
    switch (kind) {
    case ANYWHERE:
        for (i = 0, n = 1 + next() % 16; i < n; i++) r[next() % old] = (unsigned char)next();
        break;
    case WORDS: /* sparse, or every byte */
        if (next() % 4 == 0) {
            random_bytes(r + WORDS_AT, old - WORDS_AT);
        } else {
            for (i = 0, n = 1 + next() % 64; i < n; i++) {
                at = WORDS_AT + next() % (old - WORDS_AT - 8);
                v = next();
                memcpy(r + at, &v, 8);
            }
        }
        break;
    case HEADER_WORD: /* any but the magic: a random value, or one off */
        at = 8 * (1 + next() % (HEADER_WORDS - 1));
        memcpy(&v, r + at, 8);
        v = next() % 2 == 0 ? next() : next() % 2 == 0 ? v + 1 : v - 1;
        memcpy(r + at, &v, 8);
        break;
    case TRUNCATED:
        *len = next() % old;
        break;
    case GROWN:
    case RANDOM_FILE:
        *len = kind == GROWN ? old + 1 + next() % 8192 : 1 + next() % (2 * old);
        r = realloc(r, *len);
        if (r == NULL) abort();
        if (kind == RANDOM_FILE) random_bytes(r, *len);
        else if (next() % 2 == 0) random_bytes(r + old, *len - old);
        else memset(r + old, 0, *len - old);
        break;
    case KINDS:
        break;
    }
    return r;
}

/* A breaker over whatever words: it must work as documented. */
static void exercise(nb_breaker *b) {
    nb_permit p;
    nb_metrics m;
    nb_result r;
    struct timespec two_ms = {0, 2000000L};
    int i;
    for (i = 0; i < 300; i++) {
        if (i == 150) nanosleep(&two_ms, NULL); /* past the open wait: a trial */
        r = nb_acquire(b, &p);
        if (r == NB_OK) {
            CHECK(nb_record(b, &p, i % 3 == 0 ? NB_FAILURE : i % 7 == 0 ? NB_IGNORED : NB_SUCCESS) == NB_OK);
        } else {
            CHECK(r == NB_REJECTED);
        }
        if (i % 50 == 0) {
            CHECK(nb_breaker_state(b) <= NB_STATE_FORCED_OPEN);
            CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.state <= NB_STATE_FORCED_OPEN);
        }
    }
    CHECK(nb_shared_sync(b) == NB_OK);
    CHECK(nb_breaker_transition_to(b, NB_STATE_FORCED_OPEN) == NB_OK);
    CHECK(nb_breaker_state(b) == NB_STATE_FORCED_OPEN && nb_acquire(b, &p) == NB_REJECTED);
    CHECK(nb_breaker_reset(b) == NB_OK);
    CHECK(nb_breaker_state(b) == NB_STATE_CLOSED);
    CHECK(nb_acquire(b, &p) == NB_OK && nb_success(b, &p) == NB_OK);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK && m.state == NB_STATE_CLOSED);
}

static void round_of(int round) {
    nb_config c = config_for(round);
    nb_breaker *b = NULL;
    enum damage kind = (enum damage)(next() % KINDS);
    uint32_t flags = next() % 2 == 0 ? NB_SHARED_ADOPT : 0;
    size_t len = 0;
    unsigned char *r = fresh_region(&c, &len);
    nb_result res;
    int failed_before = failed;
    if (r == NULL) return;
    r = damage(r, &len, kind);
    write_region(r, len);
    free(r);
    res = nb_shared_open(path, &c, 0, flags, &b);
    switch (res) {
    case NB_OK: tally[kind][0]++; break;
    case NB_SHARED_CORRUPT: tally[kind][1]++; break;
    case NB_CONFIG_MISMATCH: tally[kind][2]++; break;
    case NB_SHARED_IO: tally[kind][3]++; break;
    default: break;
    }
    if (res == NB_SHARED_IO) perror("nb_shared_open");
    CHECK(res == NB_OK || res == NB_SHARED_CORRUPT || res == NB_SHARED_IO ||
          (res == NB_CONFIG_MISMATCH && flags == 0));
    /* What must follow from the damage: a valid header opens; an empty
     * file is made again; a size other than the shape's is refused. */
    if (kind == WORDS || len == 0) CHECK(res == NB_OK);
    else if (kind == GROWN || kind == TRUNCATED || kind == RANDOM_FILE) CHECK(res == NB_SHARED_CORRUPT);
    if (res == NB_OK) {
        exercise(b);
        nb_breaker_free(b);
    }
    if (failed > failed_before) {
        fprintf(stderr, "round %d failed: %s, flags %u (fuzz_shared %d %#llx reproduces it)\n", round,
                kind_names[kind], (unsigned)flags, round + 1, first_seed);
    }
}

/* The watcher thread goes (within its 10 ms period) with the last shared
 * handle: this process is back to one thread. */
static int watcher_gone(void) {
    int i, n = 0;
    struct timespec ten_ms = {0, 10000000L};
    for (i = 0; i < 200 && n != 1; i++) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        for (n = 0; d != NULL && (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
        if (d != NULL) closedir(d);
        if (n != 1) nanosleep(&ten_ms, NULL);
    }
    return n == 1;
}

int main(int argc, char **argv) {
    const char *tmp = getenv("TMPDIR");
    int rounds = argc > 1 ? atoi(argv[1]) : 300, round, k;
    if (argc > 2) first_seed = strtoull(argv[2], NULL, 0) | 1;
    seed = first_seed;
    snprintf(dir, sizeof dir, "%s/nb-fuzz-XXXXXX", tmp != NULL && strlen(tmp) < 200 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof path, "%s/region", dir);
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    signal(SIGALRM, on_alarm);
    for (round = 0; round < rounds; round++) {
        hung_len = (size_t)snprintf(hung, sizeof hung, "fuzz_shared: round %d (seed %#llx) hung\n", round,
                                    first_seed);
        alarm(30);
        round_of(round);
    }
    alarm(0);
    for (k = 0; k < KINDS; k++) {
        printf("%-22s ok %3d  corrupt %3d  mismatch %3d  io %d\n", kind_names[k], tally[k][0], tally[k][1],
               tally[k][2], tally[k][3]);
    }
    CHECK(tally[WORDS][0] > 0 || rounds < 20); /* the engine ran over garbage */
    CHECK(unlink(path) == 0 && rmdir(dir) == 0);
    CHECK(watcher_gone());
    return report();
}
