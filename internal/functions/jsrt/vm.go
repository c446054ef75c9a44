package jsrt

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// errRejected is thrown into JS by ctx.reject to stop the handler.
var errRejected = errors.New("rejected")

// maxLogBytes bounds one ctx.log line; MaxLogLines the lines of one
// invocation (more are dropped and counted, as are lines the function's
// rate limit refuses).
const (
	maxLogBytes = 1024
	MaxLogLines = 20
)

// vmState is one pooled VM with the objects it reuses between calls. It is
// used by one goroutine at a time.
type vmState struct {
	vm     *goja.Runtime
	handle goja.Callable
	parse  goja.Callable
	ctxObj *goja.Object
	in     *instance

	// halt is set when the invocation must stop (timer or memory), for the
	// Go loops (serializer) that goja's interrupt does not reach.
	halt atomic.Bool

	// Memory: the watchdog's view (guarded by watchdog.mu), the reason the
	// invocation was stopped, and the prelude's caps.
	wdBase, wdBudget     int64
	limitMu              sync.Mutex
	limitReason          string
	heapStop             bool
	maxString, maxLength int64
	joining              []*goja.Object // arrays being joined, for cycles

	logLines int // ctx.log lines of this invocation
	fetches  int // ctx.fetch calls of this invocation

	// deadline ends the invocation: ctx.kv calls, which block in Go where
	// the interrupt cannot reach, give up at it.
	deadline time.Time
	kvShared map[string]*goja.Object // ctx.kv.shared(name) objects, reused

	// timer interrupts the VM when an invocation runs too long; fired
	// receives once per expiry, after the interrupt is requested.
	timer *time.Timer
	fired chan struct{}

	// broken retires the VM instead of returning it to the pool;
	// memoryStopped says the watchdog stopped it for what it kept.
	broken, memoryStopped bool

	// message.data is parsed only when the handler reads it, and
	// stringified back only when it may have changed: a function that
	// passes messages through untouched costs no JSON work. dataGet and
	// dataSet are the accessor of the property; the rest is per call.
	dataGet, dataSet goja.Value
	rawData          []byte
	data             goja.Value
	dataParsed       bool
	dataErr          error

	// Per-call state written by the ctx methods.
	rejected bool
	reason   string
	fail     error
	publish  []fnrt.Message
}

var errInterrupt = errors.New("interrupted")

var promiseType = reflect.TypeOf((*goja.Promise)(nil))

func (in *instance) newVM() (*vmState, error) {
	vm := goja.New()
	vm.SetMaxCallStackSize(maxCallStack)
	v := &vmState{vm: vm, in: in, fired: make(chan struct{}, 1)}
	v.timer = time.AfterFunc(time.Hour, func() {
		v.halt.Store(true)
		vm.Interrupt(errInterrupt)
		v.fired <- struct{}{}
	})
	v.timer.Stop()

	if err := v.installLimits(in.limits); err != nil {
		return nil, err
	}
	// Capture the builtins before user code can replace them.
	jsonObj := vm.Get("JSON").ToObject(vm)
	v.parse, _ = goja.AssertFunction(jsonObj.Get("parse"))
	if err := jsonObj.Set("stringify", v.jsStringify); err != nil {
		return nil, fmt.Errorf("init: %v", err)
	}
	freeze, _ := goja.AssertFunction(vm.Get("Object").ToObject(vm).Get("freeze"))
	v.dataGet = vm.ToValue(func(goja.FunctionCall) goja.Value {
		if !v.dataParsed {
			v.dataParsed = true
			if v.data, v.dataErr = v.parseJSON(v.rawData); v.dataErr != nil {
				panic(vm.NewGoError(fmt.Errorf("message data: %w", v.dataErr)))
			}
		}
		return v.data
	})
	v.dataSet = vm.ToValue(func(call goja.FunctionCall) goja.Value {
		v.data, v.dataParsed = call.Argument(0), true
		return goja.Undefined()
	})

	env := vm.NewObject()
	for k, val := range in.env {
		_ = env.Set(k, val)
	}
	if _, err := freeze(goja.Undefined(), env); err != nil {
		return nil, fmt.Errorf("init: %v", err)
	}
	c := vm.NewObject()
	_ = c.Set("env", env)
	_ = c.Set("info", goja.Null())
	_ = c.Set("function", in.name)
	_ = c.Set("reject", v.jsReject)
	_ = c.Set("publish", v.jsPublish)
	_ = c.Set("log", v.jsLog)
	_ = c.Set("fetch", v.jsFetch)
	if in.cfg.KV != nil {
		_ = c.Set("kv", v.newKV(""))
	}
	if in.cfg.Secrets != nil {
		_ = c.Set("secrets", vm.NewDynamicObject(secretsObject{vm: vm, s: in.cfg.Secrets}))
	} else {
		_ = c.Set("secrets", vm.NewObject())
	}
	v.ctxObj = c

	// Run the top level under the same timeout as a call.
	err := v.guard(in.timeout, func() error {
		_, err := vm.RunProgram(in.prg)
		return err
	})
	if v.limitReason != "" {
		return nil, fmt.Errorf("top-level code: %w: %s", fnrt.ErrResourceLimit, v.limitReason)
	}
	if err != nil {
		var ie *goja.InterruptedError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("top-level code did not finish within %v", in.timeout)
		}
		return nil, fmt.Errorf("top-level code failed: %v", err)
	}
	h, ok := goja.AssertFunction(vm.Get("handle"))
	if !ok {
		return nil, errors.New("source must define function handle(message, ctx)")
	}
	v.handle = h
	return v, nil
}

