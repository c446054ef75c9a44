// Command shout is an example WebAssembly function: it upper-cases the
// text of {"text": "..."} messages and refuses those that contain "spam"; the
// function's env variable SUFFIX, if set, is appended.
// It is the WebAssembly twin of the one-line JavaScript function in the
// benchmarks. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o shout.wasm ./shout
package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/eddyrt/eddy/examples/functions/wasm/eddyfn"
)

func init() {
	eddyfn.Handle(func(in eddyfn.Input) eddyfn.Output {
		var d struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(in.Data, &d); err != nil {
			return eddyfn.Reject("data must be an object with a text field")
		}
		if strings.Contains(strings.ToLower(d.Text), "spam") {
			return eddyfn.Reject("no spam, please")
		}
		d.Text = strings.ToUpper(d.Text) + os.Getenv("SUFFIX")
		data, _ := json.Marshal(d)
		return eddyfn.Output{Action: "pass", Message: &eddyfn.Message{Data: data}}
	})
}

func main() {}
