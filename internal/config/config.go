// Package config loads Eddy's settings from defaults, eddy.yaml, EDDY_*
// environment variables and command-line flags (later wins), all named alike.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// ChannelOptions are the settings of a namespace's channels.
type ChannelOptions struct {
	HistorySize int           `koanf:"history_size" yaml:"history_size"`
	HistoryTTL  time.Duration `koanf:"history_ttl" yaml:"history_ttl"`
	Presence    bool          `koanf:"presence" yaml:"presence"`
	JoinLeave   bool          `koanf:"join_leave" yaml:"join_leave"`
}

// Config is every setting of a node.
type Config struct {
	Listen           string                    `koanf:"listen"`
	APIListen        string                    `koanf:"api_listen"`
	Secret           string                    `koanf:"secret"`
	APIKey           string                    `koanf:"api_key"`
	AdminKey         string                    `koanf:"admin_key"`
	AuthTimeout      time.Duration             `koanf:"auth_timeout"`
	DefaultChannels  []string                  `koanf:"default_channels"`
	AllowedOrigins   []string                  `koanf:"allowed_origins"`
	MaxMessageBytes  int                       `koanf:"max_message_bytes"`
	MaxQueueBytes    int                       `koanf:"max_queue_bytes"`
	MaxSubscriptions int                       `koanf:"max_subscriptions"`
	PublishRate      float64                   `koanf:"publish_rate"`
	ShutdownTimeout  time.Duration             `koanf:"shutdown_timeout"`
	PingInterval     time.Duration             `koanf:"ping_interval"`
	WriteDelay       time.Duration             `koanf:"write_delay"`
	LogFormat        string                    `koanf:"log_format"`
	LogLevel         string                    `koanf:"log_level"`
	DataDir          string                    `koanf:"data_dir"`
	Redis            []string                  `koanf:"redis"`
	NodeName         string                    `koanf:"node_name"`
	PresenceTTL      time.Duration             `koanf:"presence_ttl"`
	NodeTTL          time.Duration             `koanf:"node_ttl"`
	Pprof            bool                      `koanf:"pprof"`
	Demo             bool                      `koanf:"demo"`
	AllowPrivateURLs bool                      `koanf:"allow_private_urls"`
	ChannelDefaults  ChannelOptions            `koanf:"channel_defaults"`
	Namespaces       map[string]ChannelOptions `koanf:"namespaces"`
}

// setting describes one scalar key: its flag and its help.
type setting struct {
	key, help string
	def       any
}

// settings lists the keys settable by flag and environment, in help order.
// Flag names and variables derive from the key, so they cannot drift apart.
var settings = []setting{
	{"listen", "address for WebSocket clients (and the API unless api_listen is set)", ":8080"},
	{"api_listen", "separate address for the HTTP API and metrics (empty: share listen)", ""},
	{"secret", "HS256 secret that signs client tokens (at least 32 bytes)", ""},
	{"api_key", "key that backends present to the HTTP API", ""},
	{"admin_key", "key for the admin API (functions); empty: api_key", ""},
	{"auth_timeout", "time a new connection has to send its auth frame", 15 * time.Second},
	{"default_channels", "channel patterns a token without a channels claim may subscribe to", []string{"*"}},
	{"allowed_origins", "Origin patterns allowed to open WebSockets (empty: any, for development)", []string{}},
	{"max_message_bytes", "largest frame or published message accepted", 64 << 10},
	{"max_queue_bytes", "outgoing bytes a connection may have queued before it is dropped as a slow consumer", 4 << 20},
	{"max_subscriptions", "subscriptions per connection", 1000},
	{"publish_rate", "publishes per second one connection may make (token bucket)", 100.0},
	{"shutdown_timeout", "time to drain on SIGTERM before exiting", 10 * time.Second},
	{"ping_interval", "interval of WebSocket pings; a peer silent for two is dropped", 25 * time.Second},
	// 20 ms measured best on 2 cores: 1,000 subscribers at 1.1 M msgs/s with
	// p99 72 ms; 10 ms made more writes, more CPU and p99 180 ms at 1.3 M/s.
	{"write_delay", "coalescing window of a busy connection's writes: more messages per write system call, at most this much added latency (0: write at once)", 20 * time.Millisecond},
	{"log_format", "text or json", "text"},
	{"log_level", "debug, info, warn or error", "info"},
	{"data_dir", "directory for functions and other state", "eddy-data"},
	{"redis", "Redis URLs for cluster mode (repeat or comma-separate to shard); empty: in-memory broker", []string{}},
	{"node_name", "name of this node in the cluster (default: host name)", ""},
	{"presence_ttl", "cluster mode: how long presence members of a node that died linger", 30 * time.Second},
	{"node_ttl", "cluster mode: how long a node that stopped announcing stays in /api/v1/info", 30 * time.Second},
	{"pprof", "serve /debug/pprof on the API listener", false},
	{"demo", "serve the demo chat page and a development token endpoint (never in production)", false},
	{"allow_private_urls", "let HTTP functions reach loopback, private and link-local addresses (refused by default)", false},
}

