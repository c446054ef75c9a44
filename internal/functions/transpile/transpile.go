// Package transpile turns function sources written in TypeScript or as ES
// modules into the plain script the JavaScript runtime (goja) runs, with an
// inline source map so that positions in errors and stack traces are the
// user's lines.
//
// It uses esbuild's Go API, in-process: nothing is read from or written to
// the file system (imports are refused), the input is bounded, and a build
// that takes longer than MaxDuration is abandoned with an error.
package transpile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/evanw/esbuild/pkg/api"
)

// Languages a function source may be written in.
const (
	LangJS = "js" // a script defining function handle, or an ES module
	LangTS = "ts" // TypeScript (script or module)
)

// Bounds of a transpilation.
const (
	// MaxSourceBytes bounds the input (the runtime's own source limit).
	MaxSourceBytes = 256 << 10
	// MaxNesting bounds how deeply brackets nest: parsers recurse per
	// level, and no hand-written function nests hundreds deep.
	MaxNesting = 256
	// MaxDuration bounds one transpilation.
	MaxDuration = 5 * time.Second
)

// ErrLimit is wrapped by errors of sources refused for their size, their
// nesting or the time their transpilation took.
var ErrLimit = errors.New("source_limit: function source exceeds the deploy limits")

// globalName holds the module's exports; the epilogue makes its handle
// (the default export, or a named export "handle") the global handle.
const globalName = "__eddy_module"

const epilogue = "\nvar handle = " + globalName + " && (typeof " + globalName + ".default === 'function' ? " +
	globalName + ".default : " + globalName + ".handle);\n"

// esmSyntax recognizes an ES module: a top-level export or import statement.
var esmSyntax = regexp.MustCompile(`(?m)^[ \t]*(export[ \t\n{*]|import[ \t\n{*"'])`)

// Needed reports whether a source in lang must be transpiled: TypeScript
// always, JavaScript when it is an ES module.
func Needed(lang, src string) bool {
	return lang == LangTS || esmSyntax.MatchString(src)
}

// CheckNesting refuses sources whose brackets nest deeper than MaxNesting.
// It skips strings, template literals and comments roughly (a regular
// expression literal holding brackets can skew the count; none nest that
// deep in practice).
func CheckNesting(src string) error {
	depth, deepest := 0, 0
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '(', '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if depth > MaxNesting {
					return fmt.Errorf("%w: brackets nest deeper than %d levels (line %d)", ErrLimit, MaxNesting, 1+strings.Count(src[:i], "\n"))
				}
			}
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		case '"', '\'', '`':
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '/':
			if i+1 < len(src) && src[i+1] == '/' {
				for i < len(src) && src[i] != '\n' {
					i++
				}
			} else if i+1 < len(src) && src[i+1] == '*' {
				end := strings.Index(src[i+2:], "*/")
				if end < 0 {
					return nil // unterminated: the parser names the error
				}
				i += end + 3
			}
		}
	}
	return nil
}

// Error is a syntax error in the user's source, at its line and column
// (1-based).
type Error struct {
	File         string
	Line, Column int
	Text         string
}

func (e *Error) Error() string {
	return fmt.Sprintf("syntax error at line %d, column %d: %s", e.Line, e.Column, e.Text)
}

// Transpile returns the script for src, named file (its extension is
// informative only), ending with an inline source map. lang is LangJS or
// LangTS. The script defines a global handle taken from the module's
// default export or its export named handle, or, for a TypeScript script
// without exports, the function handle it declares.
func Transpile(file, lang, src string) (string, error) {
	if len(src) > MaxSourceBytes {
		return "", fmt.Errorf("%w: source is %d bytes, the limit is %d", ErrLimit, len(src), MaxSourceBytes)
	}
	if err := CheckNesting(src); err != nil {
		return "", err
	}
	loader := api.LoaderJS
	if lang == LangTS {
		loader = api.LoaderTS
	}
	module := esmSyntax.MatchString(src)
	opts := api.BuildOptions{
		Stdin:          &api.StdinOptions{Contents: src, Sourcefile: file, Loader: loader},
		Bundle:         true, // so imports reach the plugin below, which refuses them
		Write:          false,
		Format:         api.FormatIIFE,
		Platform:       api.PlatformNeutral,
		Target:         api.ES2017,
		Sourcemap:      api.SourceMapInline,
		SourcesContent: api.SourcesContentExclude,
		LogLevel:       api.LogLevelSilent,
		Charset:        api.CharsetUTF8,
		Plugins:        []api.Plugin{noImports},
	}
	if module {
		opts.GlobalName = globalName
	} else {
		// A script (TypeScript without exports): keep its top-level
		// declarations global, as the runtime expects of a script.
		opts.Format = api.FormatDefault
		opts.Bundle = false
		opts.Plugins = nil
	}
	type outcome struct {
		res api.BuildResult
	}
	done := make(chan outcome, 1)
	go func() { done <- outcome{api.Build(opts)} }()
	var res api.BuildResult
	select {
	case o := <-done:
		res = o.res
	case <-time.After(MaxDuration):
		// esbuild cannot be cancelled mid-parse; the goroutine finishes
		// on its own (the input is bounded) and its result is dropped.
		return "", fmt.Errorf("%w: transpiling took longer than %v", ErrLimit, MaxDuration)
	}
	if len(res.Errors) > 0 {
		m := res.Errors[0]
		if m.Location != nil && m.Location.File == file {
			return "", &Error{File: file, Line: m.Location.Line, Column: m.Location.Column + 1, Text: m.Text}
		}
		return "", fmt.Errorf("transpile: %s", m.Text)
	}
	if len(res.OutputFiles) != 1 {
		return "", fmt.Errorf("transpile: esbuild produced %d files, want 1", len(res.OutputFiles))
	}
	out := string(res.OutputFiles[0].Contents)
	if !module {
		return out, nil
	}
	// The source map comment must stay the last line for goja to find it.
	i := strings.LastIndex(out, "//# sourceMappingURL=")
	if i < 0 {
		return out + epilogue, nil
	}
	return out[:i] + epilogue + out[i:], nil
}

// noImports refuses every import: a function is one file, and resolving
// paths would read the server's file system.
var noImports = api.Plugin{
	Name: "eddy-no-imports",
	Setup: func(b api.PluginBuild) {
		b.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
			if a.Kind == api.ResolveEntryPoint {
				return api.OnResolveResult{}, nil
			}
			return api.OnResolveResult{}, fmt.Errorf("cannot import %q: a function is a single file (imports are not supported)", a.Path)
		})
	},
}
