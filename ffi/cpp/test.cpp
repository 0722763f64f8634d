// Tests of the C++ wrapper: RAII, exceptions, call(), listeners, threads,
// fail open, shared breakers (across a fork).
#include <cstdint>

#include "nanobreaker.h"

// Fault injection: what the wrapper's acquire returns instead of asking the
// library, while `fault` is not NB_OK (the library never panics on purpose).
// The wrapper asks it only when the permit rule of nb_fast_path gives no
// permit: the fault tests use breakers with the slow-call rule on, which
// that rule leaves to the library. It counts the calls it gets.
static nb_result fault = NB_OK;
static long library_acquires = 0;
static nb_result acquire_with_faults(const nb_breaker* b, nb_permit* p, uint64_t* retry) {
    library_acquires++;
    return fault != NB_OK ? fault : nb_acquire_ex(b, p, retry);
}
// Built with -Wl,--wrap=nb_success (tests/ffi.rs): counts the successes
// recorded through the library's nb_success (by nb_success_fast's
// fallback) rather than by the success rule.
extern "C" nb_result __real_nb_success(const nb_breaker* b, nb_permit* permit);
static long library_successes = 0;
extern "C" nb_result __wrap_nb_success(const nb_breaker* b, nb_permit* permit) {
    library_successes++;
    return __real_nb_success(b, permit);
}
#define NANOBREAKER_ACQUIRE_EX acquire_with_faults
#include "nanobreaker.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace nb = nanobreaker;

