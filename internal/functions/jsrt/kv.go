package jsrt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/dop251/goja"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// maxKVTTL bounds ctx.kv.set's ttl option (seconds).
const maxKVTTL = 365 * 24 * 3600

// maxSharedCached bounds the ctx.kv.shared objects a VM keeps for reuse.
const maxSharedCached = 16

var sharedName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// newKV builds ctx.kv (shared "") or ctx.kv.shared(name). Every method
// runs against the store synchronously, bounded by the invocation's
// deadline. Misuse and store errors fail the invocation (like
// ctx.publish): a try/catch cannot hide a limit or a lost store.
func (v *vmState) newKV(shared string) *goja.Object {
	vm := v.vm
	scope := fnrt.KVScope(fnrt.DefaultApp, v.in.name, shared)
	o := vm.NewObject()
	_ = o.Set("get", func(call goja.FunctionCall) goja.Value {
		key := v.kvKey("get", call)
		ctx, cancel := v.kvContext()
		defer cancel()
		raw, ok, err := v.in.cfg.KV.Get(ctx, scope, key)
		v.kvCheck("get", ctx, err)
		if !ok {
			return goja.Undefined()
		}
		val, err := v.parseJSON(raw)
		v.kvCheck("get", ctx, err)
		return val
	})
	_ = o.Set("set", func(call goja.FunctionCall) goja.Value {
		key := v.kvKey("set", call)
		val := call.Argument(1)
		if goja.IsUndefined(val) {
			v.kvFail("set", errors.New("value is undefined (use ctx.kv.delete to remove a key)"))
		}
		data, ok, err := v.serialize(val, fnrt.MaxKVValueBytes, nil, nil)
		switch {
		case errors.Is(err, errJSONSize):
			v.kvFail("set", fmt.Errorf("%w: value is larger than %d bytes as JSON", fnrt.ErrKVLimit, fnrt.MaxKVValueBytes))
		case errors.Is(err, errJSONStop):
			panic(vm.NewGoError(err)) // the pending interrupt stops the VM
		case err != nil:
			v.kvFail("set", fmt.Errorf("value: %v", err))
		case !ok:
			v.kvFail("set", errors.New("value cannot be represented as JSON"))
		}
		var ttl float64
		if opts, isObj := call.Argument(2).(*goja.Object); isObj {
			if t := opts.Get("ttl"); t != nil && !goja.IsUndefined(t) {
				ttl = t.ToFloat()
				if !(ttl > 0 && ttl <= maxKVTTL) {
					v.kvFail("set", fmt.Errorf("ttl must be a number of seconds in (0, %d]", maxKVTTL))
				}
			}
		}
		ctx, cancel := v.kvContext()
		defer cancel()
		v.kvCheck("set", ctx, v.in.cfg.KV.Set(ctx, scope, key, data, secondsToDuration(ttl)))
		return goja.Undefined()
	})
	_ = o.Set("incr", func(call goja.FunctionCall) goja.Value {
		key := v.kvKey("incr", call)
		by := int64(1)
		if a := call.Argument(1); !goja.IsUndefined(a) {
			f := a.ToFloat()
			if f != math.Trunc(f) || math.Abs(f) > fnrt.MaxKVInt {
				v.kvFail("incr", fmt.Errorf("by must be an integer within ±2^53, got %s", a.String()))
			}
			by = int64(f)
		}
		ctx, cancel := v.kvContext()
		defer cancel()
		n, err := v.in.cfg.KV.Incr(ctx, scope, key, by)
		v.kvCheck("incr", ctx, err)
		return vm.ToValue(n)
	})
	_ = o.Set("delete", func(call goja.FunctionCall) goja.Value {
		key := v.kvKey("delete", call)
		ctx, cancel := v.kvContext()
		defer cancel()
		v.kvCheck("delete", ctx, v.in.cfg.KV.Delete(ctx, scope, key))
		return goja.Undefined()
	})
	if shared == "" {
		_ = o.Set("shared", func(call goja.FunctionCall) goja.Value {
			name, ok := call.Argument(0).Export().(string)
			if !ok || len(name) > fnrt.MaxKVNameBytes || !sharedName.MatchString(name) {
				v.kvFail("shared", fmt.Errorf("name must be 1 to %d letters, digits, '_', '-' or '.'", fnrt.MaxKVNameBytes))
			}
			if s, ok := v.kvShared[name]; ok {
				return s
			}
			s := v.newKV(name)
			if v.kvShared == nil {
				v.kvShared = map[string]*goja.Object{}
			}
			if len(v.kvShared) < maxSharedCached {
				v.kvShared[name] = s
			}
			return s
		})
	}
	return o
}

func secondsToDuration(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

// kvKey reads the key argument.
func (v *vmState) kvKey(op string, call goja.FunctionCall) string {
	key, ok := call.Argument(0).Export().(string)
	if !ok {
		v.kvFail(op, errors.New("key must be a string"))
	}
	return key
}

func (v *vmState) kvContext() (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), v.deadline)
}

// kvCheck fails the invocation on err; a store that did not answer before
// the deadline is the invocation's timeout.
func (v *vmState) kvCheck(op string, ctx context.Context, err error) {
	if err == nil {
		return
	}
	// The client may see the deadline pass before the context does.
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || !time.Now().Before(v.deadline) {
		v.kvFail(op, fmt.Errorf("%w: the store did not answer within the function's timeout", fnrt.ErrTimeout))
	}
	v.kvFail(op, err)
}

// kvFail records the failure and stops the invocation: the thrown error
// could be caught, the interrupt cannot. The interrupt may still be
// pending when the call ends, so the VM is retired.
func (v *vmState) kvFail(op string, err error) {
	v.fail = fmt.Errorf("ctx.kv.%s: %w", op, err)
	v.stop()
}
