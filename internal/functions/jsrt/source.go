package jsrt

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/transpile"
)

// errNoSourceMapFiles refuses source maps named by path or URL: goja's
// default loader would read any file of the server (a FIFO or /dev/zero
// would hang or exhaust it). Inline maps (data: URLs), which the
// transpiler writes, are read by the parser itself and stay supported.
var errNoSourceMapFiles = errors.New("source maps must be inline")

func refuseSourceMapFile(string) ([]byte, error) { return nil, errNoSourceMapFiles }

// SourceFile is the file name positions of fn's source are reported in.
func SourceFile(fn fnrt.Function) string {
	if fn.Language == transpile.LangTS {
		return fn.Name + ".ts"
	}
	return fn.Name + ".js"
}

// compileSource transpiles fn's source when it is TypeScript or an ES
// module, and compiles the script. Errors name the line of the source as
// deployed.
func compileSource(fn fnrt.Function) (*goja.Program, error) {
	file, src := SourceFile(fn), fn.Source
	lang := fn.Language
	if lang == "" {
		lang = transpile.LangJS
	}
	// Parsers recurse per nesting level: bound it for scripts too.
	if err := transpile.CheckNesting(src); err != nil {
		return nil, err
	}
	if transpile.Needed(lang, src) {
		out, err := transpile.Transpile(file, lang, src)
		if err != nil {
			return nil, err
		}
		src = out
	}
	ast, err := goja.Parse(file, src, parser.WithSourceMapLoader(refuseSourceMapFile))
	if err != nil {
		return nil, syntaxError(err)
	}
	prg, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, syntaxError(err)
	}
	return prg, nil
}

// throwSite is where the thrown value ex was raised in the user's source
// ("name.ts:7:11", through the source map), or "".
func throwSite(ex *goja.Exception) string {
	for _, f := range ex.Stack() {
		p := f.Position()
		if p.Line > 0 && p.Filename != "" {
			return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
		}
	}
	return ""
}

// stackFrame finds the first "(file:line:column" of an Error's stack.
var stackFrame = regexp.MustCompile(`\(([^()\s]+):(\d+):(\d+)`)

// stackSite is where an Error rejected by an async handler was created,
// read from its stack (positions there went through the source map too),
// or "".
func stackSite(val goja.Value) string {
	o, ok := val.(*goja.Object)
	if !ok {
		return ""
	}
	st := o.Get("stack")
	if st == nil || goja.IsUndefined(st) {
		return ""
	}
	m := stackFrame.FindStringSubmatch(st.String())
	if m == nil {
		return ""
	}
	return m[1] + ":" + m[2] + ":" + m[3]
}
