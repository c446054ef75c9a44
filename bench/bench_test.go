package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/servertest"
)

// TestFanoutDeliversEverythingOnce runs a short fanout against an
// in-process server: every accepted publish reaches every subscriber once.
func TestFanoutDeliversEverythingOnce(t *testing.T) {
	srv := servertest.Start(t)
	for _, fromClient := range []bool{false, true} {
		res, err := Run(context.Background(), Options{
			Scenario: "fanout", WS: []string{srv.WSURL}, API: []string{srv.APIBase()},
			APIKey: servertest.APIKey, Secret: servertest.Secret,
			Subscribers: 20, Rate: 200, Duration: 500 * time.Millisecond, FromClient: fromClient,
			DrainWait: 5 * time.Second, Quiet: true, Progress: io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent == 0 || res.Errors != 0 {
			t.Fatalf("from client %v: sent %d, errors %d %v", fromClient, res.Sent, res.Errors, res.ErrorSamples)
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.OffsetGaps != 0 || res.Received != res.Sent*20 {
			t.Fatalf("from client %v: sent %d, received %d (want %d), lost %d, duplicated %d, gaps %d",
				fromClient, res.Sent, res.Received, res.Sent*20, res.Lost, res.Duplicated, res.OffsetGaps)
		}
	}
}

// TestChannelsCountsPerChannel checks expectations are kept per channel.
func TestChannelsCountsPerChannel(t *testing.T) {
	srv := servertest.Start(t)
	res, err := Run(context.Background(), Options{
		Scenario: "channels", WS: []string{srv.WSURL}, API: []string{srv.APIBase()},
		APIKey: servertest.APIKey, Secret: servertest.Secret,
		Channels: 7, Subscribers: 2, Rate: 300, Duration: 300 * time.Millisecond,
		DrainWait: 5 * time.Second, Quiet: true, Progress: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Lost != 0 || res.Received != res.Sent*2 || res.Expected != res.Sent*2 {
		t.Fatalf("sent %d, received %d, expected %d, lost %d", res.Sent, res.Received, res.Expected, res.Lost)
	}
}

func TestScanMessage(t *testing.T) {
	line := []byte(`{"type":"message","channel":"c","event":"b","data":{"s":42,"t":1700000000123456},"id":"m-1","ts":1700000000123,"offset":7,"epoch":"E"}`)
	m, ok := scanMessage(line)
	if !ok || m.seq != 42 || m.sentMicros != 1700000000123456 || m.offset != 7 || m.serverTS != 1700000000123 {
		t.Fatalf("%+v %v", m, ok)
	}
	if string(frameType(line)) != "message" {
		t.Fatal(string(frameType(line)))
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for v := uint64(1); v <= 100000; v++ {
		h.add(v)
	}
	for _, c := range []struct {
		q    float64
		want uint64
	}{{0.5, 50000}, {0.99, 99000}} {
		got := h.quantile(c.q)
		if got < c.want*96/100 || got > c.want*104/100 {
			t.Fatalf("q%.2f = %d, want about %d", c.q, got, c.want)
		}
	}
	if h.max != 100000 {
		t.Fatal(h.max)
	}
}

// TestBatchScenario: a short batch run through POST /api/v1/batch; every
// item the server accepted reaches its channel's subscribers once.
func TestBatchScenario(t *testing.T) {
	srv := servertest.Start(t)
	res, err := Run(context.Background(), Options{
		Scenario: "batch", WS: []string{srv.WSURL}, API: []string{srv.APIBase()},
		APIKey: servertest.APIKey, Secret: servertest.Secret,
		Channels: 50, Subscribers: 1, Batch: 20, Rate: 2000, Duration: 500 * time.Millisecond,
		DrainWait: 5 * time.Second, Quiet: true, Progress: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Errors != 0 {
		t.Fatalf("sent %d, errors %d %v", res.Sent, res.Errors, res.ErrorSamples)
	}
	if res.Sent%20 != 0 || res.Lost != 0 || res.Duplicated != 0 || res.OffsetGaps != 0 || res.Received != res.Sent {
		t.Fatalf("sent %d (want whole batches of 20), received %d, lost %d, duplicated %d, gaps %d",
			res.Sent, res.Received, res.Lost, res.Duplicated, res.OffsetGaps)
	}
}
