package jsrt

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The watchdog stops invocations whose JavaScript keeps memory: the prelude
// refuses single huge allocations, but a loop that pushes or concatenates
// grows the heap one small allocation at a time. goja cannot account memory
// per VM, so the watchdog reads the process heap (runtime/metrics, about
// 3 µs a read) while invocations run:
//
//   - base is the live heap of the last GC when the invocation started
//     (kept current by a finalizer run after every GC, so starting costs an
//     atomic load), minus what the invocations already running, or just
//     stopped for their heap and not yet collected, have grown by; after
//     an invocation is stopped for its heap a GC runs a tick later, so that
//     its memory does not linger;
//   - after every GC, an invocation whose live heap grew past base+budget is
//     over budget (what it keeps, not its garbage, counts);
//   - between GCs, heap objects (live and garbage) past base+2×budget force
//     one GC (at most every gcEvery) so that a big heap's long GC cycle
//     cannot hide a fast-growing function.
//
// The heap is the process's: an invocation running while another function
// or the server grows the heap by more than its budget may be stopped too.
// The budget is per invocation; see docs/functions.md.
const (
	watchEvery = 5 * time.Millisecond
	gcEvery    = 50 * time.Millisecond
)

type watchdog struct {
	mu     sync.Mutex
	active map[*vmState]struct{}
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once

	samples []metrics.Sample
	lastGC  time.Time
	gcSoon  atomic.Bool
	gcAsked time.Time // guarded by mu

	// liveLatest is the live heap of the last GC, kept current by a
	// finalizer that runs after every GC: an invocation's base is read
	// from it when the invocation starts, at the cost of an atomic load.
	liveLatest atomic.Int64
	// pendingFree is what invocations stopped for their heap were holding
	// when they stopped: still counted in liveLatest until the GC that
	// collectSoon asked for. Guarded by mu.
	pendingFree int64
}

func newWatchdog() *watchdog {
	w := &watchdog{
		active: make(map[*vmState]struct{}),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		samples: []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/gc/heap/live:bytes"},
		},
	}
	_, live := w.read()
	w.liveLatest.Store(live)
	w.armSentinel()
	go w.loop()
	return w
}

type gcSentinel struct{ w *watchdog }

// armSentinel leaves an unreachable object whose finalizer, run after the
// next GC, refreshes liveLatest and arms the next one.
func (w *watchdog) armSentinel() {
	runtime.SetFinalizer(&gcSentinel{w}, func(s *gcSentinel) {
		select {
		case <-s.w.done:
			return
		default:
		}
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(sample)
		s.w.liveLatest.Store(int64(sample[0].Value.Uint64()))
		s.w.armSentinel()
	})
}

func (w *watchdog) close() { w.once.Do(func() { close(w.done) }) }

// watch starts watching v's invocation; unwatch must follow. Its base is
// the live heap now, less what the invocations already running (or just
// stopped for their heap) have grown by, which is theirs.
func (w *watchdog) watch(v *vmState, budget int64) {
	live := w.liveLatest.Load()
	w.mu.Lock()
	others := w.pendingFree
	for x := range w.active {
		others += max(live-x.wdBase, 0)
	}
	v.wdBase, v.wdBudget = max(live-others, 0), budget
	w.active[v] = struct{}{}
	first := len(w.active) == 1
	w.mu.Unlock()
	if first {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// unwatch stops watching v. After it returns the watchdog no longer
// interrupts v, so a pooled VM cannot be hit in its next invocation.
func (w *watchdog) unwatch(v *vmState) {
	w.mu.Lock()
	delete(w.active, v)
	v.limitMu.Lock()
	if v.heapStop {
		w.pendingFree += max(w.liveLatest.Load()-v.wdBase, 0)
	}
	v.limitMu.Unlock()
	w.mu.Unlock()
}

// collectSoon asks for a GC at the next tick. A VM stopped for its memory
// is garbage once retired; until a GC runs, the live-heap figure still
// counts it, and the next invocation's base would hide up to that much of
// its own growth.
func (w *watchdog) collectSoon() {
	w.mu.Lock()
	w.gcAsked = time.Now()
	w.mu.Unlock()
	w.gcSoon.Store(true)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watchdog) read() (objects, live int64) {
	metrics.Read(w.samples)
	objects, live = int64(w.samples[0].Value.Uint64()), int64(w.samples[1].Value.Uint64())
	w.liveLatest.Store(live)
	return objects, live
}

func (w *watchdog) loop() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		w.mu.Lock()
		idle := len(w.active) == 0
		w.mu.Unlock()
		if idle {
			select {
			case <-w.wake:
			case <-w.done:
				return
			}
		}
		select {
		case <-t.C:
		case <-w.done:
			return
		}
		w.check()
	}
}

func (w *watchdog) check() {
	// The GC a stopped invocation asked for runs one tick later, once its
	// VM is surely unreachable.
	if w.gcSoon.Load() {
		w.mu.Lock()
		asked := w.gcAsked
		w.mu.Unlock()
		if time.Since(asked) >= watchEvery {
			w.gcSoon.Store(false)
			runtime.GC()
			w.lastGC = time.Now()
			w.mu.Lock()
			w.pendingFree = 0
			w.mu.Unlock()
		}
	}
	objects, live := w.read()
	forceGC := false
	w.mu.Lock()
	for v := range w.active {
		// A base taken while an earlier invocation's garbage was still
		// counted as live (its GC had not run yet) would hide this one's
		// growth: once the live heap is seen below the base, that garbage
		// is gone and the base follows it down.
		if live < v.wdBase {
			v.wdBase = live
		}
		switch {
		case live-v.wdBase > v.wdBudget:
			v.stopForMemory(fmt.Sprintf("heap grew by %d MiB, the budget is %d MiB", (live-v.wdBase)>>20, v.wdBudget>>20), true)
		case objects-v.wdBase > 2*v.wdBudget:
			forceGC = true
		}
	}
	w.mu.Unlock()
	if !forceGC || time.Since(w.lastGC) < gcEvery {
		return
	}
	runtime.GC()
	w.lastGC = time.Now()
	_, live = w.read()
	w.mu.Lock()
	for v := range w.active {
		if live-v.wdBase > v.wdBudget {
			v.stopForMemory(fmt.Sprintf("heap grew by %d MiB, the budget is %d MiB", (live-v.wdBase)>>20, v.wdBudget>>20), true)
		}
	}
	w.mu.Unlock()
}
