package functions_test

import (
	"context"
	"os"
	"testing"

	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/kvstore"
	"github.com/eddyrt/eddy/internal/functions/secrets"
	"github.com/eddyrt/eddy/internal/functions/transpile"
)

// BenchmarkApplyOneLineJSWithSecrets: the one-line function on an engine
// with a vault holding secrets: what redaction of every result costs when
// the function reads none.
func BenchmarkApplyOneLineJSWithSecrets(b *testing.B) {
	v, err := secrets.New(context.Background(), config.NewSecretsKey(), secrets.NewMemoryStore())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []string{"A_KEY", "B_KEY", "C_KEY"} {
		if err := v.Set(context.Background(), n, "value-of-"+n+"-0123456789"); err != nil {
			b.Fatal(err)
		}
	}
	e := newEngine(b, functions.Options{Secrets: v})
	deployJS(b, e, "id", `function handle(m){ return m }`, 0)
	associate(b, e, "chat:*", "", "id")
	benchApply(b, e, msg("chat:lobby", `{"text":"hello there","n":1}`), false)
}

// BenchmarkApplyKVCounterRedis: examples/functions/counter.js with the
// cluster store: one ctx.kv.incr (a Lua script) per message against a
// local redis-server.
func BenchmarkApplyKVCounterRedis(b *testing.B) {
	srv := redistest.Start(b)
	rb, err := redisbroker.New(redisbroker.Options{Addrs: []string{srv.URL()}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rb.Close() })
	src, err := os.ReadFile("../../examples/functions/counter.js")
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(b, functions.Options{KV: kvstore.NewRedis(rb)})
	deployJS(b, e, "counter", string(src), 1000)
	associate(b, e, "chat:*", "", "counter")
	benchApply(b, e, msg("chat:lobby", `{"text":"hi"}`), true)
}

// BenchmarkTranspileTemplate: transpiling a 30-line TypeScript module at
// deploy.
func BenchmarkTranspileTemplate(b *testing.B) {
	src := `type Msg = { channel: string; user: string; data: { text?: string; seq?: number } }
interface Ctx { kv: { incr(k: string, by?: number): number }; env: Record<string, string> }
const blocked: string[] = ["darn", "heck"]
function clean(text: string): string {
  let out = text
  for (const w of blocked) out = out.split(w).join("***")
  return out
}
export default function handle(message: Msg, ctx: Ctx): Msg | null {
  const text = message.data.text ?? ""
  if (text === "") return null
  message.data.text = clean(text)
  message.data.seq = ctx.kv.incr("seq:" + message.channel)
  return message
}
`
	for b.Loop() {
		if _, err := transpile.Transpile("f.ts", transpile.LangTS, src); err != nil {
			b.Fatal(err)
		}
	}
}
