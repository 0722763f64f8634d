package nanobreaker

// Metrics: a snapshot of a breaker's rates and totals.

/*
#include <stdint.h>
#include "nanobreaker.h"
*/
import "C"

import (
	"math"
	"runtime"
	"time"
	"unsafe"
)

// Metrics is a snapshot of rates and totals.
type Metrics struct {
	State                                                    State
	FailureRate, SlowCallRate                                float64
	WindowCalls, WindowFailures, WindowSlowCalls             uint64
	Calls, Successes, Failures, SlowCalls, Ignored, Rejected uint64
	HalfOpenInFlight                                         uint32
	SinceLastTransition                                      time.Duration
	Generation, EventsLost                                   uint64
	Timeouts, Opens, ProbesSucceeded, ProbesFailed           uint64
	// Since the latest failure, and the latest timed success (a success
	// is timed only with a time window or a slow-call rule); -1 if none.
	SinceLastSuccess, SinceLastFailure time.Duration
	// Transitions by reason, indexed by Reason (room for reasons a later
	// library adds).
	TransitionsByReason [C.NB_MAX_REASONS]uint64
	// Kept by this package, not the library: calls let through because
	// the library failed, and listener panics recovered.
	FailedOpen, ListenerPanics uint64
}

// Metrics takes a snapshot.
func (b *Breaker) Metrics() (Metrics, error) {
	if b.ptr == nil {
		return Metrics{}, ErrClosed
	}
	var m C.nb_metrics
	r := C.nb_breaker_metrics(b.ptr, &m, C.sizeof_nb_metrics)
	runtime.KeepAlive(b)
	if r != C.NB_OK {
		return Metrics{}, resultError(r)
	}
	return Metrics{
		State: State(m.state), FailureRate: float64(m.failure_rate), SlowCallRate: float64(m.slow_call_rate),
		WindowCalls: uint64(m.window_calls), WindowFailures: uint64(m.window_failures),
		WindowSlowCalls: uint64(m.window_slow_calls), Calls: uint64(m.calls), Successes: uint64(m.successes),
		Failures: uint64(m.failures), SlowCalls: uint64(m.slow_calls), Ignored: uint64(m.ignored),
		Rejected: uint64(m.rejected), HalfOpenInFlight: uint32(m.half_open_in_flight),
		SinceLastTransition: time.Duration(m.since_last_transition_ns),
		Generation:          uint64(m.generation), EventsLost: uint64(m.events_lost),
		Timeouts: uint64(m.timeouts), Opens: uint64(m.opens),
		ProbesSucceeded: uint64(m.probes_succeeded), ProbesFailed: uint64(m.probes_failed),
		SinceLastSuccess:    since(&m, unsafe.Offsetof(m.since_last_success_ns), m.since_last_success_ns),
		SinceLastFailure:    since(&m, unsafe.Offsetof(m.since_last_failure_ns), m.since_last_failure_ns),
		TransitionsByReason: byReason(m.transitions_by_reason),
		FailedOpen:          b.stats.failedOpen.Load(), ListenerPanics: b.stats.listenerPanics.Load(),
	}, nil
}

// since is a library duration at offset off of m: -1 for none (UINT64_MAX),
// or when the library is older than the field (m.size does not cover it).
func since(m *C.nb_metrics, off uintptr, ns C.uint64_t) time.Duration {
	if uintptr(m.size) < off+8 || uint64(ns) > math.MaxInt64 {
		return -1
	}
	return time.Duration(ns)
}

func byReason(c [C.NB_MAX_REASONS]C.uint64_t) (out [C.NB_MAX_REASONS]uint64) {
	for i, v := range c {
		out[i] = uint64(v)
	}
	return out
}
