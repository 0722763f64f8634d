// nanobreaker.hpp: a header-only C++17 wrapper over the nanobreaker C ABI.
//
// Ownership is RAII: a `Breaker` owns its handle (move-only); a `Permit` is a
// guard that records "ignored" if it goes out of scope unreported, so a
// half-open slot is never leaked by an early return or an exception.
//
// Errors are exceptions: a bad configuration throws `ConfigError` (naming
// the field), a rejected call in `call()` throws `Rejected` (with the retry
// hint), a failed system call on a shared breaker's file throws `IoError`
// (with its errno), any other failing C call throws `Error` (with its
// nb_result).
// `try_acquire()` is the exception-free path: it returns std::nullopt when
// the breaker rejects.
//
// Fail open: if the library itself fails (NB_PANIC, an internal bug), the
// call goes through, unrecorded, and `failed_open()` counts it; construct
// the breaker with `FailMode::Closed` to throw `Error` instead. A listener
// that throws is caught (never unwinds into the C ABI) and counted by
// `listener_exceptions()`.
//
// A `Breaker` may be used from any number of threads at once.
// `Breaker::open_shared` gives one that every process of the host shares.
#ifndef NANOBREAKER_HPP
#define NANOBREAKER_HPP

#include "nanobreaker.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <exception>
#include <memory>
#include <new>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

// The acquire function the wrapper calls when the permit rule of the
// breaker's nb_fast_path does not give a permit (any state but a plain
// Closed): tests define it before including this header to inject faults
// (NB_PANIC); everyone else gets nb_acquire_ex.
#ifndef NANOBREAKER_ACQUIRE_EX
#define NANOBREAKER_ACQUIRE_EX nb_acquire_ex
#endif

namespace nanobreaker {

/// What a Breaker does when the library fails internally (NB_PANIC).
enum class FailMode {
    /// Let the call through, unrecorded, and count it (the default: a
    /// broken breaker must not take the service down with it).
    Open,
    /// Throw Error(NB_PANIC) from try_acquire/acquire/call.
    Closed,
};

/// A C call failed; `code()` is its nb_result.
class Error : public std::runtime_error {
   public:
    explicit Error(nb_result code, const std::string& what)
        : std::runtime_error(what + ": " + nb_result_str(code)), code_(code) {}
    nb_result code() const noexcept { return code_; }

   private:
    nb_result code_;
};

/// A configuration value is out of range; `field()` names it.
class ConfigError : public Error {
   public:
    explicit ConfigError(const char* field)
        : Error(NB_INVALID_CONFIG, std::string("invalid config field ") + (field ? field : "?")),
          field_(field ? field : "") {}
    const std::string& field() const noexcept { return field_; }

   private:
    std::string field_;
};

/// The breaker rejected a call; it was not made.
class Rejected : public Error {
   public:
    explicit Rejected(std::chrono::nanoseconds retry_after)
        : Error(NB_REJECTED, "circuit breaker rejected the call"), retry_after_(retry_after) {}
    std::chrono::nanoseconds retry_after() const noexcept { return retry_after_; }

   private:
    std::chrono::nanoseconds retry_after_;
};

/// A system call on a shared breaker's file failed (NB_SHARED_IO);
/// `sys_errno()` says why.
class IoError : public Error {
   public:
    IoError(int err, const std::string& what)
        : Error(NB_SHARED_IO, what + " (" + std::system_category().message(err) + ")"), errno_(err) {}
    int sys_errno() const noexcept { return errno_; }
    std::error_code error_code() const noexcept { return std::error_code(errno_, std::system_category()); }

