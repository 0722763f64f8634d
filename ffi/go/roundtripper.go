package nanobreaker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Transport is an http.RoundTripper that puts a breaker in front of Base:
//
//	client := &http.Client{Transport: &nanobreaker.Transport{Breaker: b}}
//
// or, one breaker per upstream host, from a registry:
//
//	client := &http.Client{Transport: &nanobreaker.Transport{Registry: reg}}
//
// A request the breaker rejects never reaches Base: RoundTrip returns the
// breaker's *RejectedError (errors.Is(err, ErrRejected) holds, through the
// *url.Error that http.Client wraps it in, and errors.As gives its
// RetryAfter). An admitted request holds its permit until Base.RoundTrip
// returns, that is until the response head arrives (reading the body is
// not part of the call, for the slow-call rule either); the round trip is
// then counted as Classify says.
//
// A request whose context is cancelled before the response head arrives
// (the caller gave up; the upstream is not to blame) counts as Ignored,
// whatever Classify would say; a context deadline that passes, including
// http.Client.Timeout, is a failure: the upstream was too slow. A request
// whose context is already done when RoundTrip is called returns the
// context's error without asking the breaker or calling Base.
//
// Fail open: if no breaker can be had for a request (no key, or the
// registry cannot give one: it is full of open breakers, the key is too
// long, the registry is closed), the request goes to Base unprotected and
// unrecorded; the breaker never fails the service. An error from Allow
// other than a rejection (ErrClosed, or the library's failure with
// Config.FailClosed) is returned, and the request is not made.
//
// A Transport is safe for concurrent use; do not change its fields once
// it is in use. The zero Transport sends every request to
// http.DefaultTransport, unprotected.
type Transport struct {
	// Base makes the requests; nil means http.DefaultTransport.
	Base http.RoundTripper

	// Breaker, if set, guards every request.
	Breaker *Breaker

	// Registry, used when Breaker is nil, gives each request the breaker
	// named by its Key (made on first use from the registry's defaults and
	// templates), so that one failing upstream does not open the door to
	// the others. Each request takes a handle for its call and closes it
	// after, so an idle host's breaker may still be evicted (TTL).
	Registry *Registry

	// Key names a request's breaker in Registry; nil means HostKey. An
	// empty key lets the request through unprotected. Key by what you
	// call, not by who calls.
	Key func(*http.Request) string

	// Classify says how a round trip counts; nil means ClassifyHTTP. It
	// sees what Base.RoundTrip returned (one of the two is nil, as a
	// RoundTripper promises); it is not asked about a cancelled request.
	Classify func(*http.Response, error) Outcome
}

var _ http.RoundTripper = (*Transport)(nil)

// StatusOutcome classifies an HTTP status: 5xx, 408 (Request Timeout) and
// 429 (Too Many Requests) are failures, the other 4xx ignored (the
// request was at fault, not the server), anything else a success.
func StatusOutcome(code int) Outcome {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500 && code <= 599:
		return Failure
	case code >= 400 && code <= 499:
		return Ignored
	}
	return Success
}

// ClassifyHTTP is Transport's default Classify: an error (no response: a
// connection refused, reset or timed out) is a failure, a response counts
// by its status (StatusOutcome). Call it from a Classify of your own to
// change some cases only.
func ClassifyHTTP(resp *http.Response, err error) Outcome {
	if err != nil || resp == nil {
		return Failure
	}
	return StatusOutcome(resp.StatusCode)
}

// HostKey is Transport's default Key: the request's upstream as
// "host:port", the host lowercased (never the userinfo of user:pass@host),
// the port explicit or the scheme's (443 for https, else 80), from
// req.URL.Host, else req.Host; "" if there is neither. An IPv6 host keeps
// its brackets: "[::1]:8080".
func HostKey(req *http.Request) string {
	var host, scheme string
	if req.URL != nil {
		host, scheme = req.URL.Host, req.URL.Scheme
	}
	if host == "" {
		host = req.Host
	}
	u := url.URL{Host: host}
	name := u.Hostname()
	if name == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(name), port)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// breakerFor returns the request's breaker and whether RoundTrip must
// Close it (a registry handle), or nil to let the request through.
func (t *Transport) breakerFor(req *http.Request) (b *Breaker, owned bool) {
	if t.Breaker != nil {
		return t.Breaker, false
	}
	if t.Registry == nil {
		return nil, false
	}
	key := t.Key
	if key == nil {
		key = HostKey
	}
	k := key(req)
	if k == "" {
		return nil, false
	}
	b, err := t.Registry.Get(k)
	if err != nil {
		return nil, false // fail open (ErrRegistryFull, a bad key, a closed registry)
	}
	return b, true
}

// RoundTrip implements http.RoundTripper (see Transport).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	b, owned := t.breakerFor(req)
	if b == nil {
		return t.base().RoundTrip(req)
	}
	if owned {
		defer b.Close()
	}
	p, err := b.Allow()
	if err != nil {
		closeBody(req) // a RoundTripper closes the body, even on errors
		return nil, err
	}
	recorded := false
	defer func() {
		if !recorded { // Base or Classify panicked: count nothing
			p.Ignore()
		}
	}()
	resp, err := t.base().RoundTrip(req)
	var o Outcome
	switch {
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled)):
		o = Ignored
	case t.Classify != nil:
		o = t.Classify(resp, err)
	default:
		o = ClassifyHTTP(resp, err)
	}
	if p.Record(o) == ErrBadOutcome {
		p.Ignore()
	}
	recorded = true
	return resp, err
}

// CloseIdleConnections closes Base's idle connections, if it can
// (http.Client.CloseIdleConnections calls it).
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
