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
//   - base is the live heap after the last GC when the invocation started,
//     lowered when a later GC finds less (the first figure may have counted
//     garbage): what a function kept before that GC may go unnoticed, which
//     bounds the miss by one GC cycle's growth;
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
	go w.loop()
	return w
}

func (w *watchdog) close() { w.once.Do(func() { close(w.done) }) }

// watch starts watching v's invocation; unwatch must follow. The base is
// taken at the next sample, so short invocations cost a map insert only.
func (w *watchdog) watch(v *vmState, budget int64) {
	w.mu.Lock()
	v.wdBase, v.wdBudget = -1, budget
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
	w.mu.Unlock()
}

// collectSoon asks for a GC at the next tick. A VM stopped for its memory
// is garbage once retired; until a GC runs, the live-heap figure still
// counts it, and the next invocation's base would hide up to that much of
// its own growth.
func (w *watchdog) collectSoon() {
	w.gcSoon.Store(true)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watchdog) read() (objects, live int64) {
	metrics.Read(w.samples)
	return int64(w.samples[0].Value.Uint64()), int64(w.samples[1].Value.Uint64())
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
	if w.gcSoon.Swap(false) {
		runtime.GC()
		w.lastGC = time.Now()
	}
	objects, live := w.read()
	forceGC := false
	w.mu.Lock()
	for v := range w.active {
		switch {
		case v.wdBase < 0 || live < v.wdBase:
			// The live heap of the last GC may still count garbage that
			// the next GC frees: the base follows it down.
			v.wdBase = live
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
		if v.wdBase >= 0 && live-v.wdBase > v.wdBudget {
			v.stopForMemory(fmt.Sprintf("heap grew by %d MiB, the budget is %d MiB", (live-v.wdBase)>>20, v.wdBudget>>20), true)
		}
	}
	w.mu.Unlock()
}
