package nanobreaker

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNamedBreaker(t *testing.T) {
	c := small()
	c.Name = "inventory"
	b, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != "inventory" {
		t.Fatalf("name %q", b.Name())
	}
	c.Name = strings.Repeat("x", 257)
	if _, err := New(c); err == nil {
		t.Fatal("a 257-byte name was taken")
	}
}

func TestRegistry(t *testing.T) {
	strict := small()
	strict.FailureRateThreshold = 0.5
	lenient := small()
	lenient.FailureRateThreshold = 1
	visa := small()
	visa.MinimumCalls = 9
	reg, err := NewRegistry(RegistryConfig{
		Default:       lenient,
		Templates:     []Template{{Pattern: "payments.*", Config: strict}},
		Named:         map[string]Config{"payments.visa": visa},
		Capacity:      2,
		Stripes:       1,
		RecordLatency: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	// Concurrent get-or-create of one key: one breaker.
	var wg sync.WaitGroup
	got, errs := make([]*Breaker, 8), make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = reg.Get("payments.amex")
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if reg.Len() != 1 {
		t.Fatalf("len %d", reg.Len())
	}
	amex := got[0]
	for i := 0; i < 4; i++ {
		_ = amex.Execute(func() error { return errors.New("down") })
	}
	for _, b := range got {
		if b.State() != Open || b.Name() != "payments.amex" {
			t.Fatalf("a handle sees %v %q", b.State(), b.Name())
		}
	}
	m, _ := amex.Metrics()
	if m.Opens != 1 || m.TransitionsByReason[ReasonFailureRate] != 1 || m.SinceLastFailure < 0 {
		t.Fatalf("metrics %+v", m)
	}

	v, err := reg.Get("payments.visa")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Both held (one open): nothing to evict.
	if _, err := reg.Get("third"); !errors.Is(err, ErrRegistryFull) {
		t.Fatalf("full: %v", err)
	}
	if _, err := reg.Get(""); err == nil {
		t.Fatal("empty key taken")
	}
	if _, ok := reg.Find("nope"); ok {
		t.Fatal("find made a breaker")
	}
	if f, ok := reg.Find("payments.visa"); !ok || f.Name() != "payments.visa" {
		t.Fatal("find of a held key")
	} else {
		f.Close()
	}
	text, err := reg.RenderPrometheus()
	if err != nil || !strings.Contains(text, `nanobreaker_state{name="payments.amex",state="open"} 1`) ||
		!strings.Contains(text, `nanobreaker_call_duration_seconds_count{name="payments.amex"} 4`) {
		t.Fatalf("render: %v\n%s", err, text)
	}
	if !reg.Remove("payments.visa") || reg.Remove("payments.visa") || reg.Len() != 1 {
		t.Fatal("remove")
	}
	if v.State() != Closed { // a removed breaker's handle still works
		t.Fatal("removed handle")
	}
	for _, b := range got {
		b.Close()
	}
	reg.Close()
	if _, err := reg.Get("x"); !errors.Is(err, ErrClosed) {
		t.Fatal("get after close")
	}
	if amex.State() != Unknown {
		t.Fatal("closed handle")
	}
}

func TestRegistryConfigErrors(t *testing.T) {
	bad := small()
	bad.Jitter = 2
	_, err := NewRegistry(RegistryConfig{Templates: []Template{{Pattern: "x.*", Config: bad}}})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "jitter" {
		t.Fatalf("template config error: %v", err)
	}
	if _, err := NewRegistry(RegistryConfig{Templates: []Template{{Pattern: "", Config: small()}}}); err == nil {
		t.Fatal("empty pattern taken")
	}
	if _, err := NewRegistry(RegistryConfig{Stripes: 65}); err == nil {
		t.Fatal("65 stripes taken")
	}
	reg, err := NewRegistry(RegistryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	b, err := reg.Get("default")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.State() != Closed {
		t.Fatal("zero RegistryConfig")
	}
}

func TestRegistryEvictsIdleUnheldBreakers(t *testing.T) {
	reg, err := NewRegistry(RegistryConfig{TTL: time.Millisecond, Stripes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	held, _ := reg.Get("held")
	defer held.Close()
	idle, _ := reg.Get("idle")
	idle.Close()
	time.Sleep(20 * time.Millisecond)
	if n := reg.EvictIdle(); n != 1 || reg.Len() != 1 {
		t.Fatalf("evicted %d, %d left", n, reg.Len())
	}
	if _, ok := reg.Find("idle"); ok {
		t.Fatal("the idle breaker stayed")
	}
	if _, err := reg.Get("bad\x00key"); err != nil {
		t.Fatalf("a key may hold a NUL byte: %v", err)
	}
	if _, err := NewRegistry(RegistryConfig{Named: map[string]Config{"a\x00b": small()}}); err == nil {
		t.Fatal("a name with a NUL byte was cut short")
	}
}