// guard runs f with the interrupt timer armed and leaves the VM without a
// pending interrupt.
// While f runs the watchdog watches the VM's memory; an invocation it
// stopped (v.limitReason set) retires the VM, since an interrupt may still
// be pending.
func (v *vmState) guard(timeout time.Duration, f func() error) (err error) {
	v.halt.Store(false)
	v.deadline = time.Now().Add(timeout)
	v.limitReason, v.heapStop = "", false
	v.in.wd.watch(v, v.in.limits.maxBytes)
	v.timer.Reset(timeout)
	defer func() {
		v.in.wd.unwatch(v)
		if !v.timer.Stop() {
			<-v.fired
			v.vm.ClearInterrupt()
		}
		v.limitMu.Lock()
		if v.limitReason != "" {
			v.broken, v.memoryStopped = true, v.heapStop
		}
		v.limitMu.Unlock()
		if r := recover(); r != nil {
			v.broken = true
			// JavaScript run from Go outside a call (a getter of the
			// returned object) panics with goja's own errors.
			switch x := r.(type) {
			case *goja.InterruptedError:
				err = x
			case *goja.Exception:
				err = x
			case *goja.StackOverflowError:
				err = x
			default:
				err = fmt.Errorf("internal error: %v", r)
			}
		}
	}()
	return f()
}

func (v *vmState) run(msg fnrt.Message, timeout time.Duration) (fnrt.Result, error) {
	v.rejected, v.reason, v.fail, v.publish, v.logLines, v.fetches = false, "", nil, nil, 0, 0
	vm := v.vm

	var res fnrt.Result
	var outErr error      // the function's output is bad: a failure, not a crash
	var thrown goja.Value // an async handler's rejection
	v.rawData, v.data, v.dataParsed, v.dataErr = msg.Data, nil, false, nil
	defer func() { v.rawData, v.data = nil, nil }()
	// Everything that runs JavaScript or walks its values, reading and
	// serializing the output included, runs under the timeout and the
	// watchdog: a getter or a deep result cannot escape the budget.
	err := v.guard(timeout, func() error {
		info, err := v.parseJSON(msg.Info)
		if err != nil {
			info = goja.Null()
		}
		m := vm.NewObject()
		_ = m.Set("channel", msg.Channel)
		_ = m.Set("event", msg.Event)
		if err := m.DefineAccessorProperty("data", v.dataGet, v.dataSet, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
			return err
		}
		_ = m.Set("user", msg.User)
		_ = m.Set("ts", msg.TS)
		_ = v.ctxObj.Set("info", info)
		ret, err := v.handle(goja.Undefined(), m, v.ctxObj)
		if err != nil || v.fail != nil || v.rejected || v.dataErr != nil {
			return err
		}
		// An async handler returns a promise. Everything it awaits
		// (ctx.fetch, ctx.kv) is settled synchronously and goja runs the
		// continuations before the call returns, so the promise is
		// settled now unless it awaits something that never settles.
		// (ExportType first: Export of the message would read its data.)
		if o, ok := ret.(*goja.Object); ok && o.ExportType() == promiseType {
			if p, ok := o.Export().(*goja.Promise); ok {
				switch p.State() {
				case goja.PromiseStateFulfilled:
					ret = p.Result()
				case goja.PromiseStateRejected:
					thrown = p.Result() // as if a plain handler threw it
					return nil
				default:
					return errors.New("handle's promise never settled (it awaits something that is not ctx.fetch or ctx.kv)")
				}
			}
		}
		res, outErr = v.output(msg, m, ret)
		return nil
	})
	if v.limitReason != "" {
		return fnrt.Result{}, fmt.Errorf("%w: %s", fnrt.ErrResourceLimit, v.limitReason)
	}
	if v.fail != nil {
		return fnrt.Result{}, v.fail
	}
	if v.rejected {
		return fnrt.Result{Action: fnrt.Reject, Reason: v.reason}, nil
	}
	if v.dataErr != nil {
		return fnrt.Result{}, fmt.Errorf("message data: %w", v.dataErr)
	}
	if thrown != nil && err == nil && !v.halt.Load() {
		return fnrt.Result{Action: fnrt.Reject, Reason: valueReason(thrown), At: stackSite(thrown)}, nil
	}
	if v.halt.Load() && (err != nil || outErr != nil) {
		// The timer fired: whatever the call ended with (an interrupt, or
		// an error thrown by a Go builtin that saw the halt first), it is a
		// timeout.
		err = &goja.InterruptedError{}
	}
	if err != nil {
		var ie *goja.InterruptedError
		var so *goja.StackOverflowError
		var ex *goja.Exception
		switch {
		case errors.As(err, &ie):
			v.broken = true // its globals may be half-updated
			return fnrt.Result{}, fmt.Errorf("%w after %v", fnrt.ErrTimeout, timeout)
		case errors.As(err, &so):
			v.broken = true
			return fnrt.Result{}, errors.New("stack overflow")
		case errors.As(err, &ex):
			return fnrt.Result{Action: fnrt.Reject, Reason: v.exceptionReason(ex), At: throwSite(ex)}, nil
		default:
			return fnrt.Result{}, err
		}
	}
	if outErr != nil {
		return fnrt.Result{}, outErr
	}
	return res, nil
}

