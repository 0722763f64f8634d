/* Shared breakers (nb_shared_open): the API, then 8 processes through an
 * outage, 2 of them killed with SIGKILL. `test_shared api` runs the API
 * part only (valgrind runs that: it does not follow forks). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "nanobreaker.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256]; /* a fresh directory under $TMPDIR or /tmp */
static char paths[8][320];

static const char *file(int k, const char *name) {
    snprintf(paths[k], sizeof paths[k], "%s/%s", dir, name);
    return paths[k];
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
static void sleep_us(long us) { /* under a second */
    struct timespec ts = {0, 0};
    ts.tv_nsec = us * 1000L;
    nanosleep(&ts, NULL);
}

/* The watcher thread goes (within its 10 ms period) with the last shared
 * handle: this process is back to one thread. */
static int watcher_gone(void) {
    int i, n = 0;
    for (i = 0; i < 200 && n != 1; i++) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        for (n = 0; d != NULL && (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
        if (d != NULL) closedir(d);
        if (n != 1) sleep_us(10000);
    }
    return n == 1;
}

static nb_config config(int processes) {
    nb_config c;
    nb_config_default(&c, sizeof c);
    c.minimum_calls = processes ? 10 : 4;
    c.window_size = processes ? 20 : 10;
    c.open_wait_ns = processes ? 50000000ULL : 2000000000ULL; /* 50 ms; or open while the API part looks */
    c.max_open_wait_ns = processes ? 200000000ULL : c.open_wait_ns;
    c.half_open_max_wait_ns = 300000000ULL; /* a killed child's probe comes back */
    c.jitter = 0.0;
    c.half_open_permits = 2;
    c.stripes = 4;
    return c;
}

struct seen {
    int count, freed;
    uint32_t to, reason;
};
static void on_transition(const nb_transition *t, void *userdata) {
    struct seen *s = userdata;
    s->to = t->to;
    s->reason = t->reason;
    __atomic_add_fetch(&s->count, 1, __ATOMIC_SEQ_CST);
}
static void on_free(void *userdata) { __atomic_add_fetch(&((struct seen *)userdata)->freed, 1, __ATOMIC_SEQ_CST); }

/* nb_shared_open must answer `expect`, leave *out alone and (if `err`)
 * set errno to `err`. */
static int refused(const char *path, const nb_config *c, uint32_t mode, uint32_t flags, nb_result expect,
                   int err) {
    nb_breaker *b = (nb_breaker *)&b;
    nb_result r = (errno = 0, nb_shared_open(path, c, mode, flags, &b));
    if (r == expect && b == (nb_breaker *)&b && (err == 0 || errno == err)) return 1;
    fprintf(stderr, "%s: %s (errno %d), not %s (errno %d)\n", path, nb_result_str(r), errno, nb_result_str(expect),
            err);
    return 0;
}

static uint32_t mode_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint32_t)(st.st_mode & 07777) : 0xFFFFFFFFu;
}

