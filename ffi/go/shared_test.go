package nanobreaker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestSharedHandlesInOneProcessAreOneBreaker(t *testing.T) {
	p := filepath.Join(t.TempDir(), "one")
	a, err := OpenShared(p, small(), SharedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenShared(p, small(), SharedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var heard []Transition
	b.OnTransition(func(tr Transition) { mu.Lock(); heard = append(heard, tr); mu.Unlock() })

	for i := 0; i < 4; i++ {
		_ = a.Execute(func() error { return errors.New("down") })
	}
	if a.State() != Open || b.State() != Open {
		t.Fatalf("a %v, b %v", a.State(), b.State())
	}
	if _, err := b.Allow(); !errors.Is(err, ErrRejected) {
		t.Fatalf("the other handle allowed a call: %v", err)
	}
	if m, _ := b.Metrics(); m.Failures != 4 || m.Rejected != 1 || m.Opens != 1 {
		t.Fatalf("metrics through the other handle %+v", m)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(heard) != 1 || heard[0].From != Closed || heard[0].To != Open || heard[0].Reason != ReasonFailureRate {
		t.Fatalf("heard %+v", heard)
	}
	mu.Unlock()
	if err := b.Reset(); err != nil || a.State() != Closed {
		t.Fatalf("reset through b: %v, a %v", err, a.State())
	}
	a.Close()
	if err := a.Sync(); err != ErrClosed {
		t.Fatalf("Sync after Close: %v", err)
	}
	if b.State() != Closed {
		t.Fatal("closing one handle closed the other")
	}
}

func TestSharedBareNameAndMode(t *testing.T) {
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skip("no /dev/shm")
	}
	name := fmt.Sprintf("go-test-%d-%d", os.Getpid(), rand.Int63())
	path := SharedPath(name)
	if path != "/dev/shm/nanobreaker-v4-"+name || SharedPath("/x/y") != "/x/y" {
		t.Fatalf("SharedPath %q", path)
	}
	defer os.Remove(path)
	b, err := OpenShared(name, small(), SharedOptions{Mode: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != name {
		t.Fatalf("name %q", b.Name())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("%v %v", st.Mode(), err)
	}
	c := small()
	c.Name = "another"
	var ce *ConfigError
	if _, err := OpenShared(name, c, SharedOptions{}); !errors.As(err, &ce) || ce.Field != "name" {
		t.Fatalf("another name: %v", err)
	}
	c.Name = name
	if same, err := OpenShared(name, c, SharedOptions{}); err != nil {
		t.Fatalf("its own name: %v", err)
	} else {
		same.Close()
	}
	for _, bad := range []string{"", "has space", "nul\x00"} {
		if _, err := OpenShared(bad, small(), SharedOptions{}); err == nil {
			t.Fatalf("name %q was taken", bad)
		}
	}
	if _, err := OpenShared(name, small(), SharedOptions{Mode: os.ModeDir | 0o600}); err == nil {
		t.Fatal("a directory mode was taken")
	}
}

func TestSharedConfigMismatchAndAdopt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cfg")
	first, err := OpenShared(p, small(), SharedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	other := small()
	other.MinimumCalls = 50
	_, err = OpenShared(p, other, SharedOptions{})
	var pe *os.PathError
	if !errors.Is(err, ErrConfigMismatch) || !errors.As(err, &pe) || pe.Path != p {
		t.Fatalf("mismatch: %v", err)
	}
	bad := small()
	bad.HalfOpenPermits = 0
	var ce *ConfigError
	if _, err := OpenShared(p, bad, SharedOptions{}); !errors.As(err, &ce) || ce.Field != "half_open_permits" {
		t.Fatalf("invalid config: %v", err)
	}
	adopted, err := OpenShared(p, other, SharedOptions{Adopt: true})
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	// The region's config (4 calls at least), not the one given (50).
	for i := 0; i < 4; i++ {
		_ = adopted.Execute(func() error { return errors.New("down") })
	}
	if adopted.State() != Open || first.State() != Open {
		t.Fatalf("adopted %v, first %v", adopted.State(), first.State())
	}
	// Or replaced: the config given (50 calls at least) becomes the
	// region's, for every handle.
	first.Reset()
	replaced, err := OpenShared(p, other, SharedOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer replaced.Close()
	if err := first.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		_ = first.Execute(func() error { return errors.New("down") })
	}
	if first.State() != Closed {
		t.Fatalf("replaced config not in force: %v", first.State())
	}
}

func TestSharedErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	junk := make([]byte, 64<<10)
	rand.New(rand.NewSource(7)).Read(junk)
	if err := os.WriteFile(garbage, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenShared(garbage, small(), SharedOptions{})
	var pe *os.PathError
	if !errors.Is(err, ErrSharedCorrupt) || !errors.As(err, &pe) || pe.Path != garbage {
		t.Fatalf("random bytes: %v", err)
	}
	if got, _ := os.ReadFile(garbage); !bytes.Equal(got, junk) {
		t.Fatal("the garbage file was changed")
	}
	missing := filepath.Join(dir, "no-such-dir", "region")
	_, err = OpenShared(missing, small(), SharedOptions{})
	var errno syscall.Errno
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &errno) || errno != syscall.ENOENT || !errors.As(err, &pe) || pe.Path != missing {
		t.Fatalf("missing directory: %v", err)
	}
	// An ordinary breaker: Sync delivers waiting events, no more.
	b, _ := New(small())
	defer b.Close()
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// --- Several processes -------------------------------------------------------

// The worker role, and what a worker needs: its slot, the region, the
// books, the start (Unix ns).
const (
	sharedWorkerEnv = "NANOBREAKER_GO_SHARED_WORKER"
	sharedRegionEnv = "NANOBREAKER_GO_SHARED_REGION"
	sharedBooksEnv  = "NANOBREAKER_GO_SHARED_BOOKS"
	sharedStartEnv  = "NANOBREAKER_GO_SHARED_START"
)

// The phases, from the start.
const (
	outageFrom   = 700 * time.Millisecond
	recoveryFrom = 1700 * time.Millisecond
	runEnd       = 2700 * time.Millisecond
	killAt       = 1200 * time.Millisecond // mid-outage
)

// Each worker's counters, one slot of bookFields words in the books file,
// written whole (one pwrite) after every change, so a killed worker's
// counts survive it, at most one step behind.
const (
	bAttempts = iota
	bAdmitted
	bRejected
	bRecorded
	bOutageRejected
	bookFields
)

func sharedConfig() Config {
	c := DefaultConfig()
	c.CountWindow = 20
	c.MinimumCalls = 10
	c.OpenWait = 100 * time.Millisecond
	c.MaxOpenWait = 200 * time.Millisecond
	c.Jitter = 0
	c.HalfOpenPermits = 3
	c.HalfOpenMaxWait = 300 * time.Millisecond
	c.Stripes = 4
	return c
}

// TestSharedWorker is a worker process of TestSharedAcrossProcesses; it
// does nothing unless that test started it.
func TestSharedWorker(t *testing.T) {
	role := os.Getenv(sharedWorkerEnv)
	if role == "" {
		return
	}
	slot, err := strconv.Atoi(role)
	if err != nil {
		t.Fatal(err)
	}
	startNs, err := strconv.ParseInt(os.Getenv(sharedStartEnv), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(0, startNs)
	books, err := os.OpenFile(os.Getenv(sharedBooksEnv), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer books.Close()
	b, err := OpenShared(os.Getenv(sharedRegionEnv), sharedConfig(), SharedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var counts [bookFields]uint64
	var buf [bookFields * 8]byte
	add := func(field int) {
		counts[field]++
		for i, v := range counts {
			binary.LittleEndian.PutUint64(buf[i*8:], v)
		}
		if _, err := books.WriteAt(buf[:], int64(slot*len(buf))); err != nil {
			t.Fatal(err)
		}
	}
	for {
		now := time.Since(start)
		if now >= runEnd {
			return
		}
		outage := now >= outageFrom && now < recoveryFrom
		add(bAttempts)
		p, err := b.Allow()
		if err != nil {
			if !errors.Is(err, ErrRejected) {
				t.Fatal(err)
			}
			add(bRejected)
			if outage {
				add(bOutageRejected)
			}
		} else {
			add(bAdmitted)
			time.Sleep(50 * time.Microsecond) // the call
			if outage {
				err = p.Failure()
			} else {
				err = p.Success()
			}
			if err != nil || p.FailedOpen() {
				t.Fatal(err, p.FailedOpen())
			}
			add(bRecorded)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// Six processes hammer one shared breaker through healthy, outage and
// recovery phases; two are killed with SIGKILL mid-outage. The books
// balance (within one step per killed worker), the breaker's own counters
// agree, it tripped in the outage (and this process's listener heard it),
// and it is closed at the end.
func TestSharedAcrossProcesses(t *testing.T) {
	const n = 6
	killed := map[int]bool{1: true, 4: true}
	dir := t.TempDir()
	region := filepath.Join(dir, "region")
	booksPath := filepath.Join(dir, "books")
	if err := os.WriteFile(booksPath, make([]byte, n*bookFields*8), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := OpenShared(region, sharedConfig(), SharedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var heard []Transition
	b.OnTransition(func(tr Transition) { mu.Lock(); heard = append(heard, tr); mu.Unlock() })

	start := time.Now().Add(300 * time.Millisecond) // time for every worker to start
	type worker struct {
		cmd  *exec.Cmd
		out  bytes.Buffer
		done chan error
	}
	workers := make([]*worker, n)
	for k := range workers {
		w := &worker{done: make(chan error, 1)}
		w.cmd = exec.Command(os.Args[0], "-test.run=^TestSharedWorker$", "-test.v")
		w.cmd.Env = append(os.Environ(),
			sharedWorkerEnv+"="+strconv.Itoa(k),
			sharedRegionEnv+"="+region,
			sharedBooksEnv+"="+booksPath,
			sharedStartEnv+"="+strconv.FormatInt(start.UnixNano(), 10))
		w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { w.done <- w.cmd.Wait() }()
		workers[k] = w
	}
	defer func() {
		for _, w := range workers {
			w.cmd.Process.Kill() // a no-op for the finished
		}
	}()

	readBooks := func() [n][bookFields]uint64 {
		raw, err := os.ReadFile(booksPath)
		if err != nil {
			t.Fatal(err)
		}
		var books [n][bookFields]uint64
		for k := range books {
			for f := range books[k] {
				books[k][f] = binary.LittleEndian.Uint64(raw[(k*bookFields+f)*8:])
			}
		}
		return books
	}

	time.Sleep(time.Until(start.Add(killAt)))
	for k := range killed {
		if err := workers[k].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	stateInOutage := b.State()
	deadline := time.After(runEnd + 20*time.Second)
	for k, w := range workers {
		select {
		case err := <-w.done:
			var exit *exec.ExitError
			switch wasKilled := killed[k]; {
			case wasKilled && !(errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL):
				t.Fatalf("worker %d was not killed: %v\n%s", k, err, w.out.String())
			case !wasKilled && err != nil:
				t.Fatalf("worker %d: %v\n%s", k, err, w.out.String())
			}
		case <-deadline:
			t.Fatalf("worker %d hangs:\n%s", k, w.out.String())
		}
	}

	books := readBooks()
	var sum [bookFields]uint64
	for k := range books {
		if books[k][bAttempts] == 0 {
			t.Fatalf("worker %d made no calls: %v", k, books)
		}
		for f, v := range books[k] {
			sum[f] += v
		}
	}
	m, err := b.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("books: attempts %d admitted %d rejected %d recorded %d (rejected in the outage %d); metrics %+v",
		sum[bAttempts], sum[bAdmitted], sum[bRejected], sum[bRecorded], sum[bOutageRejected], m)
	kills := uint64(len(killed))
	within := func(a, b uint64) bool { return a-b <= kills || b-a <= kills }
	if sum[bAttempts] < sum[bAdmitted]+sum[bRejected] || !within(sum[bAttempts], sum[bAdmitted]+sum[bRejected]) {
		t.Errorf("attempts %d, admitted %d + rejected %d", sum[bAttempts], sum[bAdmitted], sum[bRejected])
	}
	if sum[bAdmitted] < sum[bRecorded] || !within(sum[bAdmitted], sum[bRecorded]) {
		t.Errorf("admitted %d, recorded %d: only a killed worker leaves a permit unrecorded", sum[bAdmitted], sum[bRecorded])
	}
	// Outcomes recorded after the breaker moved on count as ignored (stale).
	if got := m.Successes + m.Failures + m.Ignored; !within(got, sum[bRecorded]) {
		t.Errorf("%d outcomes in the region, %d recorded by the workers", got, sum[bRecorded])
	}
	if !within(m.Rejected, sum[bRejected]) {
		t.Errorf("%d rejections in the region, %d by the workers", m.Rejected, sum[bRejected])
	}
	if stateInOutage == Closed || sum[bOutageRejected] == 0 || m.Opens == 0 || m.TransitionsByReason[ReasonFailureRate] == 0 {
		t.Errorf("no trip in the outage: state then %v, %d rejected; %+v", stateInOutage, sum[bOutageRejected], m)
	}

	// This process made no call, yet its listener heard the workers' trip.
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	trip := false
	for _, tr := range heard {
		trip = trip || tr.From == Closed && tr.To == Open
	}
	if !trip {
		t.Errorf("the listener did not hear Closed->Open: %+v", heard)
	}
	mu.Unlock()

	// Closed at the end: now, or after a few successful calls.
	for until := time.Now().Add(3 * time.Second); b.State() != Closed && time.Now().Before(until); {
		_ = b.Execute(func() error { return nil })
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		if err := b.Execute(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if b.State() != Closed {
		t.Fatalf("state %v at the end", b.State())
	}
}
