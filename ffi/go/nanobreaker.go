// Package nanobreaker is a Go binding of the nanobreaker circuit breaker
// through its C ABI.
//
// Import it as
//
//	import nanobreaker "github.com/nanobreaker/nanobreaker/ffi/go"
//
// It finds the C library with pkg-config (nanobreaker.pc, written by the
// library's install step, ffi/c/install.sh): after that step no CGO_ flags
// are needed (set PKG_CONFIG_PATH if the prefix is not a standard one).
//
// A *Breaker is safe for concurrent use. Close it when done; a finalizer
// frees a forgotten one, but Close must not race with other calls.
//
// Fail open: if the library itself fails (NB_PANIC, an internal bug), Allow
// and Execute let the call through, unrecorded, and Metrics().FailedOpen
// counts it; set Config.FailClosed to get an error instead. A listener that
// panics is recovered (a panic must not unwind through the library's
// frames) and counted in Metrics().ListenerPanics.
//
// OpenShared opens a breaker that every process of the host shares (a
// file in /dev/shm, or any path): an ordinary *Breaker whose state and
// counters all the processes see, and whose listeners hear every
// process's transitions.
package nanobreaker

/*
#cgo pkg-config: nanobreaker
#include <stdint.h>
#include <stdlib.h>
#include "nanobreaker.h"

extern void goTransition(nb_transition *t, uintptr_t handle);
extern void goFreeHandle(uintptr_t handle);

static void nbgo_trampoline(const nb_transition *t, void *ud) { goTransition((nb_transition *)t, (uintptr_t)ud); }
static void nbgo_free(void *ud) { goFreeHandle((uintptr_t)ud); }
static nb_result nbgo_on_transition(const nb_breaker *b, uintptr_t handle) {
	return nb_breaker_on_transition(b, nbgo_trampoline, (void *)handle, nbgo_free);
}

// The two calls of every protected call take the handle as an integer and
// return plain values, so no pointer crosses cgo: Go neither moves the call
// frame to the heap nor walks it for cgocheck (about 60 ns per call less).
// The permit crosses as four scalar words, each copied by one 8-byte move:
// copying whole structs had 16-byte loads read data just written by 8-byte
// stores, which the CPU cannot forward (about 8 ns per call more).
typedef struct { uint64_t w0, w1, w2, w3, retry_after_ns; uint32_t result; } nbgo_acquired;
static nbgo_acquired nbgo_acquire(uintptr_t b) {
	nb_permit p = {{0, 0, 0, 0}};
	uint64_t retry = 0;
	nb_result r = nb_acquire_ex((const nb_breaker *)b, &p, &retry);
	nbgo_acquired a = {p.opaque[0], p.opaque[1], p.opaque[2], p.opaque[3], retry, (uint32_t)r};
	return a;
}
// An empty call: the floor a protected call is measured against (one of
// these is the crossing Allow + Success need in Closed: Success's).
static void nbgo_noop(void) {}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// State is a breaker's state.
type State uint32

// The states.
const (
	Closed      State = C.NB_STATE_CLOSED
	Open        State = C.NB_STATE_OPEN
	HalfOpen    State = C.NB_STATE_HALF_OPEN
	Disabled    State = C.NB_STATE_DISABLED
	MetricsOnly State = C.NB_STATE_METRICS_ONLY
	ForcedOpen  State = C.NB_STATE_FORCED_OPEN
	Unknown     State = C.NB_STATE_UNKNOWN
)

func (s State) String() string { return C.GoString(C.nb_state_str(C.uint32_t(s))) }

// Reason says why a transition happened.
type Reason uint32

func (r Reason) String() string { return C.GoString(C.nb_reason_str(C.uint32_t(r))) }

// The reasons.
const (
	ReasonFailureRate     Reason = C.NB_REASON_FAILURE_RATE
	ReasonSlowCallRate    Reason = C.NB_REASON_SLOW_CALL_RATE
	ReasonConsecutive     Reason = C.NB_REASON_CONSECUTIVE_FAILURES
	ReasonOpenWaitElapsed Reason = C.NB_REASON_OPEN_WAIT_ELAPSED
	ReasonProbesSucceeded Reason = C.NB_REASON_PROBES_SUCCEEDED
	ReasonProbesFailed    Reason = C.NB_REASON_PROBES_FAILED
	ReasonProbesSlow      Reason = C.NB_REASON_PROBES_SLOW
	ReasonHalfOpenTimeout Reason = C.NB_REASON_HALF_OPEN_TIMEOUT
	ReasonManual          Reason = C.NB_REASON_MANUAL
	ReasonFleet           Reason = C.NB_REASON_FLEET
)

// ErrRejected is matched (errors.Is) by every *RejectedError.
var ErrRejected = errors.New("nanobreaker: call rejected")

// ErrClosed is returned by a Breaker used after Close.
var ErrClosed = errors.New("nanobreaker: breaker closed")

// RejectedError says the breaker rejected a call and when to retry.
type RejectedError struct{ RetryAfter time.Duration }

func (e *RejectedError) Error() string {
	return fmt.Sprintf("nanobreaker: call rejected, retry after %v", e.RetryAfter)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// resultError turns an nb_result with no more specific error into one: a
// sentinel where the package has one, else the result's name.
func resultError(r C.nb_result) error {
	switch r {
	case C.NB_CONFIG_MISMATCH:
		return ErrConfigMismatch
	case C.NB_SHARED_CORRUPT:
		return ErrSharedCorrupt
	}
	return fmt.Errorf("nanobreaker: %s", C.GoString(C.nb_result_str(C.uint32_t(r))))
}

// Breaker is a circuit breaker.
type Breaker struct {
	ptr        *C.nb_breaker
	fast       fastPath
	failClosed bool
	stats      *stats // shared with the listeners' handles
	fault      C.nb_result
	// Words 0 and 3 of the permits the library issues (the fast path's
	// breaker_id and live), kept when Close or setFault empty the fast path.
	id, live uint64
}

type stats struct {
	failedOpen     atomic.Uint64
	listenerPanics atomic.Uint64
}

// fault, when not NB_OK, is what a breaker's Allow gets instead of asking
// the library: the tests' way to make the library "fail" (it never panics
// on purpose). A fault turns the fast path off; see setFault.

// nbPanic is NB_PANIC, for the tests (cgo is not available in _test files).
const nbPanic = uint32(C.NB_PANIC)

// New makes a breaker (named cfg.Name, if set).
func New(cfg Config) (*Breaker, error) {
	raw := cfg.raw()
	var ptr *C.nb_breaker
	var r C.nb_result
	if strings.IndexByte(cfg.Name, 0) >= 0 {
		return nil, &ConfigError{Field: "name"}
	}
	if cfg.Name != "" {
		name := C.CString(cfg.Name)
		r = C.nb_breaker_new_named(&raw, name, &ptr)
		C.free(unsafe.Pointer(name))
	} else {
		r = C.nb_breaker_new(&raw, &ptr)
	}
	if r != C.NB_OK {
		return nil, configError(r, &raw)
	}
	return wrap(ptr, cfg.FailClosed, &stats{}), nil
}

// configError turns the result of a call given raw into an error.
func configError(r C.nb_result, raw *C.nb_config) error {
	if r == C.NB_INVALID_CONFIG {
		return &ConfigError{Field: C.GoString(C.nb_config_invalid_field(raw))}
	}
	return resultError(r)
}

// wrap gives a new C handle its Go owner, freed by Close or the finalizer.
func wrap(ptr *C.nb_breaker, failClosed bool, st *stats) *Breaker {
	b := &Breaker{ptr: ptr, failClosed: failClosed, stats: st}
	b.fast, b.id, b.live = fastPathOf(ptr)
	runtime.SetFinalizer(b, (*Breaker).Close)
	return b
}

// Name is the breaker's name ("" if it has none).
func (b *Breaker) Name() string {
	if b.ptr == nil {
		return ""
	}
	var p *C.char
	var n C.size_t
	C.nb_breaker_name(b.ptr, &p, &n)
	s := C.GoStringN(p, C.int(n))
	runtime.KeepAlive(b)
	return s
}

// handle is the C pointer as an integer (it points to C memory, which the
// Go garbage collector neither moves nor frees).
func (b *Breaker) handle() C.uintptr_t { return C.uintptr_t(uintptr(unsafe.Pointer(b.ptr))) }

// Close frees the breaker. It is idempotent; it must not race with other calls.
func (b *Breaker) Close() {
	if b.ptr != nil {
		b.fast = fastPath{}
		C.nb_breaker_free(b.ptr)
		b.ptr = nil
		runtime.SetFinalizer(b, nil)
	}
}

// Allow asks to make a call: a Permit, or a *RejectedError.
func (b *Breaker) Allow() (Permit, error) {
	if f := &b.fast; f.word != nil {
		if w := atomic.LoadUint64(f.word); w&f.mask == 0 {
			return Permit{b: b, generation: w >> f.shift, start: f.start}, nil
		}
	}
	return b.allow()
}

// allow is Allow by the library (Close and setFault empty the fast path).
func (b *Breaker) allow() (Permit, error) {
	if b.ptr == nil {
		return Permit{}, ErrClosed
	}
	a := C.nbgo_acquire(b.handle())
	runtime.KeepAlive(b)
	if b.fault != C.NB_OK {
		a.result = C.uint32_t(b.fault)
	}
	switch C.nb_result(a.result) {
	case C.NB_OK:
		p := Permit{b: b, generation: uint64(a.w1), start: uint64(a.w2)}
		if uint64(a.w0) != b.id || uint64(a.w3) != b.live {
			p.tail = &permitTail{uint64(a.w0), uint64(a.w3)} // not one of today's permits
		}
		return p, nil
	case C.NB_REJECTED:
		wait := time.Duration(1<<63 - 1)
		if uint64(a.retry_after_ns) < uint64(wait) {
			wait = time.Duration(a.retry_after_ns)
		}
		return Permit{}, &RejectedError{RetryAfter: wait}
	case C.NB_PANIC:
		if b.failClosed {
			return Permit{}, resultError(C.nb_result(a.result))
		}
		b.stats.failedOpen.Add(1)
		return Permit{tail: &failedOpenTail}, nil
	default:
		return Permit{}, resultError(C.nb_result(a.result))
	}
}

// Execute runs fn if the breaker allows it: a nil error counts as success,
// any other as failure; a panic counts as ignored and propagates.
func (b *Breaker) Execute(fn func() error) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			p.Ignore()
		}
	}()
	err = fn()
	done = true
	if err != nil {
		p.Failure()
	} else {
		p.Success()
	}
	return err
}

// ExecuteContext runs fn(ctx) as Execute does, except that a call ended by
// the context's cancellation is ignored, not counted as a failure: an error
// for which errors.Is(err, context.Canceled) holds, or any error once ctx is
// cancelled (the caller gave up; the dependency is not to blame). A context
// deadline that passes counts as a failure: the dependency was too slow. A
// context already done when ExecuteContext is called returns ctx.Err()
// without asking the breaker.
func (b *Breaker) ExecuteContext(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.Allow()
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			p.Ignore()
		}
	}()
	err = fn(ctx)
	done = true
	switch {
	case err == nil:
		p.Success()
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		p.Ignore()
	default:
		p.Failure()
	}
	return err
}

// Execute runs fn if b allows it and returns its value: a nil error counts
// as success, any other as failure; a panic counts as ignored and
// propagates. When b rejects the call, the error matches ErrRejected and
// the value is T's zero value.
func Execute[T any](b *Breaker, fn func() (T, error)) (T, error) {
	var v T
	err := b.Execute(func() error {
		var err error
		v, err = fn()
		return err
	})
	return v, err
}

// State returns the current state (Unknown after Close).
func (b *Breaker) State() State {
	if b.ptr == nil {
		return Unknown
	}
	s := State(C.nb_breaker_state(b.ptr))
	runtime.KeepAlive(b)
	return s
}

func (b *Breaker) do(f func() C.nb_result) error {
	if b.ptr == nil {
		return ErrClosed
	}
	r := f()
	runtime.KeepAlive(b)
	if r != C.NB_OK {
		return resultError(r)
	}
	return nil
}

// TransitionTo moves the breaker to s.
func (b *Breaker) TransitionTo(s State) error {
	return b.do(func() C.nb_result { return C.nb_breaker_transition_to(b.ptr, C.uint32_t(s)) })
}

// Reset moves the breaker to Closed with an empty window.
func (b *Breaker) Reset() error {
	return b.do(func() C.nb_result { return C.nb_breaker_reset(b.ptr) })
}

// Reconfigure replaces the configuration, whole or not at all. The window
// shape cannot change.
func (b *Breaker) Reconfigure(cfg Config) error {
	if b.ptr == nil {
		return ErrClosed
	}
	raw := cfg.raw()
	r := C.nb_breaker_reconfigure(b.ptr, &raw)
	runtime.KeepAlive(b)
	if r == C.NB_INVALID_CONFIG {
		field := "window"
		if f := C.nb_config_invalid_field(&raw); f != nil {
			field = C.GoString(f)
		}
		return &ConfigError{Field: field}
	}
	if r != C.NB_OK {
		return resultError(r)
	}
	return nil
}

// Transition is one state change.
type Transition struct {
	From, To   State
	Reason     Reason
	Generation uint64
	At         time.Duration // since the breaker was made
}

type listener struct {
	f     func(Transition)
	stats *stats
}

//export goTransition
func goTransition(t *C.nb_transition, handle C.uintptr_t) {
	l := cgo.Handle(handle).Value().(listener)
	// A Go panic must not unwind through the library's (Rust) frames.
	defer func() {
		if recover() != nil {
			l.stats.listenerPanics.Add(1)
		}
	}()
	l.f(Transition{From: State(t.from), To: State(t.to), Reason: Reason(t.reason),
		Generation: uint64(t.generation), At: time.Duration(t.at_ns)})
}

//export goFreeHandle
func goFreeHandle(handle C.uintptr_t) { cgo.Handle(handle).Delete() }

// OnTransition calls f on every transition, in order, inside some
// goroutine's call on the breaker: usually the one whose call made the
// transition, else the next call on any goroutine (see
// nb_transition_callback in nanobreaker.h). f must not block for long and
// must not Close the breaker; a panic in f is recovered and counted
// (Metrics().ListenerPanics).
func (b *Breaker) OnTransition(f func(Transition)) error {
	if b.ptr == nil {
		return ErrClosed
	}
	h := cgo.NewHandle(listener{f: f, stats: b.stats})
	r := C.nbgo_on_transition(b.ptr, C.uintptr_t(h))
	runtime.KeepAlive(b)
	if r != C.NB_OK {
		h.Delete()
		return resultError(r)
	}
	return nil
}

// setFault makes Allow answer r (NB_OK: the library's answer again); for
// the tests. Not safe for concurrent use.
func (b *Breaker) setFault(r uint32) {
	b.fault = C.nb_result(r)
	b.fast = fastPath{}
	if r == C.NB_OK {
		b.fast, _, _ = fastPathOf(b.ptr)
	}
}

// libraryPermit is the permit nb_acquire hands out now, never recorded (for
// the test that compares it with the fast path's).
func (b *Breaker) libraryPermit() rawPermit {
	a := C.nbgo_acquire(b.handle())
	runtime.KeepAlive(b)
	return rawPermit{uint64(a.w0), uint64(a.w1), uint64(a.w2), uint64(a.w3)}
}

// emptyCgoCall crosses into C and back doing nothing (for the benchmark
// that puts the cost of a crossing beside a protected call).
func emptyCgoCall() { C.nbgo_noop() }

// Version is the library version.
func Version() string { return C.GoString(C.nb_version()) }
