package functions_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eddyrt/eddy/internal/functions"
)

// loadExamples deploys examples/functions as `eddy functions apply` would.
func loadExamples(t testing.TB, opts functions.Options) *functions.Engine {
	t.Helper()
	fns, assocs, err := functions.LoadDir("../../examples/functions")
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, opts)
	for _, fn := range fns {
		if err := e.PutFunction(context.Background(), fn); err != nil {
			t.Fatalf("%s: %v", fn.Name, err)
		}
	}
	for _, a := range assocs {
		if err := e.PutAssociation(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func TestExamples(t *testing.T) {
	e := loadExamples(t, functions.Options{})
	ctx := context.Background()

	// profanity with the WORDS from associations.json, whole words only.
	res, err := e.Invoke(ctx, "profanity", msg("chat:a", `{"text":"Darn it, what the heck! darning is fine"}`))
	if err != nil || string(res.Message.Data) != `{"text":"*** it, what the ***! darning is fine"}` {
		t.Fatalf("profanity: %+v %v", res, err)
	}
	// profanity's default list applies when WORDS is unset.
	fn, _ := e.GetFunction(ctx, "profanity")
	fn.Name, fn.Env = "profanity2", nil
	if err := e.PutFunction(ctx, fn); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.Invoke(ctx, "profanity2", msg("chat:a", `"frak"`)); string(res.Message.Data) != `"***"` {
		t.Fatalf("profanity default words: %+v", res)
	}

	// enricher adds server_ts and the name from the token's info claim.
	m := msg("chat:a", `"hello"`)
	m.Info = json.RawMessage(`{"name":"Ada"}`)
	res, _ = e.Invoke(ctx, "enricher", m)
	var d map[string]any
	json.Unmarshal(res.Message.Data, &d)
	if d["value"] != "hello" || d["name"] != "Ada" || d["server_ts"].(float64) <= 0 {
		t.Fatalf("enricher: %s", res.Message.Data)
	}

	// The full chat:* chain: /help gets a bot answer that is not answered again.
	out := apply(t, e, msg("chat:lobby", `{"text":"/help darn"}`))
	var chat []functions.Message
	for _, m := range out {
		if !strings.HasPrefix(m.Channel, "stats:") {
			chat = append(chat, m)
		}
	}
	if len(chat) != 2 || chat[1].Event != "bot" || !strings.Contains(string(chat[1].Data), "Commands: /help, /time") ||
		!strings.Contains(string(chat[0].Data), `"text":"/help ***"`) {
		t.Fatalf("chat chain: %s", summary(out))
	}
	if res, _ := e.Invoke(ctx, "bot", functions.Message{Channel: "chat:a", Event: "bot", Data: json.RawMessage(`{"text":"/help"}`)}); len(res.Publish) != 0 {
		t.Fatalf("bot answered itself: %+v", res)
	}
	if res, _ := e.Invoke(ctx, "bot", msg("chat:a", `"/time"`)); len(res.Publish) != 1 || !strings.Contains(string(res.Publish[0].Data), "Server time") {
		t.Fatalf("bot /time: %+v", res)
	}

	// counter keeps an exact count per channel in ctx.kv, shared by the
	// function's VMs, and reports every REPORT_EVERY-th total once.
	e2 := newEngine(t, functions.Options{PoolSize: 4})
	fn, _ = e.GetFunction(ctx, "counter")
	fn.Env = map[string]string{"REPORT_EVERY": "50"}
	fn.TimeoutMS = 2000 // exactness is the point here; 50 ms is tight under -race on a busy machine
	if err := e2.PutFunction(ctx, fn); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				res, err := e2.Invoke(ctx, "counter", msg("chat:a", `1`))
				if err != nil || res.Action != "pass" {
					t.Errorf("counter: %+v %v", res, err)
					return
				}
				mu.Lock()
				for _, p := range res.Publish {
					reports = append(reports, p.Channel+" "+string(p.Data))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(reports)
	if want := []string{`stats:chat:a {"channel":"chat:a","count":100}`, `stats:chat:a {"channel":"chat:a","count":150}`,
		`stats:chat:a {"channel":"chat:a","count":200}`, `stats:chat:a {"channel":"chat:a","count":50}`}; !slices.Equal(reports, want) {
		t.Fatalf("counter reports: %q", reports)
	}
	if res, _ := e2.Invoke(ctx, "counter", msg("stats:chat:a", `1`)); len(res.Publish) != 0 || res.Action != "pass" {
		t.Fatalf("counter counted its own stats: %+v", res)
	}
}
