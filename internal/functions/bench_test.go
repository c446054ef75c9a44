package functions_test

import (
	"context"
	"testing"

	"github.com/eddyrt/eddy/internal/functions"
)

func benchApply(b *testing.B, e *functions.Engine, m functions.Message, parallel bool) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.Apply(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if _, err := e.Apply(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func oneLine(b *testing.B) (*functions.Engine, functions.Message) {
	e := newEngine(b, functions.Options{})
	deployJS(b, e, "id", `function handle(m){ return m }`, 0)
	associate(b, e, "chat:*", "", "id")
	return e, msg("chat:lobby", `{"text":"hello there","n":1}`)
}

func profanity(b *testing.B) (*functions.Engine, functions.Message) {
	e := loadExamples(b, functions.Options{})
	if err := e.DeleteAssociation(context.Background(), "*"); err != nil { // profanity, enricher, bot only
		b.Fatal(err)
	}
	if err := e.PutAssociation(context.Background(), functions.Association{Pattern: "chat:*", Functions: []string{"profanity"}}); err != nil {
		b.Fatal(err)
	}
	return e, msg("chat:lobby", `{"text":"well darn, this is a heck of a message about nothing much"}`)
}

func BenchmarkApplyNoMatch(b *testing.B) {
	e, _ := oneLine(b)
	benchApply(b, e, msg("news:x", `{"text":"hi"}`), false)
}

func BenchmarkApplyOneLineJS(b *testing.B) {
	e, m := oneLine(b)
	benchApply(b, e, m, false)
}

func BenchmarkApplyOneLineJSParallel(b *testing.B) {
	e, m := oneLine(b)
	benchApply(b, e, m, true)
}

func BenchmarkApplyProfanity(b *testing.B) {
	e, m := profanity(b)
	benchApply(b, e, m, false)
}

func BenchmarkApplyProfanityParallel(b *testing.B) {
	e, m := profanity(b)
	benchApply(b, e, m, true)
}

func BenchmarkApplyExampleChain(b *testing.B) {
	e := loadExamples(b, functions.Options{})
	benchApply(b, e, msg("chat:lobby", `{"text":"well darn, hello"}`), true)
}