static void two_handles_are_one_breaker(void) {
    nb_config c = config(0), other = config(0), read;
    nb_breaker *a = NULL, *b = NULL, *adopted = NULL;
    nb_permit p;
    nb_metrics m;
    struct seen seen = {0, 0, 0, 0};
    const char *path = file(0, "one");
    int i;

    CHECK(nb_shared_open(path, &c, 0, 0, &a) == NB_OK && a != NULL);
    CHECK(nb_shared_open(path, &c, 0, 0, &b) == NB_OK && b != NULL && b != a);
    CHECK(nb_breaker_on_transition(b, on_transition, &seen, on_free) == NB_OK);
    for (i = 0; i < 4; i++) {
        CHECK(nb_acquire(a, &p) == NB_OK && nb_failure(a, &p) == NB_OK);
    }
    CHECK(nb_breaker_state(a) == NB_STATE_OPEN && nb_breaker_state(b) == NB_STATE_OPEN);
    CHECK(nb_acquire(b, &p) == NB_REJECTED);
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK);
    CHECK(m.calls == 4 && m.failures == 4 && m.rejected == 1 && m.opens == 1);
    CHECK(m.transitions_by_reason[NB_REASON_FAILURE_RATE] == 1);

    /* b's listener hears what a did, from the region. */
    CHECK(nb_shared_sync(b) == NB_OK);
    CHECK(seen.count == 1 && seen.to == NB_STATE_OPEN && seen.reason == NB_REASON_FAILURE_RATE);
    CHECK(nb_breaker_transition_to(a, NB_STATE_FORCED_OPEN) == NB_OK);
    CHECK(nb_shared_sync(b) == NB_OK);
    CHECK(seen.count == 2 && seen.to == NB_STATE_FORCED_OPEN && seen.reason == NB_REASON_MANUAL);
    CHECK(nb_breaker_reset(b) == NB_OK && nb_breaker_state(a) == NB_STATE_CLOSED);

    /* A reconfiguration through a reaches b. */
    other.failure_rate_threshold = 0.25;
    CHECK(nb_breaker_reconfigure(a, &other) == NB_OK && nb_shared_sync(b) == NB_OK);
    CHECK(nb_breaker_config(b, &read, sizeof read) == NB_OK && read.failure_rate_threshold == 0.25);

    /* The region's config wins: another is refused, unless adopted
     * (stripes are the region's, not compared). */
    CHECK(refused(path, &c, 0, 0, NB_CONFIG_MISMATCH, 0));
    CHECK(nb_shared_open(path, &c, 0, NB_SHARED_ADOPT, &adopted) == NB_OK);
    CHECK(nb_breaker_config(adopted, &read, sizeof read) == NB_OK && read.failure_rate_threshold == 0.25);
    nb_breaker_free(adopted);
    other.stripes = 16;
    CHECK(nb_shared_open(path, &other, 0, 0, &adopted) == NB_OK && nb_breaker_state(adopted) == NB_STATE_CLOSED);
    nb_breaker_free(adopted);
    /* Or replaced: the config given becomes the region's, and reaches b. */
    CHECK(nb_shared_open(path, &c, 0, NB_SHARED_REPLACE, &adopted) == NB_OK);
    CHECK(nb_shared_sync(b) == NB_OK);
    CHECK(nb_breaker_config(b, &read, sizeof read) == NB_OK && read.failure_rate_threshold == c.failure_rate_threshold);
    nb_breaker_free(adopted);
    nb_breaker_free(a);
    nb_breaker_free(b);
    /* The watcher thread may hold the last reference a moment. */
    for (i = 0; i < 100 && __atomic_load_n(&seen.freed, __ATOMIC_SEQ_CST) == 0; i++) sleep_us(10000);
    CHECK(seen.freed == 1 && seen.count == 3);
    CHECK(unlink(path) == 0);
}