// output turns handle's return value into the Result; it runs inside guard.
func (v *vmState) output(msg fnrt.Message, m *goja.Object, ret goja.Value) (fnrt.Result, error) {
	var out *goja.Object
	switch {
	case goja.IsNull(ret):
		return fnrt.Result{Action: fnrt.Drop, Publish: v.publish}, nil
	case goja.IsUndefined(ret):
		out = m // no return: pass the message as the handler left it
	default:
		o, ok := ret.(*goja.Object)
		if !ok {
			return fnrt.Result{}, fmt.Errorf("handle returned %s, want the message object or null", ret.ExportType())
		}
		out = o
	}
	res := fnrt.Result{Action: fnrt.Pass, Message: msg, Publish: v.publish}
	if out == m && !v.dataParsed {
		// data was never read nor replaced: it is the input's, byte for byte.
		if err := v.readHeader(out, &res.Message); err != nil {
			return fnrt.Result{}, err
		}
		return res, nil
	}
	if err := v.readMessage(out, &res.Message); err != nil {
		return fnrt.Result{}, err
	}
	return res, nil
}

// readMessage copies channel, event and data from the returned object.
// Missing properties keep the input's values.
func (v *vmState) readMessage(o *goja.Object, dst *fnrt.Message) error {
	if err := v.readHeader(o, dst); err != nil {
		return err
	}
	data, err := v.toJSON(o.Get("data"))
	if err != nil {
		return fmt.Errorf("returned message.data: %w", err)
	}
	dst.Data = data
	return nil
}

// readHeader copies channel and event from the returned object.
func (v *vmState) readHeader(o *goja.Object, dst *fnrt.Message) error {
	if ch := o.Get("channel"); ch != nil && !goja.IsUndefined(ch) {
		s, ok := ch.Export().(string)
		if !ok {
			return errors.New("returned message.channel is not a string")
		}
		dst.Channel = s
	}
	if ev := o.Get("event"); ev != nil && !goja.IsUndefined(ev) {
		s, ok := ev.Export().(string)
		if !ok || len(s) > fnrt.MaxEventBytes {
			return fmt.Errorf("returned message.event must be a string of at most %d bytes", fnrt.MaxEventBytes)
		}
		dst.Event = s
	}
	return nil
}

func (v *vmState) parseJSON(raw []byte) (goja.Value, error) {
	if len(raw) == 0 {
		return goja.Null(), nil
	}
	return v.parse(goja.Undefined(), v.vm.ToValue(string(raw)))
}

// toJSON serializes a function's output value; undefined becomes null.
// Errors name what is wrong with the value; errJSONStop means the
// invocation was stopped meanwhile.
func (v *vmState) toJSON(val goja.Value) ([]byte, error) {
	if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return []byte("null"), nil
	}
	out, ok, err := v.serialize(val, fnrt.MaxDataBytes, nil, nil)
	switch {
	case errors.Is(err, errJSONSize):
		return nil, fmt.Errorf("data is larger than %d bytes, the limit", fnrt.MaxDataBytes)
	case errors.Is(err, errJSONStop):
		return nil, err
	case err != nil:
		var ex *goja.Exception
		if errors.As(err, &ex) {
			return nil, fmt.Errorf("serializing threw: %s", v.exceptionReason(ex))
		}
		var ie *goja.InterruptedError
		if errors.As(err, &ie) {
			return nil, errJSONStop
		}
		return nil, err
	case !ok:
		return []byte("null"), nil
	}
	return out, nil
}

