package nanobreaker

/*
#include <stdbool.h>
#include <stdlib.h>
#include "nanobreaker.h"

// Keys cross as Go strings (_GoString_): no copy, no allocation.
static nb_result nbgo_registry_get(const nb_registry *r, _GoString_ key, nb_breaker **out) {
	return nb_registry_get(r, _GoStringPtr(key), _GoStringLen(key), out);
}
static nb_result nbgo_registry_find(const nb_registry *r, _GoString_ key, nb_breaker **out) {
	return nb_registry_find(r, _GoStringPtr(key), _GoStringLen(key), out);
}
static nb_result nbgo_registry_remove(const nb_registry *r, _GoString_ key) {
	return nb_registry_remove(r, _GoStringPtr(key), _GoStringLen(key));
}
*/
import "C"

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// ErrRegistryFull is returned by Get when the registry is at capacity and
// no breaker in it may be evicted (each is open, half-open or held).
var ErrRegistryFull = errors.New("nanobreaker: registry full")

// Template gives every breaker whose name matches Pattern ("payments.*")
// its Config; the first matching template wins.
type Template struct {
	Pattern string
	Config  Config
}

// RegistryConfig configures a Registry. The zero value is usable: every
// breaker gets DefaultConfig().
type RegistryConfig struct {
	Default   Config            // the zero Config means DefaultConfig()
	Templates []Template        // by name pattern, first match wins
	Named     map[string]Config // by exact name, before templates
	Capacity  int               // breakers held at most; 0 = 100000
	TTL       time.Duration     // closed breakers idle this long are evicted; 0 = never
	Stripes   uint32            // of every breaker; 0 = by core count
	MaxKeyLen int               // 0 = 256 bytes
	// RecordLatency makes every breaker time its calls, for the
	// nanobreaker_call_duration_seconds histogram of RenderPrometheus.
	RecordLatency bool
	// FailClosed applies to every breaker of the registry (see Config).
	FailClosed bool
}

// Registry holds named breakers, made on first use. Safe for concurrent
// use; Close it when done (breakers it handed out stay usable).
type Registry struct {
	ptr        *C.nb_registry
	failClosed bool
	stats      *stats
}

// NewRegistry makes a registry.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	var b *C.nb_registry_builder
	if r := C.nb_registry_builder_new(&b); r != C.NB_OK {
		return nil, resultError(r)
	}
	built := false
	defer func() {
		if !built {
			C.nb_registry_builder_free(b)
		}
	}()
	if cfg.Default != (Config{}) {
		raw := cfg.Default.raw()
		if r := C.nb_registry_builder_default_config(b, &raw); r != C.NB_OK {
			return nil, configError(r, &raw)
		}
	}
	for _, t := range cfg.Templates {
		if strings.IndexByte(t.Pattern, 0) >= 0 {
			return nil, resultError(C.NB_INVALID_ARGUMENT)
		}
		raw := t.Config.raw()
		p := C.CString(t.Pattern)
		r := C.nb_registry_builder_template(b, p, &raw)
		C.free(unsafe.Pointer(p))
		if r != C.NB_OK {
			return nil, configError(r, &raw)
		}
	}
	for name, c := range cfg.Named {
		if strings.IndexByte(name, 0) >= 0 {
			return nil, resultError(C.NB_INVALID_ARGUMENT)
		}
		raw := c.raw()
		n := C.CString(name)
		r := C.nb_registry_builder_named(b, n, &raw)
		C.free(unsafe.Pointer(n))
		if r != C.NB_OK {
			return nil, configError(r, &raw)
		}
	}
	if cfg.Capacity < 0 || cfg.MaxKeyLen < 0 || cfg.TTL < 0 {
		return nil, resultError(C.NB_INVALID_ARGUMENT)
	}
	C.nb_registry_builder_settings(b, C.size_t(cfg.Capacity), nanos(cfg.TTL), C.uint32_t(cfg.Stripes), C.size_t(cfg.MaxKeyLen))
	C.nb_registry_builder_record_latency(b, C.bool(cfg.RecordLatency))
	var ptr *C.nb_registry
	built = true // nb_registry_build consumes the builder whatever it returns
	if r := C.nb_registry_build(b, &ptr); r != C.NB_OK {
		return nil, resultError(r)
	}
	reg := &Registry{ptr: ptr, failClosed: cfg.FailClosed, stats: &stats{}}
	runtime.SetFinalizer(reg, (*Registry).Close)
	return reg, nil
}

// Close frees the registry. Idempotent; must not race with other calls.
func (r *Registry) Close() {
	if r.ptr != nil {
		C.nb_registry_free(r.ptr)
		r.ptr = nil
		runtime.SetFinalizer(r, nil)
	}
}

// handOut wraps a handle the library gave for key.
func (r *Registry) handOut(res C.nb_result, ptr *C.nb_breaker) (*Breaker, error) {
	switch res {
	case C.NB_OK:
		return wrap(ptr, r.failClosed, r.stats), nil
	case C.NB_REGISTRY_FULL:
		return nil, ErrRegistryFull
	default:
		return nil, resultError(res)
	}
}

// Get returns the breaker named key, made now if there is none (two
// goroutines asking for a new key get the same breaker). Each call gives
// a new *Breaker handle; Close it (or let the finalizer) when done. While
// a handle is open, the breaker is never evicted.
func (r *Registry) Get(key string) (*Breaker, error) {
	if r.ptr == nil {
		return nil, ErrClosed
	}
	var ptr *C.nb_breaker
	res := C.nbgo_registry_get(r.ptr, key, &ptr)
	runtime.KeepAlive(r)
	return r.handOut(res, ptr)
}

// Find returns the breaker named key if the registry has one.
func (r *Registry) Find(key string) (*Breaker, bool) {
	if r.ptr == nil {
		return nil, false
	}
	var ptr *C.nb_breaker
	res := C.nbgo_registry_find(r.ptr, key, &ptr)
	runtime.KeepAlive(r)
	b, err := r.handOut(res, ptr)
	return b, err == nil
}

// Remove takes key's breaker out of the registry (handles to it stay
// usable); whether there was one.
func (r *Registry) Remove(key string) bool {
	if r.ptr == nil {
		return false
	}
	res := C.nbgo_registry_remove(r.ptr, key)
	runtime.KeepAlive(r)
	return res == C.NB_OK
}

// Len is the number of breakers held.
func (r *Registry) Len() int {
	n := int(C.nb_registry_len(r.ptr))
	runtime.KeepAlive(r)
	return n
}

// EvictIdle evicts the closed breakers idle for the TTL that no handle
// holds; it returns how many went.
func (r *Registry) EvictIdle() int {
	n := int(C.nb_registry_evict_idle(r.ptr))
	runtime.KeepAlive(r)
	return n
}

// RenderPrometheus returns every breaker's metrics in the Prometheus text
// format, read now: serve it from a /metrics handler.
func (r *Registry) RenderPrometheus() (string, error) {
	if r.ptr == nil {
		return "", ErrClosed
	}
	var text *C.char
	var n C.size_t
	res := C.nb_registry_render_prometheus(r.ptr, &text, &n)
	runtime.KeepAlive(r)
	if res != C.NB_OK {
		return "", resultError(res)
	}
	defer C.nb_string_free(text)
	if uint64(n) > math.MaxInt32 {
		return "", errors.New("nanobreaker: Prometheus text over 2 GiB")
	}
	return C.GoStringN(text, C.int(n)), nil
}
