package functions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ManifestFile is the file LoadDir reads.
const ManifestFile = "associations.json"

// Manifest is the format of associations.json in a functions directory:
//
//	{"functions": {"profanity": {"file": "profanity.js", "timeout_ms": 50, "env": {"WORDS": "a,b"}},
//	               "translate": {"runtime": "http", "url": "http://localhost:9000/", "secret": "s"}},
//	 "associations": [{"pattern": "chat:*", "functions": ["profanity"], "on_error": "pass"}]}
type Manifest struct {
	Functions    map[string]ManifestFunction `json:"functions"`
	Associations []Association               `json:"associations"`
}

// ManifestFunction describes one function of a Manifest. Runtime defaults
// to "js" when File is set ("wasm" when it ends in .wasm), "http" when URL
// is set.
type ManifestFunction struct {
	Runtime        string            `json:"runtime,omitempty"`
	File           string            `json:"file,omitempty"`
	URL            string            `json:"url,omitempty"`
	Secret         string            `json:"secret,omitempty"`
	TimeoutMS      int               `json:"timeout_ms,omitempty"`
	Env            map[string]string `json:"env,omitempty"`
	MaxConcurrency int               `json:"max_concurrency,omitempty"`
	MaxMemoryMB    int               `json:"max_memory_mb,omitempty"`
	AllowHosts     []string          `json:"allow_hosts,omitempty"`
	// Language is "js" or "ts"; a File ending in .ts defaults to "ts".
	Language string `json:"language,omitempty"`
}

// LoadDir reads dir/associations.json and the JavaScript (or WebAssembly) files it names
// (relative to dir, which they may not leave). It returns the functions
// sorted by name and the associations in file order, unvalidated: deploy
// them with Engine.PutFunction and then Engine.PutAssociation (or the admin
// API) to get the engine's checks.
func LoadDir(dir string) ([]Function, []Association, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, nil, err
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	var fns []Function
	for _, name := range slices.Sorted(maps.Keys(m.Functions)) {
		mf := m.Functions[name]
		fn := Function{Name: name, Runtime: mf.Runtime, URL: mf.URL, Secret: mf.Secret,
			TimeoutMS: mf.TimeoutMS, Env: mf.Env, MaxConcurrency: mf.MaxConcurrency, MaxMemoryMB: mf.MaxMemoryMB, AllowHosts: mf.AllowHosts, Language: mf.Language}
		if fn.Runtime == "" {
			fn.Runtime = RuntimeJS
			if mf.URL != "" {
				fn.Runtime = RuntimeHTTP
			}
			if filepath.Ext(mf.File) == ".wasm" {
				fn.Runtime = RuntimeWasm
			}
		}
		if mf.File != "" {
			if !filepath.IsLocal(mf.File) {
				return nil, nil, fmt.Errorf("function %q: file %q is outside %s", name, mf.File, dir)
			}
			src, err := os.ReadFile(filepath.Join(dir, mf.File))
			if err != nil {
				return nil, nil, fmt.Errorf("function %q: %w", name, err)
			}
			if fn.Runtime == RuntimeWasm {
				fn.Module = src
			} else {
				fn.Source = string(src)
			}
			if mf.Language == "" && strings.HasSuffix(mf.File, ".ts") {
				fn.Language = "ts"
			}
		}
		if fn.Runtime == RuntimeJS && fn.Source == "" {
			return nil, nil, fmt.Errorf("function %q: js functions need a file", name)
		}
		fns = append(fns, fn)
	}
	return fns, m.Associations, nil
}