static void names_flags_modes_and_files(void) {
    nb_config c = config(0), bad = config(0);
    nb_breaker *b = NULL;
    char name[64], shm[128], long_name[202];
    const char *bad_names[5] = {"", "no spaces", "caf\xc3\xa9", "not utf-8 \xff", long_name};
    const char *got = NULL;
    size_t len = 0;
    FILE *f;
    mode_t old;
    int i;

    /* A bare name lives in /dev/shm and is the breaker's name. */
    snprintf(name, sizeof name, "nb-test-shared-%d", (int)getpid());
    snprintf(shm, sizeof shm, "/dev/shm/nanobreaker-v4-%s", name);
    CHECK(nb_shared_open(name, &c, 0, 0, &b) == NB_OK && mode_of(shm) == 0600);
    CHECK(nb_breaker_name(b, &got, &len) == NB_OK && len == strlen(name) && memcmp(got, name, len) == 0);
    nb_breaker_free(b);
    CHECK(unlink(shm) == 0);

    /* Bad arguments. */
    CHECK(refused(NULL, &c, 0, 0, NB_NULL_ARGUMENT, 0) && refused(name, NULL, 0, 0, NB_NULL_ARGUMENT, 0));
    CHECK(nb_shared_open(name, &c, 0, 0, NULL) == NB_NULL_ARGUMENT);
    memset(long_name, 'x', 201); /* one byte too many */
    long_name[201] = '\0';
    for (i = 0; i < 5; i++) CHECK(refused(bad_names[i], &c, 0, 0, NB_INVALID_ARGUMENT, 0));
    CHECK(refused(file(1, "flags"), &c, 0, 4, NB_INVALID_ARGUMENT, 0));
    CHECK(refused(paths[1], &c, 0, NB_SHARED_ADOPT | 0x80000000u, NB_INVALID_ARGUMENT, 0));
    CHECK(refused(paths[1], &c, 010000, 0, NB_INVALID_ARGUMENT, 0)); /* a mode over 07777 */
    bad.jitter = 1.0;
    CHECK(refused(paths[1], &bad, 0, 0, NB_INVALID_CONFIG, 0));
    CHECK(access(paths[1], F_OK) != 0); /* nothing made */

    /* The mode asked for, whatever the umask; only when creating. */
    old = umask(0077);
    CHECK(nb_shared_open(file(2, "mode640"), &c, 0640, 0, &b) == NB_OK && mode_of(paths[2]) == 0640);
    nb_breaker_free(b);
    umask(0);
    CHECK(nb_shared_open(paths[2], &c, 0666, 0, &b) == NB_OK && mode_of(paths[2]) == 0640);
    nb_breaker_free(b);
    CHECK(nb_shared_open(file(3, "mode0"), &c, 0, 0, &b) == NB_OK && mode_of(paths[3]) == 0600);
    nb_breaker_free(b);
    umask(old);

    /* Failed system calls: errno says why. A symlink is not followed,
     * dangling or not, and its target is not made. */
    CHECK(symlink(file(4, "target"), file(5, "dangling")) == 0);
    CHECK(refused(paths[5], &c, 0, 0, NB_SHARED_IO, ELOOP) && access(paths[4], F_OK) != 0);
    CHECK(symlink(paths[2], file(6, "link")) == 0);
    CHECK(refused(paths[6], &c, 0, NB_SHARED_ADOPT, NB_SHARED_IO, ELOOP));
    CHECK(refused(file(4, "no-such-dir/x"), &c, 0, 0, NB_SHARED_IO, ENOENT));
    CHECK(refused(dir, &c, 0, 0, NB_SHARED_IO, EISDIR));

    /* Files that are no region (shorter than a header; layout version 0;
     * a bad magic; a FIFO). Zeros are a region whose creator died before
     * writing its header: made again. */
    CHECK((f = fopen(file(7, "text"), "wb")) != NULL && fputs("nanobrk1", f) >= 0 && fclose(f) == 0);
    CHECK(refused(paths[7], &c, 0, 0, NB_SHARED_CORRUPT, 0) && truncate(paths[7], 1 << 16) == 0);
    CHECK(refused(paths[7], &c, 0, NB_SHARED_ADOPT, NB_SHARED_CORRUPT, 0));
    CHECK((f = fopen(paths[7], "r+b")) != NULL && fputs("nanobrk2", f) >= 0 && fclose(f) == 0);
    CHECK(refused(paths[7], &c, 0, NB_SHARED_ADOPT, NB_SHARED_CORRUPT, 0));
    CHECK(mkfifo(file(4, "fifo"), 0600) == 0 && refused(paths[4], &c, 0, 0, NB_SHARED_CORRUPT, 0));
    CHECK((f = fopen(file(1, "zeros"), "wb")) != NULL && fclose(f) == 0 && truncate(paths[1], 1 << 16) == 0);
    CHECK(nb_shared_open(paths[1], &c, 0, 0, &b) == NB_OK && nb_breaker_state(b) == NB_STATE_CLOSED);
    nb_breaker_free(b);
    for (i = 1; i < 8; i++) CHECK(unlink(paths[i]) == 0);
}

/* --- Processes: healthy, outage (calls fail), recovery; in ms from start. */

#define CHILDREN 8
#define OUTAGE_MS 500
#define RECOVERY_MS 1700
#define END_MS 2900
#define KILL_AT_MS 1000 /* children 2 and 5 get SIGKILL */

/* Each child's books, in an anonymous shared mapping, written only by it. */
struct books {
    volatile uint64_t attempts, admitted, rejected, recorded, probes;
};

static int phase(uint64_t start) {
    uint64_t t = now_ms() - start;
    return t < OUTAGE_MS ? 0 : t < RECOVERY_MS ? 1 : t < END_MS ? 2 : 3;
}

/* A child opens the breaker itself and calls until the end; its exit
 * status says whether the library answered as documented. A probe is a
 * call let through in the outage after this child saw the breaker trip. */
static int child(const char *path, struct books *my, uint64_t start) {
    nb_config c = config(1);
    nb_breaker *b = NULL;
    nb_permit p;
    int ph, tripped = 0, bad = 0;
    nb_result r;
    if (nb_shared_open(path, &c, 0, 0, &b) != NB_OK) return 1;
    while (now_ms() < start) sleep_us(1000);
    while ((ph = phase(start)) < 3) {
        my->attempts++;
        r = nb_acquire(b, &p);
        if (r == NB_OK) {
            my->admitted++;
            if (ph == 1 && tripped && phase(start) == 1) my->probes++; /* all of it in the outage */
            sleep_us(200); /* the call */
            bad += nb_record(b, &p, ph == 1 ? NB_FAILURE : NB_SUCCESS) != NB_OK;
            my->recorded++;
        } else {
            bad += r != NB_REJECTED;
            my->rejected++;
            tripped |= ph == 1;
        }
        sleep_us(300);
    }
    nb_breaker_free(b);
    return bad != 0;
}

