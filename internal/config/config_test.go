package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "eddy.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNamespaceOptionsLoad(t *testing.T) {
	path := writeConfig(t, `
channel_defaults: { history_size: 3 }
namespaces:
  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }
  feed: { history_size: 10000 }
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ChannelOptions{HistorySize: 100, HistoryTTL: 10 * time.Minute, Presence: true, JoinLeave: true}
	if got := c.ChannelOptionsFor("chat:lobby"); got != want {
		t.Fatalf("chat:lobby = %+v, want %+v", got, want)
	}
	if got := c.ChannelOptionsFor("feed:x"); got.HistorySize != 10000 || got.Presence {
		t.Fatalf("feed:x = %+v", got)
	}
	// No namespace, or an unknown one: the defaults.
	for _, ch := range []string{"lobby", "other:x", ":x"} {
		if got := c.ChannelOptionsFor(ch); got != (ChannelOptions{HistorySize: 3}) {
			t.Fatalf("%s = %+v, want the defaults", ch, got)
		}
	}
}

func TestUnknownKeysAreRejectedByName(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"namespace option", "namespaces:\n  chat: { history_size: 10, histroy_ttl: 1m }\n", `unknown channel option "histroy_ttl" in namespace "chat"`},
		{"default option", "channel_defaults: { presense: true }\n", `unknown channel option "presense" in channel_defaults`},
		{"top-level key", "listn: \":80\"\n", `unknown key "listn"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, c.body), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %s", err, c.want)
			}
		})
	}
}

func TestChannelOptionValidation(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"join_leave without presence", "namespaces:\n  chat: { join_leave: true }\n", "namespaces.chat: join_leave needs presence: true"},
		{"negative history", "namespaces:\n  chat: { history_size: -1 }\n", "namespaces.chat: history_size"},
		{"huge history", "namespaces:\n  chat: { history_size: 2000000 }\n", "history_size: must be 0-1000000"},
		{"negative ttl", "channel_defaults: { history_ttl: -1s }\n", "channel_defaults: history_ttl"},
		{"bad ttl", "namespaces:\n  chat: { history_ttl: soon }\n", "history_ttl"},
		{"ping interval", "ping_interval: 0s\n", "ping_interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, c.body), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestMaxBatchAndCompressionSettings: the batch limit and compression come
// from file, environment and flags like every setting, and a batch limit
// out of range is refused by name.
func TestMaxBatchAndCompressionSettings(t *testing.T) {
	c, err := Load(writeConfig(t, "max_batch: 50\ncompression: true\n"), nil)
	if err != nil || c.MaxBatch != 50 || !c.Compression {
		t.Fatalf("file: %+v %v", c, err)
	}
	if d := Default(); d.MaxBatch != 1000 || d.Compression {
		t.Fatalf("defaults: max_batch %d, compression %v", d.MaxBatch, d.Compression)
	}
	for _, bad := range []string{"max_batch: 0\n", "max_batch: 100001\n"} {
		if _, err := Load(writeConfig(t, bad), nil); err == nil || !strings.Contains(err.Error(), "max_batch: must be 1-100000") {
			t.Fatalf("%q: %v, want an error naming max_batch", bad, err)
		}
	}
	t.Setenv("EDDY_MAX_BATCH", "7")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--compression=false"}); err != nil {
		t.Fatal(err)
	}
	c, err = Load(writeConfig(t, "max_batch: 50\ncompression: true\n"), fs)
	if err != nil || c.MaxBatch != 7 || c.Compression {
		t.Fatalf("env and flag: max_batch %d, compression %v, %v", c.MaxBatch, c.Compression, err)
	}
}
