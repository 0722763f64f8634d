package nanobreaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpConfig trips after 4 calls at half failures, waits 200 ms open and
// closes after 2 good probes.
func httpConfig() Config {
	c := DefaultConfig()
	c.MinimumCalls = 4
	c.CountWindow = 10
	c.OpenWait = 200 * time.Millisecond
	c.MaxOpenWait = 200 * time.Millisecond
	c.Jitter = 0
	c.HalfOpenPermits = 2
	return c
}

// upstream is an httptest server answering status (settable), counting
// the requests that reach it.
type upstream struct {
	*httptest.Server
	status atomic.Int64
	hits   atomic.Int64
}

func newUpstream(t *testing.T, status int) *upstream {
	u := &upstream{}
	u.status.Store(int64(status))
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(u.status.Load()))
		io.WriteString(w, "body")
	}))
	t.Cleanup(u.Close)
	return u
}

// client sends through tr over a transport of its own (no connection
// outlives the test).
func client(t *testing.T, tr *Transport) *http.Client {
	if tr.Base == nil {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		tr.Base = base
	}
	return &http.Client{Transport: tr}
}

// get returns the response's status, its body read and closed.
func get(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func newBreaker(t *testing.T, c Config) *Breaker {
	b, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func metrics(t *testing.T, b *Breaker) Metrics {
	t.Helper()
	m, err := b.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTransportHealthyCallsPass(t *testing.T) {
	up := newUpstream(t, http.StatusOK)
	b := newBreaker(t, httpConfig())
	c := client(t, &Transport{Breaker: b})
	for i := 0; i < 20; i++ {
		if code, err := get(c, up.URL); err != nil || code != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	m := metrics(t, b)
	if up.hits.Load() != 20 || m.Successes != 20 || m.Calls != 20 || b.State() != Closed {
		t.Fatalf("hits %d, metrics %+v", up.hits.Load(), m)
	}
}

func TestTransportOpensRejectsAndRecovers(t *testing.T) {
	up := newUpstream(t, http.StatusServiceUnavailable)
	b := newBreaker(t, httpConfig())
	c := client(t, &Transport{Breaker: b})

	// 4 × 503: a failure rate of 1 over the minimum calls trips it.
	for i := 0; i < 4; i++ {
		if code, err := get(c, up.URL); err != nil || code != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	if b.State() != Open {
		t.Fatalf("state %v after 4 × 503", b.State())
	}

	// Open: rejected at once, the server never sees the requests, and
	// the request body is closed.
	for i := 0; i < 5; i++ {
		body := &trackedBody{Reader: strings.NewReader("payload")}
		resp, err := c.Post(up.URL, "text/plain", body)
		if resp != nil {
			resp.Body.Close()
		}
		var rej *RejectedError
		var ue *url.Error
		if !errors.Is(err, ErrRejected) || !errors.As(err, &rej) || !errors.As(err, &ue) {
			t.Fatalf("open: got %v", err)
		}
		if rej.RetryAfter <= 0 || rej.RetryAfter > 200*time.Millisecond {
			t.Fatalf("retry after %v", rej.RetryAfter)
		}
		if !body.closed.Load() {
			t.Fatal("a rejected request's body was left open")
		}
	}
	if hits := up.hits.Load(); hits != 4 {
		t.Fatalf("server hit %d times, want 4", hits)
	}
	if m := metrics(t, b); m.Rejected != 5 || m.Failures != 4 {
		t.Fatalf("metrics %+v", m)
	}

	// After the open wait a probe goes through; still failing, it reopens.
	time.Sleep(250 * time.Millisecond)
	if code, err := get(c, up.URL); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("probe: %d %v", code, err)
	}
	if b.State() != Open || up.hits.Load() != 5 {
		t.Fatalf("a failed probe left %v, hits %d", b.State(), up.hits.Load())
	}
	if _, err := get(c, up.URL); !errors.Is(err, ErrRejected) {
		t.Fatalf("reopened: %v", err)
	}

	// Healed: after the wait, two good probes close it.
	up.status.Store(http.StatusOK)
	time.Sleep(250 * time.Millisecond)
	for i := 0; i < 2; i++ {
		if code, err := get(c, up.URL); err != nil || code != http.StatusOK {
			t.Fatalf("probe %d: %d %v", i, code, err)
		}
	}
	if b.State() != Closed {
		t.Fatalf("state %v after two good probes", b.State())
	}
	for i := 0; i < 10; i++ {
		if _, err := get(c, up.URL); err != nil {
			t.Fatal(err)
		}
	}
	if m := metrics(t, b); up.hits.Load() != 17 || m.ProbesSucceeded != 2 || m.ProbesFailed != 1 || m.Opens != 2 {
		t.Fatalf("hits %d, metrics %+v", up.hits.Load(), m)
	}
}

type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func TestTransportPerHostBreakers(t *testing.T) {
	bad := newUpstream(t, http.StatusBadGateway)
	good := newUpstream(t, http.StatusOK)
	reg, err := NewRegistry(RegistryConfig{Default: httpConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c := client(t, &Transport{Registry: reg})
	for i := 0; i < 4; i++ {
		get(c, bad.URL)
		if code, err := get(c, good.URL); err != nil || code != http.StatusOK {
			t.Fatalf("good host: %d %v", code, err)
		}
	}
	if _, err := get(c, bad.URL); !errors.Is(err, ErrRejected) {
		t.Fatalf("bad host not rejected: %v", err)
	}
	for i := 0; i < 10; i++ {
		if code, err := get(c, good.URL+"/other/path"); err != nil || code != http.StatusOK {
			t.Fatalf("the bad host's breaker stopped the good one: %d %v", code, err)
		}
	}
	if bad.hits.Load() != 4 || good.hits.Load() != 14 || reg.Len() != 2 {
		t.Fatalf("hits bad %d good %d, %d breakers", bad.hits.Load(), good.hits.Load(), reg.Len())
	}
	for _, tc := range []struct {
		url   string
		state State
		calls uint64
	}{{bad.URL, Open, 4}, {good.URL, Closed, 14}} {
		u, _ := url.Parse(tc.url)
		key := HostKey(&http.Request{URL: u})
		b, ok := reg.Find(key)
		if !ok {
			t.Fatalf("no breaker %q", key)
		}
		m := metrics(t, b)
		b.Close()
		if m.State != tc.state || m.Calls != tc.calls {
			t.Fatalf("%s: %+v", key, m)
		}
	}
}

func TestTransport4xxIsIgnoredAndClassifyOverrides(t *testing.T) {
	up := newUpstream(t, http.StatusNotFound)
	b := newBreaker(t, httpConfig())
	c := client(t, &Transport{Breaker: b})
	for i := 0; i < 20; i++ {
		if code, err := get(c, up.URL); err != nil || code != http.StatusNotFound {
			t.Fatalf("%d %v", code, err)
		}
	}
	if m := metrics(t, b); m.State != Closed || m.Ignored != 20 || m.Failures != 0 || m.Calls != 0 {
		t.Fatalf("404s counted: %+v", m)
	}

	// A Classify of one's own: 404 is a failure here.
	strict := newBreaker(t, httpConfig())
	c = client(t, &Transport{Breaker: strict, Classify: func(r *http.Response, err error) Outcome {
		if r != nil && r.StatusCode == http.StatusNotFound {
			return Failure
		}
		return ClassifyHTTP(r, err)
	}})
	for i := 0; i < 4; i++ {
		get(c, up.URL)
	}
	if strict.State() != Open {
		t.Fatalf("state %v", strict.State())
	}
}

func TestClassifyHTTP(t *testing.T) {
	for code, want := range map[int]Outcome{
		200: Success, 204: Success, 301: Success, 304: Success,
		400: Ignored, 401: Ignored, 404: Ignored, 409: Ignored, 499: Ignored,
		408: Failure, 429: Failure, 500: Failure, 502: Failure, 503: Failure, 504: Failure, 599: Failure,
	} {
		if got := ClassifyHTTP(&http.Response{StatusCode: code}, nil); got != want {
			t.Errorf("%d: %v, want %v", code, got, want)
		}
	}
	if got := ClassifyHTTP(nil, errors.New("connection refused")); got != Failure {
		t.Errorf("error: %v", got)
	}
	if Success.String() != "success" || Ignored.String() != "ignored" || Outcome(7).String() != "Outcome(7)" {
		t.Error("Outcome.String")
	}
}

func TestTransportErrorIsFailure(t *testing.T) {
	up := newUpstream(t, http.StatusOK)
	dead := up.URL
	up.Close() // connection refused from now on
	b := newBreaker(t, httpConfig())
	c := client(t, &Transport{Breaker: b})
	for i := 0; i < 4; i++ {
		if _, err := get(c, dead); err == nil || errors.Is(err, ErrRejected) {
			t.Fatalf("request %d to a closed server: %v", i, err)
		}
	}
	if m := metrics(t, b); m.State != Open || m.Failures != 4 {
		t.Fatalf("metrics %+v", m)
	}
	if _, err := get(c, dead); !errors.Is(err, ErrRejected) {
		t.Fatalf("got %v", err)
	}
}

func TestTransportCancellationIsIgnoredDeadlineIsFailure(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	b := newBreaker(t, httpConfig())
	c := client(t, &Transport{Breaker: b})

	// Cancelled by the caller while waiting for the head: ignored.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if m := metrics(t, b); m.Ignored != 1 || m.Failures != 0 || m.HalfOpenInFlight != 0 {
		t.Fatalf("after a cancellation: %+v", m)
	}

	// A context already done: neither the breaker nor the server is asked.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
	if m := metrics(t, b); m.Ignored != 1 || m.Calls != 0 || hits.Load() != 1 {
		t.Fatalf("a done context was sent: %+v, hits %d", m, hits.Load())
	}

	// A deadline that passes: the upstream was too slow, a failure.
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	req, _ = http.NewRequestWithContext(short, http.MethodGet, srv.URL, nil)
	if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	<-arrived

	// So is http.Client.Timeout.
	timed := &http.Client{Transport: c.Transport, Timeout: 50 * time.Millisecond}
	if _, err := timed.Get(srv.URL); err == nil {
		t.Fatal("no timeout")
	}
	<-arrived
	if m := metrics(t, b); m.Failures != 2 || m.Ignored != 1 {
		t.Fatalf("after two timeouts: %+v", m)
	}
}

// roundTripFunc is a Base of the tests' making.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportFailsOpenWithoutABreaker(t *testing.T) {
	bad := newUpstream(t, http.StatusServiceUnavailable)
	other := newUpstream(t, http.StatusServiceUnavailable)
	reg, err := NewRegistry(RegistryConfig{Default: httpConfig(), Capacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c := client(t, &Transport{Registry: reg})
	for i := 0; i < 4; i++ {
		get(c, bad.URL)
	}
	// The registry's one place holds an open breaker, which cannot be
	// evicted: the other host gets none, and goes through unprotected
	// (never tripping, never recorded).
	for i := 0; i < 10; i++ {
		if code, err := get(c, other.URL); err != nil || code != http.StatusServiceUnavailable {
			t.Fatalf("registry full: %d %v", code, err)
		}
	}
	if other.hits.Load() != 10 || reg.Len() != 1 {
		t.Fatalf("hits %d, %d breakers", other.hits.Load(), reg.Len())
	}

	// No key: unprotected.
	c = client(t, &Transport{Registry: reg, Key: func(*http.Request) string { return "" }})
	if _, err := get(c, bad.URL); err != nil || bad.hits.Load() != 5 {
		t.Fatalf("keyless: %v, hits %d", err, bad.hits.Load())
	}
	// The zero Transport: http.DefaultTransport, unprotected.
	zero := &http.Client{Transport: &Transport{}}
	if code, err := get(zero, other.URL); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("zero Transport: %d %v", code, err)
	}
	zero.CloseIdleConnections()
	// A closed registry gives no breaker either.
	reg.Close()
	c = client(t, &Transport{Registry: reg})
	if _, err := get(c, bad.URL); err != nil || bad.hits.Load() != 6 {
		t.Fatalf("closed registry: %v, hits %d", err, bad.hits.Load())
	}
}

func TestHostKey(t *testing.T) {
	for raw, want := range map[string]string{
		"http://Example.COM/a?b":       "example.com:80",
		"https://example.com":          "example.com:443",
		"HTTPS://example.com:8443/x":   "example.com:8443",
		"http://user:pw@Host.test:81/": "host.test:81",
		"http://[::1]:8080/":           "[::1]:8080",
		"https://[2001:DB8::1]/":       "[2001:db8::1]:443",
		"http://10.0.0.1":              "10.0.0.1:80",
		"/path/only":                   "",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := HostKey(&http.Request{URL: u}); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
	// Without a host in the URL, the Host header's.
	if got := HostKey(&http.Request{URL: &url.URL{Path: "/"}, Host: "Svc.Internal:9000"}); got != "svc.internal:9000" {
		t.Errorf("Host header: %q", got)
	}
}

func TestTransportRejectionNeverCallsBaseAndPanicsAreIgnored(t *testing.T) {
	var calls atomic.Int64
	b := newBreaker(t, httpConfig())
	tr := &Transport{Breaker: b, Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		panic("base bug")
	})}
	req, _ := http.NewRequest(http.MethodGet, "http://upstream.test/", nil)
	func() {
		defer func() {
			if r := recover(); r != "base bug" {
				t.Fatalf("recovered %v", r)
			}
		}()
		tr.RoundTrip(req)
	}()
	if m := metrics(t, b); m.Ignored != 1 || m.Calls != 0 || calls.Load() != 1 {
		t.Fatalf("a panic counted: %+v", m)
	}
	b.TransitionTo(ForcedOpen)
	body := &trackedBody{Reader: strings.NewReader("x")}
	req, _ = http.NewRequest(http.MethodPost, "http://upstream.test/", body)
	resp, err := tr.RoundTrip(req)
	if resp != nil || !errors.Is(err, ErrRejected) || calls.Load() != 1 || !body.closed.Load() {
		t.Fatalf("forced open: %v %v, base called %d", resp, err, calls.Load())
	}
	// A bad Outcome from Classify is not a permit lost.
	b.Reset()
	tr = &Transport{Breaker: b, Classify: func(*http.Response, error) Outcome { return 9 },
		Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		})}
	req, _ = http.NewRequest(http.MethodGet, "http://upstream.test/", nil)
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if m := metrics(t, b); m.Ignored != 2 {
		t.Fatalf("bad outcome: %+v", m)
	}
}

type idleCloser struct {
	roundTripFunc
	closed bool
}

func (c *idleCloser) CloseIdleConnections() { c.closed = true }

func TestTransportForwardsCloseIdleConnections(t *testing.T) {
	base := &idleCloser{}
	(&http.Client{Transport: &Transport{Base: base}}).CloseIdleConnections()
	if !base.closed {
		t.Fatal("not forwarded")
	}
}

func TestPermitRecord(t *testing.T) {
	b := newBreaker(t, httpConfig())
	for _, o := range []Outcome{Success, Failure, Ignored} {
		p, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Record(Outcome(3)); err != ErrBadOutcome {
			t.Fatalf("bad outcome: %v", err)
		}
		if err := p.Record(o); err != nil {
			t.Fatal(err)
		}
		if err := p.Record(o); err != ErrPermitSpent {
			t.Fatalf("second record: %v", err)
		}
	}
	if m := metrics(t, b); m.Successes != 1 || m.Failures != 1 || m.Ignored != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestTransportConcurrentHosts(t *testing.T) {
	ups := []*upstream{newUpstream(t, 200), newUpstream(t, 200), newUpstream(t, 500)}
	reg, err := NewRegistry(RegistryConfig{Default: httpConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c := client(t, &Transport{Registry: reg})
	var rejected atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			up := ups[g%len(ups)]
			for i := 0; i < 25; i++ {
				code, err := get(c, up.URL)
				switch {
				case errors.Is(err, ErrRejected):
					rejected.Add(1)
				case err != nil:
					t.Error(err)
					return
				case code != int(up.status.Load()):
					t.Errorf("status %d", code)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if ups[0].hits.Load() != 100 || ups[1].hits.Load() != 100 {
		t.Fatalf("healthy hosts hit %d, %d times", ups[0].hits.Load(), ups[1].hits.Load())
	}
	if failing := ups[2].hits.Load(); failing+rejected.Load() != 100 || rejected.Load() == 0 {
		t.Fatalf("failing host hit %d times, %d rejected", failing, rejected.Load())
	}
}

func ExampleTransport() {
	reg, err := NewRegistry(RegistryConfig{Default: DefaultConfig()})
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	// One breaker per upstream host:port; a nil Base is http.DefaultTransport.
	client := &http.Client{Transport: &Transport{Registry: reg}, Timeout: 5 * time.Second}
	resp, err := client.Get("https://inventory.internal/items")
	var rejected *RejectedError
	switch {
	case errors.As(err, &rejected):
		fmt.Println("inventory is down; retry after", rejected.RetryAfter)
	case err != nil:
		fmt.Println(err)
	default:
		resp.Body.Close()
	}
}
