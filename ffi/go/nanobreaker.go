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
// A record on the stripe of the goroutine's P (see pStripes), lent to this
// thread for the call; what comes back is that stripe as the library left
// it (it may have moved it off a contended stripe).
typedef struct { uint64_t stripe; uint32_t result; } nbgo_recorded;
static nbgo_recorded nbgo_record(uintptr_t b, uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint32_t outcome, uint64_t stripe) {
	nb_permit p = {{w0, w1, w2, w3}};
	nbgo_recorded r;
	uint64_t own = nb_thread_stripe_swap(stripe);
	r.result = nb_record((const nb_breaker *)b, &p, outcome);
	r.stripe = nb_thread_stripe_swap(own);
	return r;
}
// The end of a success by the fast path's rule that could not finish in Go
// (a lap's end, or a slot that held another outcome), as nbgo_record.
static nbgo_recorded nbgo_success_landed(uintptr_t b, uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t stripe, uint64_t k, uint64_t position) {
	nb_permit p = {{w0, w1, w2, w3}};
	nbgo_recorded r;
	uint64_t own = nb_thread_stripe_swap(stripe);
	r.result = nb_success_landed((const nb_breaker *)b, &p, k, position);
	r.stripe = nb_thread_stripe_swap(own);
	return r;
}
static uint64_t nbgo_stripe_new(void) { return nb_stripe_new(); }
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// fastPath is the breaker's nb_fast_path (C memory, which Go neither moves
// nor frees). In Closed, Allow hands out the permit nb_acquire would with
// one atomic load of the breaker's state word, and Success records by the
// success rule (a count window) with one atomic add and a load or two, so
// a healthy protected call does not cross into C at all; every other case
// asks the library. A nil word: no fast path.
type fastPath struct {
	word                         *uint64
	mask, shift, id, start, live uint64
	// The success rule; a nil cursors: none (a time window).
	cursors, slots                                     unsafe.Pointer
	recordMask, stride, stripeMask, positionMask, ring uint64
	slotShift, slotSuccess                             uint64
}

// pStripes[p % 256] is the stripe (a value of nb_stripe_new, as the
// library moves it) that the outcomes of goroutines running on P p (the
// scheduler's processor) are counted on: successes by the rule in Go, and
// every other record, which lends it to the OS thread that makes the call
// (nbgo_record). So a goroutine's successes and failures share a window
// cursor whichever thread runs it, and it sees an exact window while it
// keeps its P (a goroutine that blocks may wake on another P, as a thread
// may be moved by the library). Each P gets a new stripe on its first
// record, as a new thread would; Ps that collide on a stripe part as
// threads do (the record that moves one brings its new stripe back). Each
// entry has its own cache line.
var pStripes [256]struct {
	id atomic.Uint64
	_  [56]byte
}

// stripeOf is P p's stripe.
func stripeOf(p int) uint64 {
	s := pStripes[p].id.Load()
	if s == 0 {
		s = uint64(C.nbgo_stripe_new())
		if !pStripes[p].id.CompareAndSwap(0, s) {
			s = pStripes[p].id.Load()
		}
	}
	return s
}

// keepStripe notes that a record on P p's stripe was left with stripe s.
func keepStripe(p int, was uint64, s C.uint64_t) {
	if uint64(s) != was && s != 0 {
		pStripes[p].id.Store(uint64(s))
	}
}

// The P a goroutine runs on (procPin is one of the runtime functions that
// stay open to go:linkname, go.dev/issue/67401: sync and other packages
// pin their per-P data with it).
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// currentP is the P the goroutine runs on, modulo len(pStripes).
func currentP() int {
	p := procPin()
	procUnpin()
	return p % len(pStripes)
}