   private:
    int errno_;
};

enum class State : uint32_t {
    Closed = NB_STATE_CLOSED,
    Open = NB_STATE_OPEN,
    HalfOpen = NB_STATE_HALF_OPEN,
    Disabled = NB_STATE_DISABLED,
    MetricsOnly = NB_STATE_METRICS_ONLY,
    ForcedOpen = NB_STATE_FORCED_OPEN,
};

inline const char* to_string(State s) noexcept { return nb_state_str(static_cast<uint32_t>(s)); }

/// The configuration, starting from every default. Setters chain.
class Config {
   public:
    Config() noexcept { nb_config_default(&raw_, sizeof raw_); }
    Config& failure_rate_threshold(double x) noexcept { raw_.failure_rate_threshold = x; return *this; }
    Config& minimum_calls(uint32_t n) noexcept { raw_.minimum_calls = n; return *this; }
    Config& count_window(uint32_t calls) noexcept {
        raw_.window_kind = NB_WINDOW_COUNT;
        raw_.window_size = calls;
        return *this;
    }
    Config& time_window(std::chrono::nanoseconds length, uint32_t buckets) noexcept {
        raw_.window_kind = NB_WINDOW_TIME;
        raw_.window_size = buckets;
        raw_.window_length_ns = static_cast<uint64_t>(length.count());
        return *this;
    }
    Config& slow_call(std::chrono::nanoseconds d, double rate) noexcept {
        raw_.slow_call_duration_ns = static_cast<uint64_t>(d.count());
        raw_.slow_call_rate_threshold = rate;
        return *this;
    }
    Config& consecutive_failures(uint32_t n) noexcept { raw_.consecutive_failures = n; return *this; }
    Config& open_wait(std::chrono::nanoseconds d) noexcept { raw_.open_wait_ns = static_cast<uint64_t>(d.count()); return *this; }
    Config& backoff(double multiplier, std::chrono::nanoseconds max) noexcept {
        raw_.backoff_multiplier = multiplier;
        raw_.max_open_wait_ns = static_cast<uint64_t>(max.count());
        return *this;
    }
    Config& jitter(double x) noexcept { raw_.jitter = x; return *this; }
    Config& half_open_permits(uint32_t n) noexcept { raw_.half_open_permits = n; return *this; }
    Config& half_open_max_wait(std::chrono::nanoseconds d) noexcept {
        raw_.half_open_max_wait_ns = static_cast<uint64_t>(d.count());
        return *this;
    }
    Config& stripes(uint32_t n) noexcept { raw_.stripes = n; return *this; }
    const nb_config& raw() const noexcept { return raw_; }

