// Tests of the C++ wrapper: RAII, exceptions, call(), listeners, threads.
#include "nanobreaker.hpp"

#include <atomic>
#include <cstdio>
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

static nb::Config small() {
    return nb::Config().minimum_calls(4).count_window(10).open_wait(20ms).jitter(0).half_open_permits(2);
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

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