// jsStringify is the VM's JSON.stringify (see json.go).
func (v *vmState) jsStringify(call goja.FunctionCall) goja.Value {
	out, ok, err := v.serialize(call.Argument(0), int(v.maxString), call.Argument(1), call.Argument(2))
	switch {
	case errors.Is(err, errJSONSize):
		v.jsLimit(goja.FunctionCall{Arguments: []goja.Value{v.vm.ToValue("JSON.stringify output"), v.vm.ToValue(len(out)), v.vm.ToValue(v.maxString)}})
	case errors.Is(err, errJSONDepth), errors.Is(err, errJSONCycle):
		panic(v.vm.NewTypeError("JSON.stringify: " + err.Error()))
	case errors.Is(err, errJSONStop):
		panic(v.vm.NewGoError(err)) // the pending interrupt stops the VM
	case err != nil:
		panic(err) // an exception from toJSON, a getter or the replacer; or the interrupt
	case !ok:
		return goja.Undefined()
	}
	return v.vm.ToValue(string(out))
}

func (v *vmState) exceptionReason(ex *goja.Exception) string { return valueReason(ex.Value()) }

// valueReason is the rejection reason of a thrown value: its message if
// it has one.
func valueReason(val goja.Value) string {
	if o, ok := val.(*goja.Object); ok {
		if msg := o.Get("message"); msg != nil && !goja.IsUndefined(msg) {
			return fnrt.Truncate(msg.String(), fnrt.MaxReasonBytes)
		}
	}
	if val == nil {
		return "function threw"
	}
	return fnrt.Truncate(val.String(), fnrt.MaxReasonBytes)
}

// jsReject is ctx.reject(reason): it marks the call rejected and throws to
// stop the handler. Catching the throw does not undo the rejection.
func (v *vmState) jsReject(call goja.FunctionCall) goja.Value {
	v.rejected = true
	v.reason = "rejected by function"
	if a := call.Argument(0); !goja.IsUndefined(a) && !goja.IsNull(a) {
		v.reason = fnrt.Truncate(a.String(), fnrt.MaxReasonBytes)
	}
	panic(v.vm.NewGoError(errRejected))
}

// jsPublish is ctx.publish(channel, event, data). Misuse is a failure of
// the function, not a rejection.
func (v *vmState) jsPublish(call goja.FunctionCall) goja.Value {
	failf := func(format string, args ...any) {
		v.fail = fmt.Errorf("ctx.publish: "+format, args...)
		panic(v.vm.NewGoError(v.fail))
	}
	if len(v.publish) >= fnrt.MaxPublish {
		failf("more than %d messages in one call", fnrt.MaxPublish)
	}
	ch, ok := call.Argument(0).Export().(string)
	if !ok || ch == "" {
		failf("channel must be a non-empty string")
	}
	ev, ok := call.Argument(1).Export().(string)
	if !ok || ev == "" || len(ev) > fnrt.MaxEventBytes {
		failf("event must be a non-empty string of at most %d bytes", fnrt.MaxEventBytes)
	}
	data, err := v.toJSON(call.Argument(2))
	if err != nil {
		failf("data: %v", err)
	}
	v.publish = append(v.publish, fnrt.Message{Channel: ch, Event: ev, Data: data})
	return goja.Undefined()
}

// jsLog is ctx.log: at most MaxLogLines lines per invocation, and only
// while the function's rate limit allows.
func (v *vmState) jsLog(call goja.FunctionCall) goja.Value {
	v.logLines++
	if v.logLines > MaxLogLines || (v.in.cfg.OnLog != nil && !v.in.cfg.OnLog()) {
		if v.in.cfg.OnLogDropped != nil {
			v.in.cfg.OnLogDropped()
		}
		return goja.Undefined()
	}
	// Redacted before it goes anywhere: the node's log and the function's
	// log stream (GET /api/v1/functions/{name}/logs) alike.
	line := v.in.redact(v.logLine(call.Arguments))
	v.in.cfg.Logger.Info(line)
	if v.in.cfg.OnLogLine != nil {
		v.in.cfg.OnLogLine(line)
	}
	return goja.Undefined()
}

func (v *vmState) logLine(args []goja.Value) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if o, ok := a.(*goja.Object); ok {
			if _, isFn := goja.AssertFunction(o); !isFn {
				if s, ok, err := v.serialize(o, maxLogBytes, nil, nil); err == nil && ok || errors.Is(err, errJSONSize) {
					b.Write(s) // a large value is cut at maxLogBytes below
					continue
				}
			}
		}
		b.WriteString(a.String())
		if b.Len() > maxLogBytes {
			break
		}
	}
	return fnrt.Truncate(b.String(), maxLogBytes)
}