static void processes_share_one_breaker(void) {
    const char *path = file(0, "procs");
    nb_config c = config(1);
    nb_breaker *b = NULL;
    nb_metrics m;
    nb_permit p;
    struct books *books, sum = {0, 0, 0, 0, 0};
    pid_t pids[CHILDREN];
    uint32_t in_outage;
    uint64_t start, kills = 2, deadline;
    int k, status, closed_calls = 0;

    books = mmap(NULL, CHILDREN * sizeof *books, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(books != MAP_FAILED); /* zeros */
    if (books == MAP_FAILED) return;
    CHECK(nb_shared_open(path, &c, 0, 0, &b) == NB_OK); /* the parent's, before the forks */
    start = now_ms() + 100;
    fflush(NULL);
    for (k = 0; k < CHILDREN; k++) {
        if ((pids[k] = fork()) == 0) _exit(child(path, &books[k], start));
        CHECK(pids[k] > 0);
    }
    while (now_ms() < start + KILL_AT_MS) sleep_us(5000);
    CHECK(kill(pids[2], SIGKILL) == 0 && kill(pids[5], SIGKILL) == 0);
    in_outage = nb_breaker_state(b);
    for (k = 0; k < CHILDREN; k++) {
        CHECK(waitpid(pids[k], &status, 0) == pids[k]);
        if (k == 2 || k == 5) {
            CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d failed (status %#x)\n", k, status);
            CHECK(0);
        }
        sum.attempts += books[k].attempts, sum.admitted += books[k].admitted, sum.rejected += books[k].rejected;
        sum.recorded += books[k].recorded, sum.probes += books[k].probes;
    }
    CHECK(nb_breaker_metrics(b, &m, sizeof m) == NB_OK);
    printf("books: %" PRIu64 " attempts, %" PRIu64 " admitted, %" PRIu64 " rejected, %" PRIu64
           " recorded, %" PRIu64 " probes; region: %" PRIu64 " calls, %" PRIu64 " ignored, %" PRIu64
           " rejected, %" PRIu64 " trials\n",
           sum.attempts, sum.admitted, sum.rejected, sum.recorded, sum.probes, m.calls, m.ignored, m.rejected,
           m.transitions_by_reason[NB_REASON_OPEN_WAIT_ELAPSED]);

    /* The books balance, but for a killed child's last call; the region
     * agrees: each outcome counts once, as a call or ignored (stale). A
     * child may die after the region counted and before its books did. */
    CHECK(sum.attempts >= sum.admitted + sum.rejected && sum.attempts - sum.admitted - sum.rejected <= kills);
    CHECK(sum.admitted >= sum.recorded && sum.admitted - sum.recorded <= kills);
    CHECK(m.successes + m.failures == m.calls);
    CHECK(m.calls + m.ignored >= sum.recorded && m.calls + m.ignored - sum.recorded <= kills);
    CHECK(m.rejected >= sum.rejected && m.rejected - sum.rejected <= kills);
    /* It tripped in the outage; probes stayed within half_open_permits per
     * trial (an nb_permit does not say its trial: bound by the trials). */
    CHECK(in_outage != NB_STATE_CLOSED);
    CHECK(m.transitions_by_reason[NB_REASON_FAILURE_RATE] >= 1 && m.opens >= 2);
    CHECK(m.transitions_by_reason[NB_REASON_PROBES_FAILED] >= 1 && sum.probes >= 1);
    CHECK(sum.probes <= c.half_open_permits * m.transitions_by_reason[NB_REASON_OPEN_WAIT_ELAPSED]);

    /* Recovered: closed, or closes on the next calls (a killed child's
     * probe holds its slot until half_open_max_wait). */
    deadline = now_ms() + 3000;
    while (closed_calls < 5 && now_ms() < deadline) {
        if (nb_acquire(b, &p) == NB_OK) {
            CHECK(nb_success(b, &p) == NB_OK);
            closed_calls += nb_breaker_state(b) == NB_STATE_CLOSED;
        }
        sleep_us(5000);
    }
    CHECK(closed_calls == 5 && nb_breaker_state(b) == NB_STATE_CLOSED);
    nb_breaker_free(b);
    munmap(books, CHILDREN * sizeof *books);
    CHECK(unlink(path) == 0);
}

int main(int argc, char **argv) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/nb-shared-XXXXXX", tmp != NULL && strlen(tmp) < 200 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    two_handles_are_one_breaker();
    names_flags_modes_and_files();
    if (argc < 2 || strcmp(argv[1], "api") != 0) processes_share_one_breaker();
    CHECK(rmdir(dir) == 0); /* every file removed */
    CHECK(watcher_gone());
    return report();
}
