// Package precompile fills a WebAssembly compilation cache directory
// (wasmrt.NewCached) with modules, for tests under the race detector, where
// wazero's compiler itself is instrumented and takes tens of seconds for a
// Go module while the code it produces, and so the cache entry, is the
// same. wasmtest.Build runs its one test, TestPrecompile, as an ordinary
// (not -race) test binary: wazero names its cache entries after its version
// as the binary's build information gives it, which test binaries share and
// `go run` programs do not.
package precompile