   private:
    nb_config raw_;
};

/// How Breaker::open_shared opens a shared breaker's file.
struct SharedOptions {
    /// The file's mode if this call creates it (0: 0600, the owning
    /// user's processes only); not subject to the umask.
    uint32_t mode = 0;
    /// Take the region's config when it differs from the one given,
    /// instead of throwing Error(NB_CONFIG_MISMATCH).
    bool adopt = false;
    /// Make the config given the region's when it differs (a deploy that
    /// changes thresholds; every other process takes it). The window
    /// cannot change. Wins over adopt.
    bool replace = false;
};

class Breaker;

/// Leave to make one call. Report it with success(), failure() or ignore()
/// (once: a second report is a no-op, as the library would refuse it);
/// destroyed unreported, it records "ignored". A Permit must not outlive the
/// Breaker that issued it (it records into it when destroyed).
class Permit {
   public:
    Permit(Permit&& o) noexcept
        : breaker_(std::exchange(o.breaker_, nullptr)), fast_(o.fast_), raw_(o.raw_), failed_open_(o.failed_open_) {}
    Permit& operator=(Permit&& o) noexcept {
        if (this != &o) {
            finish(NB_IGNORED);
            breaker_ = std::exchange(o.breaker_, nullptr);
            fast_ = o.fast_;
            raw_ = o.raw_;
            failed_open_ = o.failed_open_;
        }
        return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { finish(NB_IGNORED); }

    void success() noexcept { finish(NB_SUCCESS); }
    void failure() noexcept { finish(NB_FAILURE); }
    void ignore() noexcept { finish(NB_IGNORED); }
    /// Whether an outcome is still owed.
    bool pending() const noexcept { return breaker_ != nullptr; }
    /// Whether this permit was granted because the library failed
    /// (FailMode::Open): the call is made but not recorded.
    bool failed_open() const noexcept { return failed_open_; }

   private:
    friend class Breaker;
    Permit(const nb_breaker* b, const nb_fast_path* fast, nb_permit raw) noexcept
        : breaker_(b), fast_(fast), raw_(raw) {}
    static Permit unrecorded() noexcept {
        Permit p(nullptr, nullptr, nb_permit{});
        p.failed_open_ = true;
        return p;
    }
    void finish(nb_outcome o) noexcept {
        if (breaker_) {
            // Cannot fail: right breaker, valid outcome, live permit.
#ifdef NANOBREAKER_H_INLINE
            nb_record_fast(breaker_, fast_, &raw_, o);  // a success in a healthy Closed: no call (NULL fast_: the library)
#else
            nb_record(breaker_, &raw_, o);
#endif
            breaker_ = nullptr;
        }
    }
    const nb_breaker* breaker_;
    const nb_fast_path* fast_;  // the issuing Breaker's (it outlives the permit), or NULL
    nb_permit raw_;
    bool failed_open_ = false;
};

class Registry;

namespace detail {
/// Counters shared by every handle of a breaker (or of a registry's
/// breakers) and by its listeners, which may outlive any one handle.
struct Stats {
    explicit Stats(FailMode m) : mode(m) {}
    FailMode mode;
    std::atomic<uint64_t> failed_open{0};
    std::atomic<uint64_t> listener_exceptions{0};
};

inline void check(nb_result r, const char* what) {
    if (r != NB_OK) throw Error(r, what);
}

/// A move-only owner of a C handle, released with `Free` (which takes
/// NULL): the one place the wrappers' handles are freed.
template <typename T, void (*Free)(T*)>
class Owned {
   public:
    Owned() noexcept = default;
    explicit Owned(T* p) noexcept : p_(p) {}
    Owned(Owned&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Owned& operator=(Owned&& o) noexcept {
        if (this != &o) {
            Free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~Owned() { Free(p_); }
    T* get() const noexcept { return p_; }
    /// For a C function's out-parameter, while empty.
    T** out() noexcept { return &p_; }
    /// Gives the handle up (to a C function that consumes it).
    T* release() noexcept { return std::exchange(p_, nullptr); }

   private:
    T* p_ = nullptr;
};
}  // namespace detail

/// A handle to a circuit breaker (an nb_breaker): move-only; clone() makes
/// a second handle to the same breaker. The breaker lives until its last
/// handle is gone and no registry holds it.
class Breaker {
   public:
    explicit Breaker(const Config& config = Config(), FailMode mode = FailMode::Open)
        : Breaker(Make{}, nullptr, config, mode) {}
    /// A named breaker (at most NB_MAX_NAME_LEN bytes of UTF-8).
    Breaker(const std::string& name, const Config& config = Config(), FailMode mode = FailMode::Open)
        : Breaker(Make{}, name.c_str(), config, mode) {}
    Breaker(Breaker&&) noexcept = default;
    Breaker& operator=(Breaker&&) noexcept = default;

    /// Opens (or creates) the breaker every process of the host shares
    /// under `name_or_path` (nb_shared_open): a bare name (1..=200 of
    /// [A-Za-z0-9._-]) is the file /dev/shm/nanobreaker-v4-<name>, anything
    /// with a '/' is a path. The result is an ordinary Breaker whose state
    /// and counters every process sees; its listeners hear every process's
    /// transitions (within 10 ms, or at sync()). The first opener's config
    /// is the region's. Throws ConfigError (an invalid config),
    /// Error(NB_CONFIG_MISMATCH) (the region has another config and
    /// `options.adopt` is not set), Error(NB_SHARED_CORRUPT) (the file is
    /// not a usable region), Error(NB_INVALID_ARGUMENT) (a bad name or
    /// mode), IoError (a system call failed). After a fork(), open it
    /// again in the child rather than use a handle from before the fork.
    static Breaker open_shared(const std::string& name_or_path, const Config& config = Config(),
                               const SharedOptions& options = SharedOptions(), FailMode mode = FailMode::Open) {
        std::string what = "nb_shared_open(\"" + name_or_path + "\")";
        if (name_or_path.find('\0') != std::string::npos) throw Error(NB_INVALID_ARGUMENT, what);
        auto stats = std::make_shared<detail::Stats>(mode);
        nb_breaker* b = nullptr;
        errno = 0;
        nb_result r = nb_shared_open(name_or_path.c_str(), &config.raw(), options.mode,
                                     (options.adopt ? NB_SHARED_ADOPT : 0u) |
                                         (options.replace ? NB_SHARED_REPLACE : 0u),
                                     &b);
        int err = errno;  // before anything else can change it
        switch (r) {
            case NB_OK:
                return Breaker(b, std::move(stats));
            case NB_INVALID_CONFIG:
                throw ConfigError(nb_config_invalid_field(&config.raw()));
            case NB_SHARED_IO:
                throw IoError(err != 0 ? err : EIO, what);
            default:
                throw Error(r, what);
        }
    }

    /// Does now what this process's watcher thread does every 10 ms for a
    /// shared breaker (nb_shared_sync): takes the config another process
    /// set, and delivers to this process's listeners, on this thread, every
    /// transition they have not heard. For another breaker, delivers
    /// waiting events.
    void sync() const { check(nb_shared_sync(raw_.get()), "nb_shared_sync"); }

    /// A second handle to this breaker.
    Breaker clone() const {
        nb_breaker* b = nullptr;
        check(nb_breaker_clone(raw_.get(), &b), "nb_breaker_clone");
        return Breaker(b, stats_);
    }

    /// The breaker's name ("" if none), valid while this handle lives (so
    /// not on a temporary handle, such as `reg.get(key)`'s).
    std::string_view name() const&& = delete;
    std::string_view name() const& {
        const char* p = nullptr;
        size_t n = 0;
        check(nb_breaker_name(raw_.get(), &p, &n), "nb_breaker_name");
        return std::string_view(p, n);
    }

    /// A permit, or std::nullopt if the breaker rejects (retry hint in *retry_after).
    /// Not on a temporary handle (`reg.get(key).acquire()`): the permit
    /// would outlive it; keep the handle, or use call().
    std::optional<Permit> try_acquire(std::chrono::nanoseconds* retry_after = nullptr) const&& = delete;
    std::optional<Permit> try_acquire(std::chrono::nanoseconds* retry_after = nullptr) const& {
        nb_permit p;
#ifdef NANOBREAKER_H_INLINE
        if (nb_fast_permit(fast_.get(), &p)) return Permit(raw_.get(), fast_.get(), p);  // no call in Closed
#endif
        uint64_t retry = 0;
        nb_result r = NANOBREAKER_ACQUIRE_EX(raw_.get(), &p, &retry);
        if (r == NB_OK) return Permit(raw_.get(), fast_.get(), p);
        if (r == NB_REJECTED) {
            if (retry_after) *retry_after = to_ns(retry);
            return std::nullopt;
        }
        if (r == NB_PANIC && stats_ && stats_->mode == FailMode::Open) {
            stats_->failed_open.fetch_add(1, std::memory_order_relaxed);
            return Permit::unrecorded();
        }
        throw Error(r, "nb_acquire_ex");
    }

    /// A permit, or throws Rejected (not on a temporary handle, as try_acquire).
    Permit acquire() const&& = delete;
    Permit acquire() const& {
        std::chrono::nanoseconds retry{0};
        if (auto p = try_acquire(&retry)) return std::move(*p);
        throw Rejected(retry);
    }

    /// Runs f() if the breaker lets it: returning counts as success, throwing
    /// as failure (the exception propagates). Throws Rejected if rejected.
    template <typename F>
    auto call(F&& f) const -> std::invoke_result_t<F> {
        Permit p = acquire();
        try {
            if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
                std::invoke(std::forward<F>(f));
                p.success();
            } else {
                auto v = std::invoke(std::forward<F>(f));
                p.success();
                return v;
            }
        } catch (...) {
            p.failure();
            throw;
        }
    }

    State state() const noexcept { return static_cast<State>(nb_breaker_state(raw_.get())); }

    nb_metrics metrics() const {
        nb_metrics m;
        check(nb_breaker_metrics(raw_.get(), &m, sizeof m), "nb_breaker_metrics");
        return m;
    }

    void transition_to(State s) const { check(nb_breaker_transition_to(raw_.get(), static_cast<uint32_t>(s)), "nb_breaker_transition_to"); }
    void reset() const { check(nb_breaker_reset(raw_.get()), "nb_breaker_reset"); }

    void reconfigure(const Config& c) const {
        nb_result r = nb_breaker_reconfigure(raw_.get(), &c.raw());
        if (r == NB_INVALID_CONFIG) {
            const char* field = nb_config_invalid_field(&c.raw());
            throw ConfigError(field ? field : "window");
        }
        check(r, "nb_breaker_reconfigure");
    }

    /// Calls f(const nb_transition&) on every transition, in order, inside
    /// some thread's call on the breaker (see nb_transition_callback in
    /// nanobreaker.h: usually the thread whose call made the transition).
    /// f must not destroy the breaker; an exception it throws is caught and
    /// counted (listener_exceptions()). f is kept until the breaker is
    /// gone (its last handle, and any registry holding it).
    template <typename F>
    void on_transition(F f) const {
        struct Held {
            std::function<void(const nb_transition&)> fn;
            std::shared_ptr<detail::Stats> stats;  // may outlive this handle
        };
        auto* held = new Held{std::move(f), stats_};
        nb_result r = nb_breaker_on_transition(
            raw_.get(),
            [](const nb_transition* t, void* ud) noexcept {
                auto* h = static_cast<Held*>(ud);
                try {
                    h->fn(*t);
                } catch (...) {
                    // An exception must not unwind into the C ABI.
                    h->stats->listener_exceptions.fetch_add(1, std::memory_order_relaxed);
                }
            },
            held, [](void* ud) noexcept { delete static_cast<Held*>(ud); });
        if (r != NB_OK) {
            delete held;
            throw Error(r, "nb_breaker_on_transition");
        }
    }

    const nb_breaker* raw() const noexcept { return raw_.get(); }

    /// Calls let through because the library failed (FailMode::Open).
    uint64_t failed_open() const noexcept { return stats_ ? stats_->failed_open.load(std::memory_order_relaxed) : 0; }
    /// Exceptions thrown by listeners, caught.
    uint64_t listener_exceptions() const noexcept {
        return stats_ ? stats_->listener_exceptions.load(std::memory_order_relaxed) : 0;
    }

   private:
    friend class Registry;
    struct Make {};  // tags the private constructor, so no public overload resolves to it
    Breaker(Make, const char* name, const Config& config, FailMode mode) : stats_(std::make_shared<detail::Stats>(mode)) {
        nb_result r = name ? nb_breaker_new_named(&config.raw(), name, raw_.out()) : nb_breaker_new(&config.raw(), raw_.out());
        if (r == NB_INVALID_CONFIG) throw ConfigError(nb_config_invalid_field(&config.raw()));
        if (r != NB_OK) throw Error(r, "nb_breaker_new");
        fast_ = fast_path_of(raw_.get());
    }
    Breaker(nb_breaker* raw, std::shared_ptr<detail::Stats> stats) noexcept
        : raw_(raw), stats_(std::move(stats)), fast_(fast_path_of(raw)) {}
    /// The handle's nb_fast_path, on the heap so that a Permit's pointer
    /// to it survives moving the Breaker; NULL if the library gave none
    /// (or no memory): then every call asks the library.
    static std::unique_ptr<nb_fast_path> fast_path_of(const nb_breaker* b) noexcept {
        std::unique_ptr<nb_fast_path> f(new (std::nothrow) nb_fast_path{});
        if (f && (nb_breaker_fast_path(b, f.get(), sizeof *f) != NB_OK || f->size != sizeof *f)) f.reset();
        return f;
    }
    static std::chrono::nanoseconds to_ns(uint64_t ns) {
        return ns > static_cast<uint64_t>(std::chrono::nanoseconds::max().count())
                   ? std::chrono::nanoseconds::max()
                   : std::chrono::nanoseconds(static_cast<int64_t>(ns));
    }
    static void check(nb_result r, const char* what) { detail::check(r, what); }
    detail::Owned<nb_breaker, nb_breaker_free> raw_;
    std::shared_ptr<detail::Stats> stats_;
    std::unique_ptr<nb_fast_path> fast_;
};

/// Named breakers, made on first use (an nb_registry). Build one with
/// Registry::Builder; use it from any number of threads. Its breakers
/// share its FailMode and its listener_exceptions() count.
class Registry {
   public:
    class Builder {
       public:
        Builder() {
            nb_result r = nb_registry_builder_new(raw_.out());
            if (r != NB_OK) throw Error(r, "nb_registry_builder_new");
        }

