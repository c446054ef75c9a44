module github.com/eddyrt/eddy/examples/functions/wasm

go 1.24
