package jsrt

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// errRejected is thrown into JS by ctx.reject to stop the handler.
var errRejected = errors.New("rejected")

// maxLogBytes bounds one ctx.log line.
const maxLogBytes = 1024

// vmState is one pooled VM with the objects it reuses between calls. It is
// used by one goroutine at a time.
type vmState struct {
	vm        *goja.Runtime
	handle    goja.Callable
	parse     goja.Callable
	stringify goja.Callable
	ctxObj    *goja.Object

	// timer interrupts the VM when an invocation runs too long; fired
	// receives once per expiry, after the interrupt is requested.
	timer *time.Timer
	fired chan struct{}

	// broken retires the VM instead of returning it to the pool.
	broken bool

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

func (in *instance) newVM() (*vmState, error) {
	vm := goja.New()
	vm.SetMaxCallStackSize(maxCallStack)
	v := &vmState{vm: vm, fired: make(chan struct{}, 1)}
	v.timer = time.AfterFunc(time.Hour, func() {
		vm.Interrupt(errInterrupt)
		v.fired <- struct{}{}
	})
	v.timer.Stop()

	// Capture the builtins before user code can replace them.
	jsonObj := vm.Get("JSON").ToObject(vm)
	v.parse, _ = goja.AssertFunction(jsonObj.Get("parse"))
	v.stringify, _ = goja.AssertFunction(jsonObj.Get("stringify"))
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
	_ = c.Set("log", func(call goja.FunctionCall) goja.Value {
		in.cfg.Logger.Info(v.logLine(call.Arguments))
		return goja.Undefined()
	})
	v.ctxObj = c

	// Run the top level under the same timeout as a call.
	err := v.guard(in.timeout, func() error {
		_, err := vm.RunProgram(in.prg)
		return err
	})
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
func (v *vmState) guard(timeout time.Duration, f func() error) (err error) {
	v.timer.Reset(timeout)
	defer func() {
		if !v.timer.Stop() {
			<-v.fired
			v.vm.ClearInterrupt()
		}
		if r := recover(); r != nil {
			v.broken = true
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return f()
}

func (v *vmState) run(msg fnrt.Message, timeout time.Duration) (fnrt.Result, error) {
	v.rejected, v.reason, v.fail, v.publish = false, "", nil, nil
	vm := v.vm

	var ret goja.Value
	var m *goja.Object
	v.rawData, v.data, v.dataParsed, v.dataErr = msg.Data, nil, false, nil
	defer func() { v.rawData, v.data = nil, nil }()
	err := v.guard(timeout, func() error {
		info, err := v.parseJSON(msg.Info)
		if err != nil {
			info = goja.Null()
		}
		m = vm.NewObject()
		_ = m.Set("channel", msg.Channel)
		_ = m.Set("event", msg.Event)
		if err := m.DefineAccessorProperty("data", v.dataGet, v.dataSet, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
			return err
		}
		_ = m.Set("user", msg.User)
		_ = m.Set("ts", msg.TS)
		_ = v.ctxObj.Set("info", info)
		ret, err = v.handle(goja.Undefined(), m, v.ctxObj)
		return err
	})
	if v.fail != nil {
		return fnrt.Result{}, v.fail
	}
	if v.rejected {
		return fnrt.Result{Action: fnrt.Reject, Reason: v.reason}, nil
	}
	if v.dataErr != nil {
		return fnrt.Result{}, fmt.Errorf("message data: %w", v.dataErr)
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
			return fnrt.Result{Action: fnrt.Reject, Reason: v.exceptionReason(ex)}, nil
		default:
			return fnrt.Result{}, err
		}
	}
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

// toJSON stringifies val; undefined becomes null.
func (v *vmState) toJSON(val goja.Value) ([]byte, error) {
	if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return []byte("null"), nil
	}
	s, err := v.stringify(goja.Undefined(), val)
	if err != nil {
		return nil, err
	}
	if goja.IsUndefined(s) {
		return []byte("null"), nil
	}
	str := s.String()
	if len(str) > fnrt.MaxDataBytes {
		return nil, fmt.Errorf("data is %d bytes, the limit is %d", len(str), fnrt.MaxDataBytes)
	}
	return []byte(str), nil
}

func (v *vmState) exceptionReason(ex *goja.Exception) string {
	val := ex.Value()
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

func (v *vmState) logLine(args []goja.Value) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if o, ok := a.(*goja.Object); ok {
			if _, isFn := goja.AssertFunction(o); !isFn {
				if s, err := v.stringify(goja.Undefined(), o); err == nil && !goja.IsUndefined(s) {
					b.WriteString(s.String())
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