        /// The config of breakers no template or name matches.
        Builder& default_config(const Config& c) { return config(nb_registry_builder_default_config(raw_.get(), &c.raw()), c); }
        /// The config of breakers whose name matches `pattern` ("payments.*").
        Builder& templ(const std::string& pattern, const Config& c) {
            return config(nb_registry_builder_template(raw_.get(), pattern.c_str(), &c.raw()), c);
        }
        /// The config of the breaker named `name`.
        Builder& named(const std::string& name, const Config& c) {
            return config(nb_registry_builder_named(raw_.get(), name.c_str(), &c.raw()), c);
        }
        /// Capacity, idle TTL, stripes per breaker, longest key (0 = as is).
        Builder& settings(size_t capacity, std::chrono::nanoseconds ttl, uint32_t stripes = 0, size_t max_key_len = 0) {
            check(nb_registry_builder_settings(raw_.get(), capacity, static_cast<uint64_t>(ttl.count()), stripes, max_key_len),
                  "nb_registry_builder_settings");
            return *this;
        }
        /// Every breaker records call latency (the render's histogram).
        Builder& record_latency(bool on) {
            check(nb_registry_builder_record_latency(raw_.get(), on), "nb_registry_builder_record_latency");
            return *this;
        }
        Builder& fail_mode(FailMode m) noexcept {
            stats_->mode = m;
            return *this;
        }
        /// Calls f(std::string_view name, const nb_transition&) on every
        /// transition of every breaker, as Breaker::on_transition does.
        template <typename F>
        Builder& on_transition(F f) {
            struct Held {
                std::function<void(std::string_view, const nb_transition&)> fn;
                std::shared_ptr<detail::Stats> stats;
            };
            auto* held = new Held{std::move(f), stats_};
            nb_result r = nb_registry_builder_on_transition(
                raw_.get(),
                [](const char* name, size_t len, const nb_transition* t, void* ud) noexcept {
                    auto* h = static_cast<Held*>(ud);
                    try {
                        h->fn(std::string_view(name, len), *t);
                    } catch (...) {
                        h->stats->listener_exceptions.fetch_add(1, std::memory_order_relaxed);
                    }
                },
                held, [](void* ud) noexcept { delete static_cast<Held*>(ud); });
            if (r != NB_OK) {
                delete held;
                throw Error(r, "nb_registry_builder_on_transition");
            }
            return *this;
        }
        /// The registry; this builder is spent (whatever the outcome).
        Registry build() {
            nb_registry* r = nullptr;
            nb_result res = nb_registry_build(raw_.release(), &r);
            if (res != NB_OK) throw Error(res, "nb_registry_build");
            return Registry(r, stats_);
        }

