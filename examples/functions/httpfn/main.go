// Command httpfn is an example HTTP function for Eddy: a "translation stub"
// that upper-cases the message text (message.data when it is a string, else
// message.data.text).
//
//	EDDY_FN_SECRET=s3cret go run ./examples/functions/httpfn -addr :9000
//	eddy functions deploy shout --url http://localhost:9000/ --secret s3cret
//	eddy associations set 'shout:*' shout
//
// Requests whose X-Eddy-Signature does not match the secret are refused with
// 401, which Eddy treats as a function failure (the association's on_error).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
)

type message struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	User    string          `json:"user,omitempty"`
	TS      int64           `json:"ts"`
}

type reply struct {
	Action  string    `json:"action"` // pass, drop or reject
	Message *message  `json:"message,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Publish []message `json:"publish,omitempty"`
}

func main() {
	addr := flag.String("addr", ":9000", "listen address")
	flag.Parse()
	http.Handle("POST /", handler([]byte(os.Getenv("EDDY_FN_SECRET"))))
	log.Printf("httpfn listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// handler verifies the signature and upper-cases the text.
func handler(secret []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if !validSignature(secret, body, r.Header.Get("X-Eddy-Signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		out := reply{Action: "pass", Message: &m}
		var s string
		var obj map[string]any
		switch {
		case json.Unmarshal(m.Data, &s) == nil:
			if strings.TrimSpace(s) == "" {
				out = reply{Action: "reject", Reason: "empty message"}
				break
			}
			m.Data, _ = json.Marshal(strings.ToUpper(s))
		case json.Unmarshal(m.Data, &obj) == nil:
			if text, ok := obj["text"].(string); ok {
				obj["text"] = strings.ToUpper(text)
				m.Data, _ = json.Marshal(obj)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

func validSignature(secret, body []byte, header string) bool {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(header), []byte(want))
}
