// Command abuse is a WebAssembly function that misbehaves on request, for
// Eddy's sandbox tests: the message data {"do": KIND} picks what it does.
//
//	hog    allocates without bound (stopped by the memory budget)
//	spin   loops forever (stopped by the timeout)
//	big    answers with 5 MiB of output (refused by the output cap)
//	panic  panics (the Go runtime exits the module with code 2)
//	echo   behaves: passes the message on
//	env    passes on {"value": $VALUE}
package main

import (
	"bytes"
	"encoding/json"
	"os"

	"github.com/eddyrt/eddy/examples/functions/wasm/eddyfn"
)

var hoard [][]byte

// spins is a global so that the compiler cannot prove the loop endless.
var spins uint64

func init() {
	eddyfn.HandleRaw(func(input []byte) []byte {
		if bytes.Contains(input, []byte(`"do":"big"`)) {
			// Raw, because encoding megabytes of JSON is slow in wasm.
			return bytes.Repeat([]byte(" "), 5<<20)
		}
		return eddyfn.Serve(input, handle)
	})
}

func handle(in eddyfn.Input) eddyfn.Output {
	var d struct {
		Do string `json:"do"`
	}
	_ = json.Unmarshal(in.Data, &d)
	switch d.Do {
	case "hog":
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1 // touch every page: this memory is really used
			}
			hoard = append(hoard, b)
		}
	case "spin":
		for spins != 1<<63 {
			spins++
			if spins == 1<<63-1 {
				spins = 0
			}
		}
	case "panic":
		var m map[string]int
		m["boom"]++
	case "env":
		data, _ := json.Marshal(map[string]string{"value": os.Getenv("VALUE")})
		return eddyfn.Output{Action: "pass", Message: &eddyfn.Message{Data: data}}
	}
	return eddyfn.PassOn(in)
}

func main() {}
