package jsrt

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// goja's JSON.stringify is one native call: it cannot be interrupted, its
// output has no size limit, and its cycle check makes it quadratic in the
// nesting depth (20,000 levels took 1.35 s). This serializer replaces it,
// both as the VM's JSON.stringify and for a function's output: it stops at
// maxJSONDepth levels, at a size limit, and as soon as the invocation is
// interrupted (the timer or the watchdog).

// maxJSONDepth bounds the nesting of serialized values.
const maxJSONDepth = 1000

var (
	errJSONDepth = errors.New("nested deeper than 1000 levels")
	errJSONSize  = errors.New("too large")
	errJSONCycle = errors.New("converting circular structure to JSON")
	errJSONStop  = errors.New("interrupted")
)

type jsonWriter struct {
	v        *vmState
	b        []byte
	limit    int
	replacer goja.Callable
	props    []string // replacer array
	gap      string
	indent   string
	stack    map[*goja.Object]struct{}
	nodes    int
}

// serialize returns the JSON text of val, ok=false when val serializes to
// undefined (a function, a symbol, undefined). Exceptions thrown by toJSON,
// getters or the replacer are returned as *goja.Exception.
func (v *vmState) serialize(val goja.Value, limit int, replacer goja.Value, space goja.Value) (out []byte, ok bool, err error) {
	w := &jsonWriter{v: v, limit: limit, stack: map[*goja.Object]struct{}{}}
	if err := w.setup(replacer, space); err != nil {
		return nil, false, err
	}
	holder := v.vm.NewObject()
	_ = holder.Set("", val)
	defer func() {
		if r := recover(); r != nil {
			e, isErr := r.(error)
			if !isErr {
				panic(r)
			}
			out, ok, err = w.b, false, e // what was written, for a log line
		}
	}()
	ok = w.property(holder, "", val, 0)
	return w.b, ok, nil
}

func (w *jsonWriter) setup(replacer, space goja.Value) error {
	if replacer != nil {
		if f, ok := goja.AssertFunction(replacer); ok {
			w.replacer = f
		} else if o, ok := replacer.(*goja.Object); ok && isArray(o) {
			seen := map[string]bool{}
			n := toLength(o.Get("length"))
			for i := int64(0); i < n; i++ {
				e := o.Get(strconv.FormatInt(i, 10))
				var k string
				switch x := e.Export().(type) {
				case string:
					k = x
				case int64, float64:
					k = e.String()
				default:
					if eo, ok := e.(*goja.Object); ok && (eo.ClassName() == "String" || eo.ClassName() == "Number") {
						k = e.String()
					} else {
						continue
					}
				}
				if !seen[k] {
					seen[k] = true
					w.props = append(w.props, k)
				}
			}
			if w.props == nil {
				w.props = []string{}
			}
		}
	}
	if space != nil {
		if o, ok := space.(*goja.Object); ok {
			switch o.ClassName() {
			case "Number":
				space = w.v.vm.ToValue(o.ToFloat())
			case "String":
				space = w.v.vm.ToValue(o.String())
			}
		}
		switch x := space.Export().(type) {
		case int64:
			w.gap = strings.Repeat(" ", int(min(max(x, 0), 10)))
		case float64:
			if x >= 1 {
				w.gap = strings.Repeat(" ", int(min(x, 10)))
			}
		case string:
			w.gap = x
			if utf8.RuneCountInString(x) > 10 {
				w.gap = string([]rune(x)[:10])
			}
		}
	}
	return nil
}

func isArray(o *goja.Object) bool { return o.ClassName() == "Array" }

func (w *jsonWriter) fail(err error) { panic(err) }

func (w *jsonWriter) call(f goja.Callable, this goja.Value, args ...goja.Value) goja.Value {
	r, err := f(this, args...)
	if err != nil {
		w.fail(err)
	}
	return r
}

func (w *jsonWriter) tick() {
	w.nodes++
	if w.nodes&255 == 0 && w.v.halt.Load() {
		w.fail(errJSONStop)
	}
	if len(w.b) > w.limit {
		w.fail(errJSONSize)
	}
}

