package nanobreaker

// The fast path: a permit and a healthy success without the library
// (nb_fast_path's rules), and the stripes the binding gives its Ps.

/*
#include <stdint.h>
#include "nanobreaker.h"

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
	"runtime"
	"sync/atomic"
	"unsafe"
)

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

// newStripe gives P p its first stripe (or the one another goroutine on
// p just gave it).
func newStripe(p int) uint64 {
	s := uint64(C.nbgo_stripe_new())
	if !pStripes[p].id.CompareAndSwap(0, s) {
		s = pStripes[p].id.Load()
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

// currentStripe is the P the goroutine runs on (modulo len(pStripes)) and
// its stripe.
func currentStripe() (int, uint64) {
	p := procPin() % len(pStripes)
	s := pStripes[p].id.Load()
	procUnpin()
	if s == 0 {
		s = newStripe(p)
	}
	return p, s
}

// success records a success of a live permit of b with the breaker's own
// words 0 and 3 (a nil tail) by the success rule: false when the rule does
// not apply and the library must record it.
func (f *fastPath) success(b *Breaker, g, start uint64) (C.nb_result, bool) {
	if f.cursors == nil || start != f.start || (atomic.LoadUint64(f.word)^g<<f.shift)&f.recordMask != 0 {
		return 0, false
	}
	p, stripe := currentStripe()
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

// recordOnP records o on the permit words w through the library, on the
// stripe of the goroutine's P.
func recordOnP(b *Breaker, w rawPermit, o C.uint32_t) C.nb_result {
	p, stripe := currentStripe()
	r := C.nbgo_record(b.handle(), C.uint64_t(w.id), C.uint64_t(w.generation), C.uint64_t(w.start), C.uint64_t(w.mark), o,
		C.uint64_t(stripe))
	keepStripe(p, stripe, r.stripe)
	return C.nb_result(r.result)
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
