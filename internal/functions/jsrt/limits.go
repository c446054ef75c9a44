package jsrt

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/dop251/goja"
)

// DefaultMaxMemory is the memory budget of one invocation when the function
// sets no max_memory_mb.
const DefaultMaxMemory = 64 << 20

// Bounds of max_memory_mb.
const (
	MinMemoryMB = 1
	MaxMemoryMB = 1024
)

// errResourceLimit is the interrupt value of an invocation stopped for its
// memory; run reports it as fnrt.ErrResourceLimit.
var errResourceLimit = errors.New("resource limit")

// limits are the per-invocation caps the prelude enforces, derived from the
// memory budget: an array slot holds at least a 16-byte interface, a string
// character up to 2 bytes (goja keeps non-ASCII strings in UTF-16).
type limits struct {
	maxBytes  int64 // ArrayBuffer and typed-array bytes; the watchdog's budget
	maxLength int64 // elements of an array a native builtin may walk or build
	maxString int64 // characters of a string a native builtin may build
}

func newLimits(budget int64) limits {
	return limits{maxBytes: budget, maxLength: max(budget/16, 1024), maxString: max(budget/2, 1024)}
}

//go:embed prelude.js
var preludeSource string

// prelude is compiled once; every VM runs it before the function's code.
var prelude = goja.MustCompile("eddy-prelude.js", preludeSource, false)

// installLimits runs the prelude in v's VM. After it, the VM's builtins that
// could allocate without bound or loop natively over a huge length check
// their size first and stop the invocation through v.limit.
func (v *vmState) installLimits(l limits) error {
	vm := v.vm
	fn, err := vm.RunProgram(prelude)
	if err != nil {
		return fmt.Errorf("prelude: %w", err)
	}
	setup, ok := goja.AssertFunction(fn)
	if !ok {
		return errors.New("prelude: not a function")
	}
	L := vm.NewObject()
	_ = L.Set("maxBytes", l.maxBytes)
	_ = L.Set("maxLength", l.maxLength)
	_ = L.Set("maxString", l.maxString)
	_ = L.Set("limit", v.jsLimit)
	v.maxString = l.maxString
	v.maxLength = l.maxLength
	_ = L.Set("join", v.jsJoin)
	if _, err := setup(goja.Undefined(), vm.GlobalObject(), L); err != nil {
		return fmt.Errorf("prelude: %w", err)
	}
	return nil
}

// jsLimit is L.limit(what, n, max): it records why and stops the
// invocation. The thrown error could be caught, but the interrupt cannot:
// the VM stops at its next instruction and the VM is retired.
func (v *vmState) jsLimit(call goja.FunctionCall) goja.Value {
	v.stopForMemory(fmt.Sprintf("%s %s exceeds the limit of %s", call.Argument(0).String(),
		call.Argument(1).String(), call.Argument(2).String()), false)
	panic(v.vm.NewGoError(fmt.Errorf("%w: %s", errResourceLimit, v.limitReason)))
}

// stopForMemory marks the invocation as over its budget and interrupts it;
// heap says the watchdog saw the heap grow (rather than an allocation
// refused up front).
func (v *vmState) stopForMemory(reason string, heap bool) {
	v.limitMu.Lock()
	if v.limitReason == "" {
		v.limitReason = reason
	}
	v.heapStop = v.heapStop || heap
	v.limitMu.Unlock()
	v.halt.Store(true)
	v.vm.Interrupt(errResourceLimit)
}

// jsJoin is L.join(array, sep), the body of Array.prototype.join (and
// %TypedArray%.prototype.join) with the string limit checked as the result
// grows. Like goja's own join it returns "" for an array that contains
// itself.
func (v *vmState) jsJoin(call goja.FunctionCall) goja.Value {
	vm := v.vm
	o := call.Argument(0).ToObject(vm)
	for _, x := range v.joining {
		if x == o {
			return vm.ToValue("")
		}
	}
	v.joining = append(v.joining, o)
	defer func() { v.joining = v.joining[:len(v.joining)-1] }()

	n := toLength(o.Get("length"))
	if n > v.maxLength {
		v.jsLimit(goja.FunctionCall{Arguments: []goja.Value{vm.ToValue("array length"), vm.ToValue(n), vm.ToValue(v.maxLength)}})
	}
	var sep goja.String = v.asString(vm.ToValue(","))
	if a := call.Argument(1); !goja.IsUndefined(a) {
		sep = v.asString(a.ToString())
	}
	var b goja.StringBuilder
	var size int64
	for i := int64(0); i < n; i++ {
		if i > 0 {
			b.WriteString(sep)
			size += int64(sep.Length())
		}
		e := o.Get(strconv.FormatInt(i, 10))
		if e != nil && !goja.IsUndefined(e) && !goja.IsNull(e) {
			s := v.asString(e.ToString())
			b.WriteString(s)
			size += int64(s.Length())
		}
		if size > v.maxString {
			v.jsLimit(goja.FunctionCall{Arguments: []goja.Value{vm.ToValue("string length"), vm.ToValue(size), vm.ToValue(v.maxString)}})
		}
	}
	return b.String()
}

func (v *vmState) asString(val goja.Value) goja.String {
	if s, ok := val.(goja.String); ok {
		return s
	}
	s, _ := v.vm.ToValue(val.String()).(goja.String)
	return s
}

// toLength is ECMAScript ToLength.
func toLength(val goja.Value) int64 {
	if val == nil || goja.IsUndefined(val) {
		return 0
	}
	f := val.ToFloat()
	switch {
	case f != f || f <= 0:
		return 0
	case f >= 1<<53-1:
		return 1<<53 - 1
	}
	return int64(f)
}