// property writes SerializeJSONProperty(key, holder) with val = holder[key]
// already read; it reports false for undefined.
func (w *jsonWriter) property(holder *goja.Object, key string, val goja.Value, depth int) bool {
	w.tick()
	if o, ok := val.(*goja.Object); ok {
		if tj, ok := goja.AssertFunction(o.Get("toJSON")); ok {
			val = w.call(tj, o, w.v.vm.ToValue(key))
		}
	}
	if w.replacer != nil {
		val = w.call(w.replacer, holder, w.v.vm.ToValue(key), val)
	}
	if o, ok := val.(*goja.Object); ok {
		switch o.ClassName() {
		case "Number":
			val = w.v.vm.ToValue(o.ToFloat())
		case "String":
			val = w.v.vm.ToValue(o.String())
		case "Boolean":
			b, _ := o.Export().(bool)
			val = w.v.vm.ToValue(b)
		}
	}
	if val == nil || goja.IsUndefined(val) {
		return false
	}
	if goja.IsNull(val) {
		w.b = append(w.b, "null"...)
		return true
	}
	if o, ok := val.(*goja.Object); ok {
		if _, callable := goja.AssertFunction(o); callable {
			return false
		}
		if depth >= maxJSONDepth {
			w.fail(errJSONDepth)
		}
		if _, seen := w.stack[o]; seen {
			w.fail(errJSONCycle)
		}
		w.stack[o] = struct{}{}
		if isArray(o) {
			w.array(o, depth+1)
		} else {
			w.object(o, depth+1)
		}
		delete(w.stack, o)
		return true
	}
	switch x := val.Export().(type) {
	case bool:
		w.b = strconv.AppendBool(w.b, x)
	case string:
		w.quote(x)
	case int64:
		w.b = strconv.AppendInt(w.b, x, 10)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			w.b = append(w.b, "null"...)
		} else {
			w.b = append(w.b, val.String()...)
		}
	default:
		if val.ExportType() != nil && val.ExportType().String() == "*big.Int" {
			panic(w.v.vm.NewTypeError("Do not know how to serialize a BigInt"))
		}
		return false // symbols
	}
	return true
}

func (w *jsonWriter) newline(depth int) {
	if w.gap == "" {
		return
	}
	w.b = append(w.b, '\n')
	for range depth {
		w.b = append(w.b, w.gap...)
	}
}

func (w *jsonWriter) array(o *goja.Object, depth int) {
	n := toLength(o.Get("length"))
	w.b = append(w.b, '[')
	for i := int64(0); i < n; i++ {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.newline(depth)
		k := strconv.FormatInt(i, 10)
		if !w.property(o, k, o.Get(k), depth) {
			w.b = append(w.b, "null"...)
		}
	}
	if n > 0 {
		w.newline(depth - 1)
	}
	w.b = append(w.b, ']')
}

func (w *jsonWriter) object(o *goja.Object, depth int) {
	keys := w.props
	if keys == nil {
		keys = o.Keys()
	}
	w.b = append(w.b, '{')
	first := true
	for _, k := range keys {
		mark := len(w.b)
		if !first {
			w.b = append(w.b, ',')
		}
		w.newline(depth)
		w.quote(k)
		w.b = append(w.b, ':')
		if w.gap != "" {
			w.b = append(w.b, ' ')
		}
		if !w.property(o, k, o.Get(k), depth) {
			w.b = w.b[:mark]
			continue
		}
		first = false
	}
	if !first {
		w.newline(depth - 1)
	}
	w.b = append(w.b, '}')
}

const hexDigits = "0123456789abcdef"

// quote writes s as a JSON string. goja hands strings to Go as UTF-8 (a lone
// surrogate becomes U+FFFD), so the output is always valid UTF-8.
func (w *jsonWriter) quote(s string) {
	w.b = append(w.b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.b = append(w.b, s[start:i]...)
		switch c {
		case '"':
			w.b = append(w.b, '\\', '"')
		case '\\':
			w.b = append(w.b, '\\', '\\')
		case '\n':
			w.b = append(w.b, '\\', 'n')
		case '\r':
			w.b = append(w.b, '\\', 'r')
		case '\t':
			w.b = append(w.b, '\\', 't')
		case '\b':
			w.b = append(w.b, '\\', 'b')
		case '\f':
			w.b = append(w.b, '\\', 'f')
		default:
			w.b = append(w.b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		start = i + 1
	}
	w.b = append(w.b, s[start:]...)
	w.b = append(w.b, '"')
	if len(w.b) > w.limit {
		w.fail(errJSONSize)
	}
}
