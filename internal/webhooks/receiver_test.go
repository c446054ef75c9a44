package webhooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/eddyrt/eddy/internal/webhooks"
)

// post is one POST the receiver got.
type post struct {
	header http.Header
	body   []byte
	status int // what the receiver answered
}

// receiver is a real HTTP server that records every POST and answers
// with the statuses in plan, then 200.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []post
	// plan holds the statuses of the first answers.
	plan []int
	// hold, when set, makes the receiver wait for it to close before
	// answering (a slow receiver).
	hold chan struct{}
}

func newReceiver(t *testing.T, plan ...int) *receiver {
	r := &receiver{plan: plan}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		hold := r.hold
		status := http.StatusOK
		if len(r.plan) > 0 {
			status, r.plan = r.plan[0], r.plan[1:]
		}
		r.got = append(r.got, post{header: req.Header.Clone(), body: body, status: status})
		r.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return r.srv.URL + "/hooks" }

func (r *receiver) posts() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.got...)
}

// events are the events of every POST answered 2xx, in arrival order.
func (r *receiver) events(t testing.TB) []webhooks.Event {
	var out []webhooks.Event
	for _, p := range r.posts() {
		if p.status/100 != 2 {
			continue
		}
		var b webhooks.Body
		if err := json.Unmarshal(p.body, &b); err != nil {
			t.Fatalf("body %s: %v", p.body, err)
		}
		out = append(out, b.Events...)
	}
	return out
}

// named are the events named name.
func named(evs []webhooks.Event, name string) []webhooks.Event {
	var out []webhooks.Event
	for _, e := range evs {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}
