package nanobreaker

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func small() Config {
	c := DefaultConfig()
	c.MinimumCalls = 4
	c.CountWindow = 10
	c.OpenWait = 20 * time.Millisecond
	c.MaxOpenWait = 40 * time.Millisecond
	c.Jitter = 0
	c.HalfOpenPermits = 2
	return c
}

func TestDefaults(t *testing.T) {
	c := DefaultConfig()
	if c.FailureRateThreshold != 0.5 || c.MinimumCalls != 20 || c.CountWindow != 100 || c.OpenWait != 5*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if Version() == "" {
		t.Fatal("no version")
	}
}

func TestConfigErrorNamesTheField(t *testing.T) {
	c := DefaultConfig()
	c.HalfOpenPermits = 0
	_, err := New(c)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "half_open_permits" {
		t.Fatalf("got %v", err)
	}
}

func TestTransitions(t *testing.T) {
	b, err := New(small())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var seen []Transition
	if err := b.OnTransition(func(tr Transition) { mu.Lock(); seen = append(seen, tr); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for i := 0; i < 4; i++ {
		if err := b.Execute(func() error { return boom }); err != boom {
			t.Fatalf("Execute returned %v", err)
		}
	}
	if b.State() != Open {
		t.Fatalf("state %v", b.State())
	}
	_, err = b.Allow()
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrRejected) || rej.RetryAfter <= 0 || rej.RetryAfter > 20*time.Millisecond {
		t.Fatalf("got %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	p, err := b.Allow()
	if err != nil || b.State() != HalfOpen {
		t.Fatalf("half-open: %v %v", err, b.State())
	}
	p.Success()
	if err := b.Execute(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if b.State() != Closed {
		t.Fatalf("state %v", b.State())
	}
	mu.Lock()
	defer mu.Unlock()
	want := []State{Open, HalfOpen, Closed}
	if len(seen) != len(want) {
		t.Fatalf("seen %v", seen)
	}
	for i, s := range want {
		if seen[i].To != s || seen[i].Generation != uint64(i+1) {
			t.Fatalf("transition %d: %+v", i, seen[i])
		}
	}
	if seen[0].Reason != ReasonFailureRate || seen[2].Reason != ReasonProbesSucceeded {
		t.Fatalf("reasons %v", seen)
	}
}

func TestManualStatesAndReconfigure(t *testing.T) {
	b, _ := New(small())
	defer b.Close()
	if err := b.TransitionTo(ForcedOpen); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrRejected) {
		t.Fatalf("forced open allowed: %v", err)
	}
	if err := b.TransitionTo(State(42)); err == nil {
		t.Fatal("a bad state was accepted")
	}
	if err := b.Reset(); err != nil || b.State() != Closed {
		t.Fatal("reset")
	}
	c := small()
	c.CountWindow = 11
	var ce *ConfigError
	if err := b.Reconfigure(c); !errors.As(err, &ce) || ce.Field != "window" {
		t.Fatalf("window change: %v", err)
	}
	c = small()
	c.FailureRateThreshold = 1.0
	if err := b.Reconfigure(c); err != nil {
		t.Fatal(err)
	}
}

func TestPermitCountsOnce(t *testing.T) {
	c := small()
	c.HalfOpenPermits = 2
	b, _ := New(c)
	defer b.Close()
	p, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Success(); err != nil {
		t.Fatal(err)
	}
	if err := p.Success(); err != ErrPermitSpent {
		t.Fatalf("second Success: %v", err)
	}
	if err := p.Failure(); err != ErrPermitSpent {
		t.Fatalf("Failure after Success: %v", err)
	}
	if m, _ := b.Metrics(); m.Calls != 1 || m.Failures != 0 {
		t.Fatalf("counted %+v", m)
	}
	var none Permit
	if err := none.Success(); err != ErrNoPermit {
		t.Fatalf("zero permit: %v", err)
	}
	// Half-open with two probes: one probe reported twice must not close.
	for i := 0; i < 4; i++ {
		_ = b.Execute(func() error { return errors.New("down") })
	}
	time.Sleep(30 * time.Millisecond)
	p1, err1 := b.Allow()
	p2, err2 := b.Allow()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	p1.Success()
	if err := p1.Success(); err != ErrPermitSpent || b.State() != HalfOpen {
		t.Fatalf("double record: %v, %v", err, b.State())
	}
	p2.Success()
	if b.State() != Closed {
		t.Fatalf("state %v", b.State())
	}
	// A permit outliving its breaker.
	stale, _ := b.Allow()
	b.Close()
	if err := stale.Success(); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// Allow in Closed reads the state word without a cgo call (the breaker's
// nb_fast_path); its permit must be the library's own, and every other
// state must still ask the library.
func TestAllowWithoutACrossingGivesTheLibrarysPermit(t *testing.T) {
	b, _ := New(small())
	defer b.Close()
	if b.fast.word == nil {
		t.Fatal("a new breaker has no fast path")
	}
	p, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	if lib := b.libraryPermit(); p.words() != lib || p.tail != nil {
		t.Fatalf("fast permit %x, library's %x", p.words(), lib)
	}
	if err := p.Success(); err != nil {
		t.Fatal(err)
	}
	if m, _ := b.Metrics(); m.Calls != 1 || m.WindowCalls != 1 {
		t.Fatalf("counted %+v", m)
	}
	b.TransitionTo(ForcedOpen)
	if _, err := b.Allow(); err == nil {
		t.Fatal("ForcedOpen let a call through")
	}
	b.TransitionTo(Closed)
	// A permit from before a reset is stale: spent, and dropped.
	stale, _ := b.Allow()
	b.Reset()
	if err := stale.Success(); err != nil {
		t.Fatal(err)
	}
	if m, _ := b.Metrics(); m.WindowCalls != 0 {
		t.Fatalf("a stale permit was counted: %+v", m)
	}

	// A library whose permits' words 0 and 3 the binding does not know:
	// each Permit carries its own, and records as the library's.
	b.fast, b.id = fastPath{}, 0
	odd, err := b.Allow()
	if err != nil || odd.tail == nil || odd.words() != b.libraryPermit() {
		t.Fatalf("%v %+v", err, odd)
	}
	if err := odd.Success(); err != nil {
		t.Fatal(err)
	}
	if err := odd.Success(); err != ErrPermitSpent {
		t.Fatalf("second Success: %v", err)
	}
	if m, _ := b.Metrics(); m.WindowCalls != 1 {
		t.Fatalf("counted %+v", m)
	}
}

func TestFailOpenByDefaultAndClosedOnRequest(t *testing.T) {
	b, _ := New(small())
	defer b.Close()
	b.setFault(nbPanic)
	p, err := b.Allow()
	if err != nil || !p.FailedOpen() {
		t.Fatalf("fail open: %v %v", err, p.FailedOpen())
	}
	if err := p.Success(); err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := b.Execute(func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Execute: %v %v", err, ran)
	}
	b.setFault(0)
	if m, _ := b.Metrics(); m.FailedOpen != 2 || m.Calls != 0 {
		t.Fatalf("metrics %+v", m)
	}

	c := small()
	c.FailClosed = true
	closed, _ := New(c)
	defer closed.Close()
	closed.setFault(nbPanic)
	if _, err := closed.Allow(); err == nil || !strings.Contains(err.Error(), "NB_PANIC") {
		t.Fatalf("fail closed: %v", err)
	}
	if err := closed.Execute(func() error { t.Fatal("ran"); return nil }); err == nil {
		t.Fatal("fail closed ran the call")
	}
	if m, _ := closed.Metrics(); m.FailedOpen != 0 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestListenerPanicIsRecovered(t *testing.T) {
	b, _ := New(small())
	defer b.Close()
	after := 0
	b.OnTransition(func(Transition) { panic("listener bug") })
	b.OnTransition(func(Transition) { after++ })
	if err := b.TransitionTo(ForcedOpen); err != nil {
		t.Fatal(err)
	}
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	if m, _ := b.Metrics(); m.ListenerPanics != 2 || after != 2 || b.State() != Closed {
		t.Fatalf("metrics %+v, after %d", m, after)
	}
}

func TestExecuteContextIgnoresCancellation(t *testing.T) {
	b, _ := New(small())
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	err := b.ExecuteContext(ctx, func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if err := b.ExecuteContext(ctx, func(context.Context) error { t.Fatal("ran"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
	short, stop := context.WithTimeout(context.Background(), time.Millisecond)
	defer stop()
	err = b.ExecuteContext(short, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if err := b.ExecuteContext(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	m, _ := b.Metrics()
	if m.Ignored != 1 || m.Failures != 1 || m.Successes != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestGenericExecuteReturnsTheValue(t *testing.T) {
	b, _ := New(small())
	defer b.Close()
	v, err := Execute(b, func() (string, error) { return "up", nil })
	if v != "up" || err != nil {
		t.Fatalf("%q %v", v, err)
	}
	boom := errors.New("down")
	n, err := Execute(b, func() (int, error) { return 7, boom })
	if n != 7 || err != boom {
		t.Fatalf("%d %v", n, err)
	}
	b.TransitionTo(ForcedOpen)
	n, err = Execute(b, func() (int, error) { t.Fatal("ran"); return 1, nil })
	if n != 0 || !errors.Is(err, ErrRejected) {
		t.Fatalf("%d %v", n, err)
	}
	if m, _ := b.Metrics(); m.Successes != 1 || m.Failures != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestCloseIsIdempotentAndUseAfterCloseFails(t *testing.T) {
	b, _ := New(small())
	b.Close()
	b.Close()
	if _, err := b.Allow(); err != ErrClosed {
		t.Fatalf("got %v", err)
	}
	if b.State() != Unknown {
		t.Fatal("state after close")
	}
}

// Success in Closed with a count window records by the fast path's
// success rule, in Go: no cgo call but at a lap's end or a slot that held
// something else, every success counted once, and a success that fills
// the window is judged.
func TestSuccessWithoutACrossingCountsOnceAndIsJudged(t *testing.T) {
	c := small()
	c.Stripes = 1
	c.MinimumCalls = 10
	c.FailureRateThreshold = 0.5
	b, _ := New(c)
	defer b.Close()
	if b.fast.cursors == nil {
		t.Fatal("a count window has no success rule")
	}
	before := runtime.NumCgoCall()
	for i := 0; i < 1000; i++ {
		if err := b.Execute(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// The first lap writes 10 empty slots, then one call per lap's end.
	if n := runtime.NumCgoCall() - before; n > 10+100 {
		t.Fatalf("%d cgo calls for 1000 successes", n)
	}
	if pos := atomic.LoadUint64((*uint64)(b.fast.cursors)) & b.fast.positionMask; pos > b.fast.ring {
		t.Fatalf("the cursor was not folded at its laps' ends: position %d", pos)
	}
	if m, _ := b.Metrics(); m.Calls != 1000 || m.Successes != 1000 || m.WindowCalls != 10 {
		t.Fatalf("counted %+v", m)
	}

	// One goroutine's successes (by the rule) and failures (through the
	// library) share one cursor, whatever the stripes: five failures, then
	// successes, the fifth of which brings the window to its minimum at
	// 50% failures and trips it; and ten successes, then failures, the
	// fifth of which trips it.
	for _, stripes := range []uint32{1, 4, 8, 16} {
		c.Stripes = stripes
		for _, failuresFirst := range []bool{true, false} {
			fresh, _ := New(c)
			outcomes := []error{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}
			if failuresFirst {
				outcomes = outcomes[:5]
			}
			down := errors.New("down")
			for i := 0; i < 5; i++ {
				if failuresFirst {
					outcomes = append([]error{down}, outcomes...)
				} else {
					outcomes = append(outcomes, down)
				}
			}
			for i, err := range outcomes {
				if s := fresh.State(); s != Closed {
					t.Fatalf("stripes %d: %v after %d calls", stripes, s, i)
				}
				_ = fresh.Execute(func() error { return err })
			}
			if s := fresh.State(); s != Open {
				m, _ := fresh.Metrics()
				t.Fatalf("stripes %d, failures first %v: a window at 50%% failures is %v: %+v", stripes, failuresFirst, s, m)
			}
			fresh.Close()
		}
	}
	c.Stripes = 1

	// A time window has no success rule: the library records.
	c.TimeWindow = time.Second
	timed, _ := New(c)
	defer timed.Close()
	if timed.fast.cursors != nil {
		t.Fatal("a time window with a success rule")
	}
	_ = timed.Execute(func() error { return nil })
	if m, _ := timed.Metrics(); m.Calls != 1 {
		t.Fatalf("counted %+v", m)
	}
}

// A goroutine's outcomes share one window cursor whichever OS thread runs
// it: with one P, two goroutines locked to their own threads take turns on
// it; the first's failures and successes must still fill one exact window
// (the other's record, on another breaker, hands the P to its thread).
func TestOneGoroutineSeesAnExactWindowWhicheverThreadRunsIt(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c := small()
	c.Stripes = 8
	c.MinimumCalls = 10
	c.FailureRateThreshold = 0.5
	down := errors.New("down")
	for trial := 0; trial < 20; trial++ {
		b, _ := New(c)
		other, _ := New(c)
		turn, done := make(chan struct{}), make(chan struct{})
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-turn
			_ = other.Execute(func() error { return down })
			close(done)
		}()
		runtime.LockOSThread()
		for i := 0; i < 5; i++ {
			_ = b.Execute(func() error { return down })
		}
		turn <- struct{}{}
		<-done
		for i := 0; i < 5; i++ {
			_ = b.Execute(func() error { return nil })
		}
		runtime.UnlockOSThread()
		if s := b.State(); s != Open {
			m, _ := b.Metrics()
			t.Fatalf("trial %d: a window at 50%% failures is %v: %+v", trial, s, m)
		}
		b.Close()
		other.Close()
	}
}

func TestGoroutinesShareOneBreaker(t *testing.T) {
	c := DefaultConfig()
	c.FailureRateThreshold = 1.0
	b, _ := New(c)
	defer b.Close()
	var made, rejected int64
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				p, err := b.Allow()
				if err != nil {
					atomic.AddInt64(&rejected, 1)
					continue
				}
				atomic.AddInt64(&made, 1)
				if (i+g)%3 == 0 {
					p.Failure()
				} else {
					p.Success()
				}
			}
		}(g)
	}
	wg.Wait()
	m, err := b.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if made+rejected != 64*2000 || m.Calls != uint64(made) || m.Rejected != uint64(rejected) || m.Successes+m.Failures != m.Calls {
		t.Fatalf("made %d rejected %d metrics %+v", made, rejected, m)
	}
}

func TestPanicInExecuteCountsAsIgnored(t *testing.T) {
	b, _ := New(small())
	defer b.Close()
	func() {
		defer func() { _ = recover() }()
		_ = b.Execute(func() error { panic("bug") })
	}()
	m, _ := b.Metrics()
	if m.Ignored != 1 || m.Calls != 0 {
		t.Fatalf("%+v", m)
	}
}

func BenchmarkAllowSuccess(bench *testing.B) {
	b, _ := New(DefaultConfig())
	defer b.Close()
	bench.ResetTimer()
	for i := 0; i < bench.N; i++ {
		p, err := b.Allow()
		if err == nil {
			p.Success()
		}
	}
}

// The floor: Allow + Success cross into C once in Closed (Success; Allow
// reads the state word through the fast path), twice in other states.
func BenchmarkEmptyCgoCall(bench *testing.B) {
	for i := 0; i < bench.N; i++ {
		emptyCgoCall()
	}
}

func BenchmarkAllowSuccessParallel(bench *testing.B) {
	b, _ := New(DefaultConfig())
	defer b.Close()
	bench.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p, err := b.Allow(); err == nil {
				p.Success()
			}
		}
	})
}

func TestAllowAndRecordDoNotAllocate(t *testing.T) {
	b, _ := New(DefaultConfig())
	defer b.Close()
	allocs := testing.AllocsPerRun(10000, func() {
		if p, err := b.Allow(); err == nil {
			p.Success()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Allow+Success", allocs)
	}
}