static int passed, failed;
#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) passed++;                                                            \
        else { failed++; std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

template <typename E, typename F>
static bool throws(F f) {
    try {
        f();
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

// No permit or name from a temporary handle (it would dangle): a
// compile-time check.
template <typename T, typename = void>
struct can_acquire : std::false_type {};
template <typename T>
struct can_acquire<T, std::void_t<decltype(std::declval<T>().acquire())>> : std::true_type {};
static_assert(!can_acquire<nb::Breaker>::value, "acquire() on a temporary handle must not compile");
static_assert(can_acquire<nb::Breaker&>::value, "acquire() on a kept handle compiles");

static nb::Config small() {
    return nb::Config().minimum_calls(4).count_window(10).open_wait(20ms).jitter(0).half_open_permits(2);
}

// The nb_result of the nb::Error f throws (NB_OK if none).
template <typename F>
static nb_result error_code(F f) {
    try {
        f();
    } catch (const nb::Error& e) {
        return e.code();
    }
    return NB_OK;
}

// Collects the transitions a listener hears, on whichever thread.
struct Heard {
    std::mutex mu;
    std::vector<nb_transition> seen;
    void operator()(const nb_transition& t) {
        std::lock_guard<std::mutex> g(mu);
        seen.push_back(t);
    }
    bool has(uint32_t from, uint32_t to) {
        std::lock_guard<std::mutex> g(mu);
        for (auto& t : seen)
            if (t.from == from && t.to == to) return true;
        return false;
    }
    size_t size() {
        std::lock_guard<std::mutex> g(mu);
        return seen.size();
    }
};

static void trip(const nb::Breaker& b) {
    for (int i = 0; i < 4; i++) {
        try {
            b.call([]() -> int { throw 1; });
        } catch (...) {
        }
    }
}

static void shared_breakers() {
    char tmpl[] = "/tmp/nanobreaker-cpp-XXXXXX";
    const char* made = mkdtemp(tmpl);
    CHECK(made != nullptr);
    if (!made) return;
    const std::string dir = made;
    std::vector<std::string> files;
    auto path = [&](const char* name) {
        files.push_back(dir + "/" + name);
        return files.back();
    };

    // Two handles on one path are one breaker; the listener of the one
    // hears (after sync()) the trip made through the other.
    {
        const std::string p = path("two");
        nb::Breaker a = nb::Breaker::open_shared(p, small());
        nb::Breaker b = nb::Breaker::open_shared(p, small());
        auto heard = std::make_shared<Heard>();
        b.on_transition([heard](const nb_transition& t) { (*heard)(t); });
        trip(a);
        CHECK(a.state() == nb::State::Open && b.state() == nb::State::Open);
        CHECK(!b.try_acquire());
        auto m = b.metrics();
        CHECK(m.failures == 4 && m.rejected == 1 && m.opens == 1);
        b.sync();
        CHECK(heard->size() == 1 && heard->has(NB_STATE_CLOSED, NB_STATE_OPEN));
        b.reset();
        CHECK(a.state() == nb::State::Closed);
        struct stat st;
        CHECK(stat(p.c_str(), &st) == 0 && (st.st_mode & 07777) == 0600);
    }
    // The mode, for a file this call creates.
    {
        const std::string p = path("mode");
        nb::Breaker m = nb::Breaker::open_shared(p, small(), nb::SharedOptions{0640, false});
        struct stat st;
        CHECK(stat(p.c_str(), &st) == 0 && (st.st_mode & 07777) == 0640);
    }
    // A bare name is a file in /dev/shm, and the breaker's name.
    if (access("/dev/shm", W_OK) == 0) {
        const std::string name = "cpp-test-" + std::to_string(getpid());
        {
            nb::Breaker n = nb::Breaker::open_shared(name, small());
            CHECK(n.name() == name && access(("/dev/shm/nanobreaker-v4-" + name).c_str(), F_OK) == 0);
        }
        unlink(("/dev/shm/nanobreaker-v4-" + name).c_str());
        CHECK(error_code([] { nb::Breaker::open_shared("has space", small()); }) == NB_INVALID_ARGUMENT);
        CHECK(error_code([] { nb::Breaker::open_shared(std::string("nul\0", 4), small()); }) == NB_INVALID_ARGUMENT);
    }
    // Another config: NB_CONFIG_MISMATCH, unless adopted; the adopted
    // breaker runs on the region's config.
    {
        const std::string p = path("config");
        nb::Breaker first = nb::Breaker::open_shared(p, small());
        CHECK(error_code([&] { nb::Breaker::open_shared(p, small().minimum_calls(50)); }) == NB_CONFIG_MISMATCH);
        CHECK(throws<nb::ConfigError>([&] { nb::Breaker::open_shared(p, small().half_open_permits(0)); }));
        nb::Breaker adopted = nb::Breaker::open_shared(p, small().minimum_calls(50), nb::SharedOptions{0, true});
        trip(adopted);  // 4 calls: the region's minimum, not 50
        CHECK(adopted.state() == nb::State::Open && first.state() == nb::State::Open);
        // Or replaced: the config given becomes the region's, for every handle.
        first.reset();
        nb::SharedOptions replace;
        replace.replace = true;
        nb::Breaker replaced = nb::Breaker::open_shared(p, small().minimum_calls(50), replace);
        first.sync();
        trip(first);  // 4 failures: below the new minimum of 50
        CHECK(first.state() == nb::State::Closed && replaced.state() == nb::State::Closed);
    }
    // A failed system call: IoError, with errno.
    {
        int err = 0;
        try {
            nb::Breaker::open_shared(dir + "/no-such-dir/region", small());
        } catch (const nb::IoError& e) {
            err = e.code() == NB_SHARED_IO ? e.sys_errno() : -1;
            CHECK(e.error_code() == std::errc::no_such_file_or_directory);
        }
        CHECK(err == ENOENT);
    }
    // A file of random bytes: NB_SHARED_CORRUPT.
    {
        const std::string p = path("garbage");
        {
            std::mt19937_64 rng(7);
            std::ofstream f(p, std::ios::binary);
            for (int i = 0; i < 8192; i++) {
                uint64_t w = rng();
                f.write(reinterpret_cast<const char*>(&w), sizeof w);
            }
        }
        CHECK(error_code([&] { nb::Breaker::open_shared(p, small()); }) == NB_SHARED_CORRUPT);
    }
    // A fork()ed child opens the path after the fork and trips the
    // breaker; the parent sees it open, and its listener hears it.
    {
        const std::string p = path("fork");
        nb::Breaker parent = nb::Breaker::open_shared(p, small());
        auto heard = std::make_shared<Heard>();
        parent.on_transition([heard](const nb_transition& t) { (*heard)(t); });
        std::fflush(nullptr);
        pid_t child = fork();
        if (child == 0) {
            int code = 1;
            try {
                nb::Breaker mine = nb::Breaker::open_shared(p, small());
                trip(mine);
                code = mine.state() == nb::State::Open && mine.metrics().failures == 4 ? 0 : 2;
            } catch (...) {
                code = 3;
            }
            _exit(code);  // no destructors, atexit handlers or leak check of the parent's copy
        }
        CHECK(child > 0);
        int status = 0;
        CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(parent.state() == nb::State::Open && parent.metrics().failures == 4);
        parent.sync();
        CHECK(heard->has(NB_STATE_CLOSED, NB_STATE_OPEN));
    }

    for (auto& f : files) unlink(f.c_str());
    CHECK(rmdir(dir.c_str()) == 0);
}

int main() {
    // Config errors name the field.
    try {
        nb::Breaker b(nb::Config().jitter(1.5));
        CHECK(false);
    } catch (const nb::ConfigError& e) {
        CHECK(e.field() == "jitter" && e.code() == NB_INVALID_CONFIG);
    }

    nb::Breaker b(small());
    std::vector<std::pair<uint32_t, uint32_t>> seen;
    b.on_transition([&](const nb_transition& t) { seen.emplace_back(t.to, t.reason); });

    // call(): value, void, exceptions as failures.
    CHECK(b.call([] { return 7; }) == 7);
    b.call([] {});
    for (int i = 0; i < 4; i++) {
        CHECK(throws<std::runtime_error>([&] { b.call([]() -> int { throw std::runtime_error("down"); }); }));
    }
    CHECK(b.state() == nb::State::Open);
    try {
        b.call([] { return 1; });
        CHECK(false);
    } catch (const nb::Rejected& r) {
        CHECK(r.retry_after() > 0ns && r.retry_after() <= 20ms);
    }
    std::chrono::nanoseconds retry{0};
    CHECK(!b.try_acquire(&retry).has_value() && retry > 0ns);

    // A dropped permit gives its half-open slot back.
    std::this_thread::sleep_for(30ms);
    {
        auto p = b.acquire();
        CHECK(p.pending() && b.state() == nb::State::HalfOpen);
    }
    CHECK(b.metrics().half_open_in_flight == 0);
    {
        auto p1 = b.acquire();
        auto p2 = std::move(p1);
        CHECK(!p1.pending() && p2.pending());
        p2.success();
        CHECK(!p2.pending());
        b.acquire().success();
    }
    CHECK(b.state() == nb::State::Closed);
    CHECK(seen.size() == 3 && seen[2].first == NB_STATE_CLOSED && seen[2].second == NB_REASON_PROBES_SUCCEEDED);

    // A permit counts once.
    {
        nb_metrics before = b.metrics();
        auto p = b.acquire();
        p.success();
        p.success();
        p.failure();
        nb_metrics after = b.metrics();
        CHECK(!p.pending() && after.calls == before.calls + 1 && after.successes == before.successes + 1);
        CHECK(after.failures == before.failures);
    }

    // Manual transitions, reconfigure.
    b.transition_to(nb::State::ForcedOpen);
    CHECK(!b.try_acquire());
    b.reset();
    CHECK(b.state() == nb::State::Closed);
    CHECK(throws<nb::ConfigError>([&] { b.reconfigure(small().count_window(11)); }));
    CHECK(throws<nb::ConfigError>([&] { b.reconfigure(small().half_open_permits(0)); }));
    b.reconfigure(small().failure_rate_threshold(1.0));

    // Listeners that throw are caught and counted, never unwind into C.
    {
        nb::Breaker l(small());
        int after = 0;
        l.on_transition([](const nb_transition&) { throw std::runtime_error("listener bug"); });
        l.on_transition([&](const nb_transition&) { after++; });
        l.transition_to(nb::State::ForcedOpen);
        l.reset();
        CHECK(l.listener_exceptions() == 2 && after == 2 && l.state() == nb::State::Closed);
    }

    // In a healthy Closed breaker with a count window, call() asks the
    // library for no permit and records successes without nb_success
    // (nb_fast_permit, nb_success_fast: the library only at a lap's end);
    // failures and every other state go through it. A permit survives
    // moving its Breaker.
    {
        nb::Breaker fast(small().stripes(4));
        long acquires = library_acquires, successes = library_successes;
        for (int i = 0; i < 1000; i++) CHECK(fast.call([i] { return i; }) == i);
        CHECK(library_acquires == acquires && library_successes == successes);
        CHECK(fast.metrics().calls == 1000 && fast.metrics().successes == 1000);
        auto p = fast.acquire();
        std::optional<nb::Breaker> source(std::move(fast));
        nb::Breaker moved = std::move(*source);
        source.reset();  // the moved-from Breaker is gone: the permit must not point into it
        p.success();
        CHECK(moved.metrics().calls == 1001);
        moved.transition_to(nb::State::ForcedOpen);
        CHECK(!moved.try_acquire().has_value() && library_acquires == acquires + 1);
    }

    // The library failing (NB_PANIC): fail open by default, counted...
    static_assert(noexcept(std::declval<nb::Permit&>().success()), "recording never throws");
    static_assert(noexcept(std::declval<nb::Breaker&>().failed_open()), "counters never throw");
    {
        nb::Breaker open(small().slow_call(std::chrono::seconds(10), 1.0));
        fault = NB_PANIC;
        auto p = open.try_acquire();
        CHECK(p.has_value() && p->failed_open() && !p->pending());
        p->success();  // unrecorded, harmless
        CHECK(open.call([] { return 5; }) == 5);
        CHECK(throws<std::logic_error>([&] { open.call([]() -> int { throw std::logic_error("x"); }); }));
        open.acquire().failure();
        fault = NB_OK;
        CHECK(open.failed_open() == 4 && open.metrics().calls == 0);
        CHECK(open.call([] { return 6; }) == 6 && open.failed_open() == 4 && open.metrics().calls == 1);
    }
    // ... or fail closed when asked.
    {
        nb::Breaker closed(small().slow_call(std::chrono::seconds(10), 1.0), nb::FailMode::Closed);
        fault = NB_PANIC;
        bool threw = false;
        try {
            closed.call([] { return 1; });
        } catch (const nb::Error& e) {
            threw = e.code() == NB_PANIC;
        }
        CHECK(threw && closed.failed_open() == 0);
        CHECK(throws<nb::Error>([&] { closed.try_acquire(); }));
        fault = NB_OK;
    }
    // Other errors are usage errors, never failed open.
    {
        nb::Breaker gone(small());
        nb::Breaker keeper = std::move(gone);
        CHECK(throws<nb::Error>([&] { gone.try_acquire(); }) && gone.failed_open() == 0);
    }

    // An exception in the protected call: the permit is recorded as a
    // failure, once, and the exception propagates; a permit unwound
    // unreported is recorded as ignored.
    {
        nb::Breaker e(small());
        CHECK(throws<int>([&] { e.call([]() -> int { throw 42; }); }));
        CHECK(throws<int>([&] {
            auto p = e.acquire();
            throw 7;
        }));
        auto m = e.metrics();
        CHECK(m.failures == 1 && m.ignored == 1 && m.calls == 1);
    }

    // Names and handles: a clone shares the breaker, and a listener added
    // through one handle outlives it (its exception count too).
    {
        nb::Breaker named("inventory", small());
        nb::Breaker closed_named("inventory", small(), nb::FailMode::Closed);  // the public constructor
        CHECK(closed_named.name() == "inventory");
        nb::Breaker anonymous(small());
        CHECK(named.name() == "inventory" && anonymous.name().empty());
        CHECK(throws<nb::Error>([] { nb::Breaker bad(std::string(NB_MAX_NAME_LEN + 1, 'x')); }));
        nb::Breaker second = named.clone();
        named.on_transition([](const nb_transition&) { throw std::runtime_error("listener bug"); });
        named = nb::Breaker(small());  // the first handle goes
        second.transition_to(nb::State::ForcedOpen);
        CHECK(second.state() == nb::State::ForcedOpen && second.name() == "inventory");
        CHECK(second.listener_exceptions() == 1);
    }

    // A registry: templates, get-or-create, a named listener, the render.
    {
        std::vector<std::string> opened;
        nb::Registry reg = nb::Registry::Builder()
                               .default_config(small().failure_rate_threshold(1.0))
                               .templ("payments.*", small())
                               .named("payments.visa", small().minimum_calls(9))
                               .settings(2, 0ns, 1)
                               .record_latency(true)
                               .on_transition([&](std::string_view name, const nb_transition& t) {
                                   if (t.to == NB_STATE_OPEN) opened.emplace_back(name);
                               })
                               .build();
        CHECK(throws<nb::ConfigError>([] { nb::Registry::Builder().templ("x.*", nb::Config().jitter(2)); }));
        nb::Breaker amex = reg.get("payments.amex");
        nb::Breaker again = reg.get("payments.amex");
        CHECK(amex.name() == "payments.amex" && reg.size() == 1);
        for (int i = 0; i < 4; i++) {
            CHECK(throws<int>([&] { amex.call([]() -> int { throw 1; }); }));
        }
        CHECK(again.state() == nb::State::Open && opened.size() == 1 && opened[0] == "payments.amex");
        nb::Breaker visa = reg.get("payments.visa");
        CHECK(visa.name() == "payments.visa");
        bool full = false;  // both held (one open): nothing to evict
        try {
            reg.get("third");
        } catch (const nb::Error& e) {
            full = e.code() == NB_REGISTRY_FULL;
        }
        CHECK(full);
        CHECK(!reg.find("nope").has_value() && reg.find("payments.visa").has_value());
        int open = 0, all = 0;
        reg.for_each([&](std::string_view, nb::State s) { all++; open += s == nb::State::Open; });
        CHECK(all == 2 && open == 1);
        CHECK(throws<int>([&] { reg.for_each([](std::string_view, nb::State) { throw 3; }); }));
        std::string text = reg.render_prometheus();
        CHECK(text.find("nanobreaker_state{name=\"payments.amex\",state=\"open\"} 1\n") != std::string::npos);
        CHECK(text.find("nanobreaker_call_duration_seconds_count{name=\"payments.amex\"} 4\n") != std::string::npos);
        CHECK(reg.remove("payments.visa") && !reg.remove("payments.visa") && reg.size() == 1);
        CHECK(throws<nb::Error>([&] { reg.get(""); }));
    }

    // Move-only ownership.
    nb::Breaker moved = std::move(b);
    CHECK(moved.raw() != nullptr && b.raw() == nullptr);

    // Threads sharing one breaker.
    nb::Breaker shared(nb::Config().failure_rate_threshold(1.0));
    std::atomic<uint64_t> made{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++) {
        ts.emplace_back([&] {
            for (int i = 0; i < 50000; i++) {
                if (auto p = shared.try_acquire()) {
                    made++;
                    if (i % 3) p->success(); else p->failure();
                }
            }
        });
    }
    for (auto& t : ts) t.join();
    auto m = shared.metrics();
    CHECK(made == 200000 && m.calls == 200000 && m.rejected == 0);

    shared_breakers();

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