       private:
        Builder& config(nb_result r, const Config& c) {
            if (r == NB_INVALID_CONFIG) throw ConfigError(nb_config_invalid_field(&c.raw()));
            check(r, "nb_registry_builder");
            return *this;
        }
        detail::Owned<nb_registry_builder, nb_registry_builder_free> raw_;
        std::shared_ptr<detail::Stats> stats_ = std::make_shared<detail::Stats>(FailMode::Open);
    };

    Registry(Registry&&) noexcept = default;
    Registry& operator=(Registry&&) noexcept = default;

    /// The breaker named `key`, made now if there is none. Throws Error
    /// (NB_INVALID_ARGUMENT for a bad key, NB_REGISTRY_FULL).
    Breaker get(std::string_view key) const {
        nb_breaker* b = nullptr;
        check(nb_registry_get(raw_.get(), key.data(), key.size(), &b), "nb_registry_get");
        return Breaker(b, stats_);
    }
    /// The breaker named `key` if there is one; never makes one.
    std::optional<Breaker> find(std::string_view key) const {
        nb_breaker* b = nullptr;
        nb_result r = nb_registry_find(raw_.get(), key.data(), key.size(), &b);
        if (r == NB_NOT_FOUND) return std::nullopt;
        check(r, "nb_registry_find");
        return Breaker(b, stats_);
    }
    /// Removes `key`'s breaker (handles to it stay valid); whether there was one.
    bool remove(std::string_view key) const {
        nb_result r = nb_registry_remove(raw_.get(), key.data(), key.size());
        if (r == NB_NOT_FOUND) return false;
        check(r, "nb_registry_remove");
        return true;
    }
    size_t size() const noexcept { return nb_registry_len(raw_.get()); }
    /// Evicts closed breakers idle for the TTL that no handle holds.
    size_t evict_idle() const noexcept { return nb_registry_evict_idle(raw_.get()); }
    /// Calls f(std::string_view name, State) for every breaker. An
    /// exception from f stops the walk and is rethrown here.
    template <typename F>
    void for_each(F f) const {
        struct Ctx {
            F* f;
            std::exception_ptr error;
        } ctx{&f, nullptr};
        auto visit = [](const nb_breaker* b, const char* name, size_t len, void* ud) noexcept -> int {
            auto* c = static_cast<Ctx*>(ud);
            try {
                (*c->f)(std::string_view(name, len), static_cast<State>(nb_breaker_state(b)));
                return 0;
            } catch (...) {
                c->error = std::current_exception();  // must not unwind into the C ABI
                return 1;
            }
        };
        check(nb_registry_for_each(raw_.get(), visit, &ctx), "nb_registry_for_each");
        if (ctx.error) std::rethrow_exception(ctx.error);
    }
    /// Every breaker's metrics in the Prometheus text format.
    std::string render_prometheus() const {
        char* text = nullptr;
        size_t len = 0;
        check(nb_registry_render_prometheus(raw_.get(), &text, &len), "nb_registry_render_prometheus");
        std::string s(text, len);
        nb_string_free(text);
        return s;
    }
    uint64_t listener_exceptions() const noexcept {
        return stats_ ? stats_->listener_exceptions.load(std::memory_order_relaxed) : 0;
    }
    const nb_registry* raw() const noexcept { return raw_.get(); }

   private:
    Registry(nb_registry* raw, std::shared_ptr<detail::Stats> stats) noexcept : raw_(raw), stats_(std::move(stats)) {}
    static void check(nb_result r, const char* what) { detail::check(r, what); }
    detail::Owned<nb_registry, nb_registry_free> raw_;
    std::shared_ptr<detail::Stats> stats_;
};

}  // namespace nanobreaker

#endif  // NANOBREAKER_HPP
