package nanobreaker

/*
#include <stdint.h>
#include <stdlib.h>
#include "nanobreaker.h"
*/
import "C"

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"
)

// ErrConfigMismatch is matched (errors.Is) by the error OpenShared returns
// when the shared breaker exists with another config and
// SharedOptions.Adopt is not set.
var ErrConfigMismatch = errors.New("nanobreaker: the shared breaker exists with another config")

// ErrSharedCorrupt is matched (errors.Is) by the error OpenShared returns
// when the file is not a region this library can use (garbage, another
// layout version, another kind of clock).
var ErrSharedCorrupt = errors.New("nanobreaker: not a usable shared breaker region")

// SharedOptions are OpenShared's settings beyond the breaker's Config.
// The zero value is usable.
type SharedOptions struct {
	// Mode is the file's permission bits (os.ModeSetuid, os.ModeSetgid
	// and os.ModeSticky allowed too) if this call creates it; 0 means
	// 0600, the owning user's processes only. Not subject to the umask.
	Mode os.FileMode
	// Adopt takes the region's config when it differs from the one
	// given, instead of failing with ErrConfigMismatch.
	Adopt bool
	// Replace makes cfg the region's config when it differs (a deploy
	// that changes thresholds; every other process takes it within
	// 10 ms). The window cannot change. Wins over Adopt.
	Replace bool
}

// SharedPath is the file of a shared breaker: nameOrPath itself if it
// holds a '/', else /dev/shm/nanobreaker-v4-<nameOrPath> (v4: the region
// layout version of the library this package is built for).
func SharedPath(nameOrPath string) string {
	if strings.Contains(nameOrPath, "/") {
		return nameOrPath
	}
	return "/dev/shm/nanobreaker-v4-" + nameOrPath
}

// OpenShared opens (or creates) the breaker that every process of the
// host opening nameOrPath shares: a bare name (1 to 200 of
// [A-Za-z0-9._-]) is the file /dev/shm/nanobreaker-v4-<name>, anything with
// a '/' is a path (see SharedPath). The result is an ordinary *Breaker:
// state, counters, trips and probes are the region's, seen by every
// process at once.
//
// The first opener's cfg is the region's (its Stripes too); a later one
// with another cfg gets an error matching ErrConfigMismatch unless
// opts.Adopt is set. cfg.Name is not used (a bare name names the breaker,
// a path leaves the name to the region): it must be "" or nameOrPath, or
// OpenShared returns a *ConfigError for field "name". cfg.FailClosed
// applies to this handle.
//
// Errors: a *ConfigError (cfg is invalid); an *os.PathError (naming the
// file) wrapping ErrConfigMismatch, ErrSharedCorrupt, the syscall.Errno of
// a failed system call (so errors.Is(err, fs.ErrNotExist) and the like
// work), or an invalid-argument error for a bad name or mode.
//
// Listeners added with OnTransition hear other processes' transitions
// too, delivered by a per-process watcher thread within about 10 ms (or
// at once by Sync), as other processes' Reconfigure calls are taken. A
// child process (one started by exec) opens the breaker itself.
func OpenShared(nameOrPath string, cfg Config, opts SharedOptions) (*Breaker, error) {
	path := SharedPath(nameOrPath)
	if cfg.Name != "" && cfg.Name != nameOrPath {
		return nil, &ConfigError{Field: "name"}
	}
	mode, ok := unixMode(opts.Mode)
	if !ok || strings.IndexByte(nameOrPath, 0) >= 0 {
		return nil, &os.PathError{Op: "open shared breaker", Path: path, Err: resultError(C.NB_INVALID_ARGUMENT)}
	}
	var flags C.uint32_t
	if opts.Adopt {
		flags |= C.NB_SHARED_ADOPT
	}
	if opts.Replace {
		flags |= C.NB_SHARED_REPLACE
	}
	raw := cfg.raw()
	name := C.CString(nameOrPath)
	defer C.free(unsafe.Pointer(name))
	var ptr *C.nb_breaker
	r, errno := C.nb_shared_open(name, &raw, C.uint32_t(mode), flags, &ptr)
	switch r {
	case C.NB_OK:
		return wrap(ptr, cfg.FailClosed, &stats{}), nil
	case C.NB_INVALID_CONFIG:
		return nil, configError(r, &raw)
	case C.NB_SHARED_IO:
		var e syscall.Errno
		if !errors.As(errno, &e) || e == 0 {
			e = syscall.EIO
		}
		return nil, &os.PathError{Op: "open shared breaker", Path: path, Err: e}
	default:
		return nil, &os.PathError{Op: "open shared breaker", Path: path, Err: resultError(r)}
	}
}

// unixMode is m as the bits of a Unix mode, if m holds only permission,
// setuid, setgid and sticky bits.
func unixMode(m os.FileMode) (uint32, bool) {
	const special = os.ModeSetuid | os.ModeSetgid | os.ModeSticky
	if m&^(os.ModePerm|special) != 0 {
		return 0, false
	}
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= syscall.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		u |= syscall.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		u |= syscall.S_ISVTX
	}
	return u, true
}

// Sync does now what this process's watcher thread does every 10 ms for
// a shared breaker: takes the region's config if another process
// reconfigured it, and delivers every transition this process's listeners
// have not heard (other processes' included), on this goroutine. For a
// breaker made by New, it delivers waiting events.
func (b *Breaker) Sync() error {
	if b.ptr == nil {
		return ErrClosed
	}
	r := C.nb_shared_sync(b.ptr)
	runtime.KeepAlive(b)
	if r != C.NB_OK {
		return resultError(r)
	}
	return nil
}