// Default returns the built-in settings.
func Default() Config {
	c := Config{Namespaces: map[string]ChannelOptions{}}
	k := koanf.New(".")
	for _, s := range settings {
		_ = k.Set(s.key, s.def)
	}
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		panic(err)
	}
	return c
}

// RegisterFlags adds a flag for every setting: key auth_timeout is flag --auth-timeout.
func RegisterFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		name := flagName(s.key)
		switch d := s.def.(type) {
		case string:
			fs.String(name, d, s.help)
		case int:
			fs.Int(name, d, s.help)
		case float64:
			fs.Float64(name, d, s.help)
		case bool:
			fs.Bool(name, d, s.help)
		case time.Duration:
			fs.Duration(name, d, s.help)
		case []string:
			fs.StringSlice(name, d, s.help)
		}
	}
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// EnvName is the environment variable of key.
func EnvName(key string) string { return "EDDY_" + strings.ToUpper(key) }

// Load reads path (if it exists), then EDDY_* variables, then the flags of fs
// that were set. A missing file is not an error: serve creates one.
func Load(path string, fs *pflag.FlagSet) (Config, error) {
	c := Default()
	k := koanf.New(".")
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			fk := koanf.New(".")
			if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
				return c, fmt.Errorf("config file %s: %w", path, err)
			}
			if err := checkKeys(fk); err != nil {
				return c, fmt.Errorf("config file %s: %w", path, err)
			}
			if err := k.Merge(fk); err != nil {
				return c, fmt.Errorf("config file %s: %w", path, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return c, fmt.Errorf("config file: %w", err)
		}
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.key] = true
	}
	err := k.Load(env.Provider(".", env.Opt{
		Prefix: "EDDY_",
		TransformFunc: func(name, value string) (string, any) {
			key := strings.ToLower(strings.TrimPrefix(name, "EDDY_"))
			if key == "redis_url" {
				key = "redis"
			}
			if !known[key] {
				return "", nil
			}
			if isList(key) {
				return key, splitList(value)
			}
			return key, value
		},
	}), nil)
	if err != nil {
		return c, fmt.Errorf("environment: %w", err)
	}
	if fs != nil {
		err := k.Load(posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
			key := strings.ReplaceAll(f.Name, "-", "_")
			if !known[key] || !f.Changed {
				return "", nil
			}
			if isList(key) {
				vals, _ := fs.GetStringSlice(f.Name)
				return key, vals
			}
			return key, posflag.FlagVal(fs, f)
		}), nil)
		if err != nil {
			return c, fmt.Errorf("flags: %w", err)
		}
	}
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.Namespaces == nil {
		c.Namespaces = map[string]ChannelOptions{}
	}
	return c, c.Validate()
}