// success records a success of a live permit of b with the breaker's own
// words 0 and 3 (a nil tail) by the success rule: false when the rule does
// not apply and the library must record it.
func (f *fastPath) success(b *Breaker, g, start uint64) (C.nb_result, bool) {
	if f.cursors == nil || start != f.start || (atomic.LoadUint64(f.word)^g<<f.shift)&f.recordMask != 0 {
		return 0, false
	}
	p := currentP()
	stripe := stripeOf(p)
	k := stripe & f.stripeMask
	position := (atomic.AddUint64((*uint64)(unsafe.Add(f.cursors, k*f.stride)), 1) - 1) & f.positionMask
	if position < f.ring && atomic.LoadUint64((*uint64)(unsafe.Add(f.slots, position*8))) == g<<f.slotShift|f.slotSuccess {
		runtime.KeepAlive(b) // the breaker's memory, until here
		return C.NB_OK, true
	}
	r := C.nbgo_success_landed(b.handle(), C.uint64_t(f.id), C.uint64_t(g), C.uint64_t(start), C.uint64_t(f.live),
		C.uint64_t(stripe), C.uint64_t(k), C.uint64_t(position))
	runtime.KeepAlive(b)
	keepStripe(p, stripe, r.stripe)
	return C.nb_result(r.result), true
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

// fastPathOf is the fast path of breaker ptr (none if the library gives
// none, or a smaller one than this binding's header knows) and words 0 and
// 3 of its permits (0 if unknown: then every Permit carries its own).
func fastPathOf(ptr *C.nb_breaker) (fastPath, uint64, uint64) {
	var f C.nb_fast_path
	if C.nb_breaker_fast_path(ptr, &f, C.sizeof_nb_fast_path) != C.NB_OK {
		return fastPath{}, 0, 0
	}
	id, live := uint64(f.breaker_id), uint64(f.live) // zero if not filled
	if f.size != C.sizeof_nb_fast_path {
		return fastPath{}, id, live
	}
	return fastPath{
		word:         (*uint64)(unsafe.Pointer(f.word)),
		mask:         uint64(f.mask),
		shift:        uint64(f.shift),
		id:           uint64(f.breaker_id),
		start:        uint64(f.start),
		live:         uint64(f.live),
		cursors:      unsafe.Pointer(f.cursors),
		slots:        unsafe.Pointer(f.slots),
		recordMask:   uint64(f.record_mask),
		stride:       uint64(f.cursor_stride),
		stripeMask:   uint64(f.stripe_mask),
		positionMask: uint64(f.position_mask),
		ring:         uint64(f.ring),
		slotShift:    uint64(f.slot_shift),
		slotSuccess:  uint64(f.slot_success),
	}, id, live
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

// ErrPermitSpent is returned by a Permit reported a second time; nothing
// is recorded.
var ErrPermitSpent = errors.New("nanobreaker: permit already recorded")

// ErrNoPermit is returned by the zero Permit (one Allow did not grant).
var ErrNoPermit = errors.New("nanobreaker: not a permit")

// Permit is leave to make one call; report it once (a second report
// returns ErrPermitSpent and counts nothing). Keep it in one variable and
// call its methods there: a copy would be a second permit to the Go side.
//
// Four fields in 32 bytes, so that the compiler keeps a Permit in
// registers and stores it into the caller's variable a word at a time: a
// larger struct is copied through memory by 16-byte moves of words stored
// 8 bytes at a time, which the CPU cannot forward (about 9 ns a call).
type Permit struct {
	b *Breaker
	// The nb_permit's words 1 and 2.
	generation, start uint64
	// nil: live, and words 0 and 3 are the breaker's id and live mark
	// (every permit this library issues today); &spentTail or
	// &failedOpenTail: spent, or granted because the library failed;
	// anything else: a live permit with other words 0 and 3.
	tail *permitTail
}

// permitTail is an nb_permit's words 0 and 3.
type permitTail struct{ id, mark uint64 }

// The marks of a spent permit and of one granted because the library
// failed (compared by address).
var spentTail, failedOpenTail permitTail

// words is the permit's nb_permit.
func (p *Permit) words() rawPermit {
	if t := p.tail; t != nil {
		return rawPermit{t.id, p.generation, p.start, t.mark}
	}
	return rawPermit{p.b.id, p.generation, p.start, p.b.live}
}

// rawPermit is an nb_permit's words.
type rawPermit struct{ id, generation, start, mark uint64 }

// FailedOpen says the permit was granted because the library failed
// (see Config.FailClosed): the call is made but not recorded.
func (p *Permit) FailedOpen() bool { return p.tail == &failedOpenTail }

func (p *Permit) record(o C.uint32_t) error {
	switch {
	case p.tail == &failedOpenTail:
		return nil
	case p.b == nil:
		return ErrNoPermit
	case p.tail == &spentTail:
		return ErrPermitSpent
	case p.b.ptr == nil:
		return ErrClosed
	}
	w := p.words()
	p.tail = &spentTail
	cpu := currentP()
	stripe := stripeOf(cpu)
	r := C.nbgo_record(p.b.handle(), C.uint64_t(w.id), C.uint64_t(w.generation), C.uint64_t(w.start), C.uint64_t(w.mark), o,
		C.uint64_t(stripe))
	runtime.KeepAlive(p.b)
	keepStripe(cpu, stripe, r.stripe)
	return okOr(C.nb_result(r.result))
}

// Success reports that the call worked.
func (p *Permit) Success() error {
	if b := p.b; b != nil && p.tail == nil {
		if r, done := b.fast.success(b, p.generation, p.start); done {
			p.tail = &spentTail
			return okOr(r)
		}
	}
	return p.record(C.NB_SUCCESS)
}

// okOr is nil for NB_OK, else the result's error.
func okOr(r C.nb_result) error {
	if r == C.NB_OK {
		return nil
	}
	return resultError(r)
}

// Failure reports that the call failed.
func (p *Permit) Failure() error { return p.record(C.NB_FAILURE) }

// Ignore reports a call not to be counted.
func (p *Permit) Ignore() error { return p.record(C.NB_IGNORED) }

// Outcome is how a call counts: what a classifier (Transport.Classify)
// returns and Permit.Record takes.
type Outcome uint32

// The outcomes.
const (
	Success Outcome = C.NB_SUCCESS
	Failure Outcome = C.NB_FAILURE
	Ignored Outcome = C.NB_IGNORED // not counted; a half-open probe slot is given back
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	}
	return fmt.Sprintf("Outcome(%d)", uint32(o))
}

// ErrBadOutcome is returned by Record given a value that is not an
// Outcome; the permit is not spent.
var ErrBadOutcome = errors.New("nanobreaker: not an outcome")

// Record reports the call's outcome: Success, Failure or Ignore by value.
func (p *Permit) Record(o Outcome) error {
	switch o {
	case Success:
		return p.Success()
	case Failure, Ignored:
		return p.record(C.uint32_t(o))
	}
	return ErrBadOutcome
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
