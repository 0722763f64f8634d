package nanobreaker

/*
#include "nanobreaker.h"
*/
import "C"

import "time"

// Config is a breaker's configuration; start from DefaultConfig.
type Config struct {
	// Name names the breaker (New only; a registry names its breakers by
	// key, OpenShared by the bare name). At most 256 bytes of UTF-8.
	Name                  string
	FailureRateThreshold  float64
	MinimumCalls          uint32
	CountWindow           uint32        // calls in a count window (when TimeWindow is 0)
	TimeWindow            time.Duration // a time window's length; 0 = count window
	TimeWindowBuckets     uint32
	SlowCallDuration      time.Duration // 0 = slow-call rule off
	SlowCallRateThreshold float64
	ConsecutiveFailures   uint32 // 0 = off
	OpenWait              time.Duration
	BackoffMultiplier     float64
	MaxOpenWait           time.Duration
	Jitter                float64
	HalfOpenPermits       uint32
	HalfOpenMaxWait       time.Duration
	Stripes               uint32 // 0 = by core count
	// FailClosed makes an internal library failure (NB_PANIC) an error
	// from Allow and Execute; by default the call goes through, unrecorded.
	FailClosed bool
}

// DefaultConfig returns every default (see the README's config table).
func DefaultConfig() Config {
	var c C.nb_config
	C.nb_config_default(&c, C.sizeof_nb_config)
	return Config{
		FailureRateThreshold:  float64(c.failure_rate_threshold),
		MinimumCalls:          uint32(c.minimum_calls),
		CountWindow:           uint32(c.window_size),
		TimeWindowBuckets:     10,
		SlowCallRateThreshold: float64(c.slow_call_rate_threshold),
		OpenWait:              time.Duration(c.open_wait_ns),
		BackoffMultiplier:     float64(c.backoff_multiplier),
		MaxOpenWait:           time.Duration(c.max_open_wait_ns),
		Jitter:                float64(c.jitter),
		HalfOpenPermits:       uint32(c.half_open_permits),
		HalfOpenMaxWait:       time.Duration(c.half_open_max_wait_ns),
	}
}

func nanos(d time.Duration) C.uint64_t {
	if d < 0 {
		return 0
	}
	return C.uint64_t(d)
}

func (c Config) raw() C.nb_config {
	var r C.nb_config
	C.nb_config_default(&r, C.sizeof_nb_config)
	r.failure_rate_threshold = C.double(c.FailureRateThreshold)
	r.minimum_calls = C.uint32_t(c.MinimumCalls)
	if c.TimeWindow != 0 {
		r.window_kind = C.NB_WINDOW_TIME
		r.window_size = C.uint32_t(c.TimeWindowBuckets)
		r.window_length_ns = nanos(c.TimeWindow)
	} else {
		r.window_kind = C.NB_WINDOW_COUNT
		r.window_size = C.uint32_t(c.CountWindow)
	}
	r.slow_call_duration_ns = nanos(c.SlowCallDuration)
	r.slow_call_rate_threshold = C.double(c.SlowCallRateThreshold)
	r.consecutive_failures = C.uint32_t(c.ConsecutiveFailures)
	r.open_wait_ns = nanos(c.OpenWait)
	r.backoff_multiplier = C.double(c.BackoffMultiplier)
	r.max_open_wait_ns = nanos(c.MaxOpenWait)
	r.jitter = C.double(c.Jitter)
	r.half_open_permits = C.uint32_t(c.HalfOpenPermits)
	r.half_open_max_wait_ns = nanos(c.HalfOpenMaxWait)
	r.stripes = C.uint32_t(c.Stripes)
	return r
}

// ConfigError names the configuration field that is out of range.
type ConfigError struct{ Field string }

func (e *ConfigError) Error() string { return "nanobreaker: invalid config field " + e.Field }