func isList(key string) bool {
	for _, s := range settings {
		if s.key == key {
			_, ok := s.def.([]string)
			return ok
		}
	}
	return false
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var channelOptionKeys = map[string]bool{"history_size": true, "history_ttl": true, "presence": true, "join_leave": true}

// checkKeys refuses keys the file should not have, naming the first.
func checkKeys(k *koanf.Koanf) error {
	top := map[string]bool{"channel_defaults": true, "namespaces": true}
	for _, s := range settings {
		top[s.key] = true
	}
	keys := k.Keys()
	sort.Strings(keys)
	for _, key := range keys {
		parts := strings.Split(key, ".")
		switch {
		case !top[parts[0]]:
			return fmt.Errorf("unknown key %q", parts[0])
		case parts[0] == "channel_defaults" && len(parts) > 1 && !channelOptionKeys[parts[1]]:
			return fmt.Errorf("unknown channel option %q in channel_defaults", parts[1])
		case parts[0] == "namespaces" && len(parts) > 2 && !channelOptionKeys[parts[2]]:
			return fmt.Errorf("unknown channel option %q in namespace %q", parts[2], parts[1])
		}
	}
	return nil
}

// Validate checks values that parsed but make no sense.
func (c *Config) Validate() error {
	switch {
	case c.Secret != "" && len(c.Secret) < 32:
		return fmt.Errorf("secret: is %d bytes long; it must be at least 32", len(c.Secret))
	case c.AuthTimeout <= 0:
		return fmt.Errorf("auth_timeout: must be positive, got %s", c.AuthTimeout)
	case c.WriteDelay < 0 || c.WriteDelay > time.Second:
		return fmt.Errorf("write_delay: must be 0-1s, got %s", c.WriteDelay)
	case c.PingInterval <= 0:
		return fmt.Errorf("ping_interval: must be positive, got %s", c.PingInterval)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("shutdown_timeout: must be positive, got %s", c.ShutdownTimeout)
	case c.MaxMessageBytes < 256:
		return fmt.Errorf("max_message_bytes: must be at least 256, got %d", c.MaxMessageBytes)
	case c.MaxQueueBytes < c.MaxMessageBytes:
		return fmt.Errorf("max_queue_bytes: must be at least max_message_bytes (%d), got %d", c.MaxMessageBytes, c.MaxQueueBytes)
	case c.MaxSubscriptions < 1:
		return fmt.Errorf("max_subscriptions: must be at least 1, got %d", c.MaxSubscriptions)
	case c.PublishRate <= 0:
		return fmt.Errorf("publish_rate: must be positive, got %g", c.PublishRate)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("log_format: must be text or json, got %q", c.LogFormat)
	}
	for name, o := range c.Namespaces {
		if err := o.validate(); err != nil {
			return fmt.Errorf("namespaces.%s: %w", name, err)
		}
	}
	if err := c.ChannelDefaults.validate(); err != nil {
		return fmt.Errorf("channel_defaults: %w", err)
	}
	return nil
}

func (o ChannelOptions) validate() error {
	if o.HistorySize < 0 || o.HistorySize > 1_000_000 {
		return fmt.Errorf("history_size: must be 0-1000000, got %d", o.HistorySize)
	}
	if o.HistoryTTL < 0 {
		return fmt.Errorf("history_ttl: must not be negative")
	}
	if o.JoinLeave && !o.Presence {
		return fmt.Errorf("join_leave needs presence: true")
	}
	return nil
}

// ChannelOptions returns the options of channel's namespace.
func (c *Config) ChannelOptionsFor(channel string) ChannelOptions {
	if i := strings.IndexByte(channel, ':'); i > 0 {
		if o, ok := c.Namespaces[channel[:i]]; ok {
			return o
		}
	}
	return c.ChannelDefaults
}

// NewSecret returns a random 256-bit secret, hex encoded.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewAPIKey returns a random API key.
func NewAPIKey() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "ek_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ErrExists is returned by Init when the file is already there.
var ErrExists = errors.New("config file already exists")

// Init writes a new config file at path holding a fresh secret and API key,
// readable only by its owner. It never overwrites.
func Init(path string) (secret, apiKey string, err error) {
	secret, apiKey = NewSecret(), NewAPIKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", "", fmt.Errorf("%s: %w; remove it first to start over", path, ErrExists)
		}
		return "", "", fmt.Errorf("create %s: %w", path, err)
	}
	_, err = fmt.Fprintf(f, `# Eddy configuration. Keep this file private: it holds the token secret and API key.
# Every key is also a flag (--auth-timeout) and an environment variable (EDDY_AUTH_TIMEOUT).
listen: ":8080"
secret: %q
api_key: %q
data_dir: eddy-data
# Channel options per namespace (the part of a channel name before the first ':').
channel_defaults: { history_size: 0 }
namespaces:
  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }
`, secret, apiKey)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", fmt.Errorf("write %s: %w", path, err)
	}
	return secret, apiKey, nil
}
