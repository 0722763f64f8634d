package nanobreaker

// Permits: leave to make one call, recorded once.

/*
#include <stdint.h>
#include "nanobreaker.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
)

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
	r := recordOnP(p.b, w, o)
	runtime.KeepAlive(p.b)
	return okOr(r)
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
