package wasmrt

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// pool holds a function's instances: slots has a token per instance in
// existence (at most its capacity, so a function's memory is bounded by
// budget × pool size), idle the instances not in use.
type pool struct {
	idle   chan *vm
	slots  chan struct{}
	closed atomic.Bool
}

func newPool(size int) *pool {
	return &pool{idle: make(chan *vm, size), slots: make(chan struct{}, size)}
}

// take claims a slot for a new instance without waiting.
func (p *pool) take(ctx context.Context) bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *pool) release() { <-p.slots }

func (p *pool) put(v *vm) { p.idle <- v }

// get takes an idle instance or makes one, waiting at most wait for an
// instance of a full pool to come back: a pool whose instances are all
// stuck answers ErrUnavailable rather than queue callers forever.
func (in *instance) get(ctx context.Context, wait time.Duration) (*vm, error) {
	p := in.pool
	select {
	case v := <-p.idle:
		return v, nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, fmt.Errorf("%w: no instance of its pool of %d came free within %v", fnrt.ErrUnavailable, cap(p.slots), wait)
	case v := <-p.idle:
		return v, nil
	case p.slots <- struct{}{}:
		ictx, cancel := context.WithTimeout(ctx, instantiateTimeout(in.timeout))
		defer cancel()
		v, err := in.instantiate(ictx)
		if err != nil {
			p.release()
			return nil, fmt.Errorf("instantiate: %w", err)
		}
		return v, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for an instance: %w", ctx.Err())
	}
}

// put returns v to the pool, or closes it when the function was retired.
func (in *instance) put(v *vm) {
	if in.pool.closed.Load() {
		in.discard(v)
		return
	}
	in.pool.put(v)
	// Close may have drained the pool between the check and the put.
	if in.pool.closed.Load() {
		in.drain()
	}
}

// discard closes v (its memory is freed) and frees its slot.
func (in *instance) discard(v *vm) {
	_ = v.mod.Close(context.Background())
	in.pool.release()
}

func (in *instance) drain() {
	for {
		select {
		case v := <-in.pool.idle:
			in.discard(v)
		default:
			return
		}
	}
}

// Close closes the idle instances and the compiled module; instances in
// use are closed when their call returns. A Run after Close fails (the
// compiled module is gone) without crashing.
func (in *instance) Close() error {
	if in.pool.closed.Swap(true) {
		return nil
	}
	in.drain()
	return in.cm.Close(context.Background())
}
