package redis

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
)

// commandCalls sums the calls of every command in INFO commandstats
// (commands run inside scripts included) and, separately, of EVALSHA.
func commandCalls(b *testing.B, c rueidis.Client) (all, evalsha int64) {
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
		if name == "cmdstat_info" {
			continue
		}
		all += n
		if name == "cmdstat_evalsha" {
			evalsha += n
		}
	}
	return all, evalsha
}

// BenchmarkPublish publishes a small message with history kept (size 100),
// to a channel one node is subscribed to, against a local redis-server on
// the same cores.
func BenchmarkPublish(b *testing.B) {
	srv := redistest.Start(b)
	br, _ := node(b, "bench", Options{}, srv)
	raw := rawClient(b, srv)
	ctx := context.Background()
	if err := br.Subscribe(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	opts := broker.ChannelOptions{HistorySize: 100}
	run := func(b *testing.B, parallel bool) {
		allBefore, evalBefore := commandCalls(b, raw)
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.SetParallelism(16) // 32 publishers on 2 cores: lets auto-pipelining batch
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if _, err := br.Publish(ctx, msg("bench", i), opts); err != nil {
						b.Error(err)
						return
					}
				}
			})
		} else {
			for i := 0; i < b.N; i++ {
				if _, err := br.Publish(ctx, msg("bench", i), opts); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		allAfter, evalAfter := commandCalls(b, raw)
		if testing.Verbose() {
			info, _ := raw.Do(ctx, raw.B().Info().Section("commandstats").Build()).ToString()
			b.Log(info)
		}
		b.ReportMetric(float64(evalAfter-evalBefore)/float64(b.N), "evalsha/op")
		b.ReportMetric(float64(allAfter-allBefore)/float64(b.N), "redis-cmds/op")
	}
	b.Run("single", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}
