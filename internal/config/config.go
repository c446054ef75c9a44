// Package config loads Eddy's settings from defaults, eddy.yaml, EDDY_*
// environment variables and command-line flags (later wins), all named alike.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
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
	SecretsKey       string                    `koanf:"secrets_key"`
	OperatorKey      string                    `koanf:"operator_key"`
	AuthTimeout      time.Duration             `koanf:"auth_timeout"`
	DefaultChannels  []string                  `koanf:"default_channels"`
	AllowedOrigins   []string                  `koanf:"allowed_origins"`
	MaxMessageBytes  int                       `koanf:"max_message_bytes"`
	MaxQueueBytes    int                       `koanf:"max_queue_bytes"`
	MaxSubscriptions int                       `koanf:"max_subscriptions"`
	MaxBatch         int                       `koanf:"max_batch"`
	PublishRate      float64                   `koanf:"publish_rate"`
	ShutdownTimeout  time.Duration             `koanf:"shutdown_timeout"`
	DrainDuration    time.Duration             `koanf:"drain_duration"`
	PingInterval     time.Duration             `koanf:"ping_interval"`
	WriteDelay       time.Duration             `koanf:"write_delay"`
	Compression      bool                      `koanf:"compression"`
	LogFormat        string                    `koanf:"log_format"`
	LogLevel         string                    `koanf:"log_level"`
	DataDir          string                    `koanf:"data_dir"`
	Redis            []string                  `koanf:"redis"`
	NATS             string                    `koanf:"nats"`
	NodeName         string                    `koanf:"node_name"`
	PresenceTTL      time.Duration             `koanf:"presence_ttl"`
	NodeTTL          time.Duration             `koanf:"node_ttl"`
	Pprof            bool                      `koanf:"pprof"`
	Demo             bool                      `koanf:"demo"`
	AllowPrivateURLs bool                      `koanf:"allow_private_urls"`
	FunctionsPool    int                       `koanf:"functions_pool_size"`
	WasmCacheDir     string                    `koanf:"functions_wasm_cache_dir"`
	ChannelDefaults  ChannelOptions            `koanf:"channel_defaults"`
	Namespaces       map[string]ChannelOptions `koanf:"namespaces"`

	// Keys and TLS (docs/security-keys.md).
	APIKeys        []string      `koanf:"api_keys"`
	JWTKeys        []JWTKey      `koanf:"jwt_keys"`
	JWKSURL        string        `koanf:"jwks_url"`
	JWKSMinRefresh time.Duration `koanf:"jwks_min_refresh"`
	JWKSIssuer     string        `koanf:"jwks_issuer"`
	JWKSAudience   string        `koanf:"jwks_audience"`
	TLSCert        string        `koanf:"tls_cert"`
	TLSKey         string        `koanf:"tls_key"`
	ACMEDomains    []string      `koanf:"acme_domains"`
	ACMEEmail      string        `koanf:"acme_email"`
	ACMECA         string        `koanf:"acme_ca"`
	ACMECARoot     string        `koanf:"acme_ca_root"`
	// Limits (docs/security.md lists each with its default and refusal).
	MaxConnections        int           `koanf:"max_connections"`
	MaxConnectionsPerIP   int           `koanf:"max_connections_per_ip"`
	MaxConnectionsPerUser int           `koanf:"max_connections_per_user"`
	PublishRatePerUser    float64       `koanf:"publish_rate_per_user"`
	MaxHistoryBytes       int64         `koanf:"max_history_bytes"`
	HTTPIdleTimeout       time.Duration `koanf:"http_idle_timeout"`
	HTTPReadTimeout       time.Duration `koanf:"http_read_timeout"`
	// Webhooks (docs/webhooks.md).
	Webhooks        []Webhook     `koanf:"webhooks"`
	WebhookWindow   time.Duration `koanf:"webhook_window"`
	WebhookRetryFor time.Duration `koanf:"webhook_retry_for"`
	// Operations (docs/operations.md): the status channel and function logs.
	StatusSampleRate int `koanf:"status_sample_rate"`
	FunctionLogLines int `koanf:"function_log_lines"`
	// Pusher protocol compatibility (docs/pusher.md).
	PusherAppID        string `koanf:"pusher_app_id"`
	PusherKey          string `koanf:"pusher_key"`
	PusherSecret       string `koanf:"pusher_secret"`
	PusherClientEvents bool   `koanf:"pusher_client_events"`

	// Redis Cluster, Sentinel and replication acknowledgements (docs/cluster.md).
	RedisCluster        bool          `koanf:"redis_cluster"`
	RedisSentinelMaster string        `koanf:"redis_sentinel_master"`
	RedisSentinelAddrs  []string      `koanf:"redis_sentinel_addrs"`
	RedisWaitReplicas   int           `koanf:"redis_wait_replicas"`
	RedisWaitTimeout    time.Duration `koanf:"redis_wait_timeout"`
}

// JWTKey is one entry of jwt_keys: a token verification key chosen by the
// token's kid header and pinned to its algorithm.
type JWTKey struct {
	KID           string `koanf:"kid" json:"kid"`
	Alg           string `koanf:"alg" json:"alg"`
	Secret        string `koanf:"secret" json:"secret"`
	PublicKeyFile string `koanf:"public_key_file" json:"public_key_file"`
}

// TLSEnabled reports whether the listeners serve TLS.
func (c *Config) TLSEnabled() bool { return c.TLSCert != "" || len(c.ACMEDomains) > 0 }

// setting describes one scalar key: its flag and its help.
type setting struct {
	key, help string
	def       any
}

// jsonList is the default of a setting that is a list of objects: a YAML
// list in the file, JSON text in its flag and environment variable.
type jsonList struct{}

// settings lists the keys settable by flag and environment, in help order.
// Flag names and variables derive from the key, so they cannot drift apart.
var settings = []setting{
	{"listen", "address for WebSocket clients (and the API unless api_listen is set)", ":8080"},
	{"api_listen", "separate address for the HTTP API and metrics (empty: share listen)", ""},
	{"secret", "HS256 secret that signs client tokens (at least 32 bytes)", ""},
	{"api_key", "key that backends present to the HTTP API", ""},
	{"api_keys", "more keys accepted beside api_key, to rotate it without downtime", []string{}},
	{"jwt_keys", "token keys chosen by the token's kid: a list of {kid, alg, secret | public_key_file}, alg HS256, RS256, ES256 or EdDSA (a JSON list in the flag and variable)", jsonList{}},
	{"jwks_url", "URL of an identity provider's JWKS (Cognito, Auth0, Keycloak): its keys verify tokens by kid", ""},
	{"jwks_min_refresh", "least time between two fetches of jwks_url (a token with an unknown kid triggers one)", 10 * time.Second},
	{"jwks_issuer", "iss claim required in tokens verified by jwks_url's keys (the provider's issuer URL)", ""},
	{"jwks_audience", "value required in the aud claim of tokens verified by jwks_url's keys (your application's client id)", ""},
	{"admin_key", "key for the admin API (functions, associations), which runs code in the server; empty: admin API off", ""},
	{"secrets_key", "key that encrypts the functions' secrets (ctx.secrets) at rest: esk_ and 32 random bytes in base64url, made by eddy init; empty: storing secrets is refused", ""},
	{"operator_key", "server-wide key that creates, changes and deletes apps (/api/v1/apps, docs/apps.md); empty: apps API off", ""},
	{"auth_timeout", "time a new connection has to send its auth frame", 15 * time.Second},
	{"default_channels", "channel patterns a token without a channels claim may subscribe to", []string{"*"}},
	{"allowed_origins", "Origin patterns allowed to open WebSockets (empty: any, for development)", []string{}},
	{"max_message_bytes", "largest frame or published message accepted", 64 << 10},
	{"max_queue_bytes", "outgoing bytes a connection may have queued before it is dropped as a slow consumer", 4 << 20},
	{"max_subscriptions", "subscriptions per connection", 1000},
	{"max_batch", "messages one POST /api/v1/batch may carry", 1000},
	{"publish_rate", "publishes per second one connection may make (token bucket)", 100.0},
	{"shutdown_timeout", "time to drain on SIGTERM before exiting; at least drain_duration + 2s", 10 * time.Second},
	// 5 s spreads a node's reconnects over five seconds' worth of the
	// others' capacity and leaves shutdown_timeout's default 5 s spare.
	{"drain_duration", "on SIGTERM, the time over which the node closes its clients (1012, reconnect) at an even rate, so the other nodes take a steady stream instead of one wave (0: all at once)", 5 * time.Second},
	{"ping_interval", "interval of WebSocket pings; a peer silent for two is dropped", 25 * time.Second},
	// 20 ms measured best on 2 cores: 1,000 subscribers at 1.1 M msgs/s with
	// p99 72 ms; 10 ms made more writes, more CPU and p99 180 ms at 1.3 M/s.
	{"write_delay", "coalescing window of a busy connection's pushed messages: more of them per write system call, at most this much added latency (0: write at once); replies to a client's requests never wait for it", 20 * time.Millisecond},
	{"compression", "negotiate permessage-deflate with clients that offer it: less bandwidth for large JSON, more CPU per message (see docs/protocol.md)", false},
	{"log_format", "text or json", "text"},
	{"log_level", "debug, info, warn or error", "info"},
	{"data_dir", "directory for functions and other state", "eddy-data"},
	{"redis", "Redis URLs for cluster mode (repeat or comma-separate to shard); empty: in-memory broker", []string{}},
	{"redis_cluster", "redis lists seed addresses of one Redis Cluster (sharded pub/sub, follows slot moves and failovers) instead of independent shards", false},
	{"redis_sentinel_master", "name of the master set watched by the Sentinels at redis_sentinel_addrs: Eddy follows their failovers (redis may then give one URL for the master's password and database)", ""},
	{"redis_sentinel_addrs", "host:port of each Sentinel (with redis_sentinel_master)", []string{}},
	{"redis_wait_replicas", "acknowledge a publish only when this many Redis replicas have it (WAIT): acknowledged messages survive a failover, at a replication round trip per publish (0: off)", 0},
	{"redis_wait_timeout", "how long a publish waits for redis_wait_replicas; past it the publish fails with outcome_unknown", time.Second},
	{"nats", "NATS URL (nats://host:4222; comma-separate a NATS cluster's servers) for cluster mode over NATS JetStream instead of Redis (docs/cluster.md)", ""},
	{"node_name", "name of this node in the cluster (default: host name)", ""},
	{"presence_ttl", "cluster mode: how long presence members of a node that died linger", 30 * time.Second},
	{"node_ttl", "cluster mode: how long a node that stopped announcing stays in /api/v1/info", 30 * time.Second},
	{"pprof", "serve /debug/pprof on the API listener", false},
	{"tls_cert", "PEM certificate chain file: serve TLS (wss://, https://) on the listeners; reloaded when it changes", ""},
	{"tls_key", "PEM private key file of tls_cert; reloaded when it changes", ""},
	{"acme_domains", "domains to get certificates for automatically with ACME (TLS-ALPN-01: the listener must be reachable on port 443)", []string{}},
	{"acme_email", "contact e-mail given to the ACME CA", ""},
	{"acme_ca", "ACME directory URL (empty: Let's Encrypt)", ""},
	{"acme_ca_root", "PEM file of the CA that signs acme_ca's HTTPS certificate, for a private ACME CA (empty: system roots)", ""},
	{"max_connections", "WebSocket connections this node accepts in all; more are refused with HTTP 503 limit_exceeded (0: no limit)", 100_000},
	{"max_connections_per_ip", "WebSocket connections from one IP address (the TCP peer: behind a proxy, the proxy's); more get HTTP 429 limit_exceeded (0: no limit)", 0},
	{"max_connections_per_user", "WebSocket connections of one token subject on this node; more are closed with 4010 after auth (0: no limit)", 0},
	{"publish_rate_per_user", "publishes per second all connections of one user on this node may make together (token bucket)", 1000.0},
	{"max_history_bytes", "memory broker: bytes of history kept in all; past it the channels published to longest ago lose their history first (0: no limit)", int64(256 << 20)},
	{"http_idle_timeout", "how long an idle HTTP keep-alive connection stays open", 60 * time.Second},
	{"http_read_timeout", "time to read one HTTP API request, headers and body (WebSockets are not affected once upgraded)", 30 * time.Second},
	{"demo", "serve the demo chat page and a development token endpoint (never in production)", false},
	{"allow_private_urls", "let HTTP functions reach loopback, private and link-local addresses (refused by default)", false},
	{"functions_pool_size", "VMs per JavaScript function (0: one per CPU)", 0},
	{"webhooks", "webhook receivers: a list of {url, secret, events, format, key}, format eddy (default) or pusher (a JSON list in the flag and variable; docs/webhooks.md)", jsonList{}},
	{"webhook_window", "how long webhook events gather before one POST carries them all", 250 * time.Millisecond},
	{"webhook_retry_for", "how long a webhook POST that fails is retried, with exponential backoff, before its events are dropped", 5 * time.Minute},
	{"status_sample_rate", "events of each kind per second one node sends to $admin:status subscribers; past it they are counted in an events_omitted event instead", 50},
	{"function_log_lines", "ctx.log lines and errors kept per function (GET /api/v1/functions/{name}/logs)", 200},
	{"pusher_app_id", "app id of the Pusher-compatible API (/apps/{id}/...); docs/pusher.md", "default"},
	{"pusher_key", "app key Pusher clients connect with (/app/{key}); empty: the Pusher protocol is off", ""},
	{"pusher_secret", "secret that signs Pusher channel auths, sign-ins and HTTP API calls", ""},
	{"pusher_client_events", "let Pusher clients send client-* events on private and presence channels", false},
	{"functions_wasm_cache_dir", "directory where compiled WebAssembly functions are kept, so a restarted node does not compile them again (empty: compile at every start)", ""},
}

// Default returns the built-in settings.
func Default() Config {
	c := Config{Namespaces: map[string]ChannelOptions{}}
	k := koanf.New(".")
	for _, s := range settings {
		if _, ok := s.def.(jsonList); !ok {
			_ = k.Set(s.key, s.def)
		}
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
		case int64:
			fs.Int64(name, d, s.help)
		case bool:
			fs.Bool(name, d, s.help)
		case time.Duration:
			fs.Duration(name, d, s.help)
		case []string:
			fs.StringSlice(name, d, s.help)
		case jsonList:
			fs.String(name, "", s.help)
		}
	}
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// EnvName is the environment variable of key.
func EnvName(key string) string { return "EDDY_" + strings.ToUpper(key) }

// Load reads path (if it exists), then EDDY_* variables, then the flags of fs
// that were set. A missing file is not an error: serve creates one.
func Load(path string, fs *pflag.FlagSet) (Config, error) {
	k := koanf.New(".")
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := mergeFile(k, data); err != nil {
				return Default(), fmt.Errorf("config file %s: %w", path, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return Default(), fmt.Errorf("config file: %w", err)
		}
	}
	return load(k, fs)
}

// mergeFile parses a config file's YAML into k, refusing unknown keys.
func mergeFile(k *koanf.Koanf, data []byte) error {
	fk := koanf.New(".")
	if err := fk.Load(rawBytes(data), yaml.Parser()); err != nil {
		return err
	}
	if err := checkKeys(fk); err != nil {
		return err
	}
	if err := checkDurations(fk); err != nil {
		return err
	}
	return k.Merge(fk)
}

// rawBytes is a koanf provider of bytes already read.
type rawBytes []byte

func (b rawBytes) ReadBytes() ([]byte, error) { return b, nil }
func (b rawBytes) Read() (map[string]any, error) {
	return nil, errors.New("rawBytes provider needs a parser")
}

// load adds the environment and the flags of fs to k and decodes it.
func load(k *koanf.Koanf, fs *pflag.FlagSet) (Config, error) {
	c := Default()
	known := map[string]bool{}
	for _, s := range settings {
		known[s.key] = true
	}
	var jsonErr, envErr error
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
			if isJSONList(key) {
				return key, parseJSONList(name, value, &jsonErr)
			}
			if err := checkDuration(key, value); err != nil && envErr == nil {
				envErr = fmt.Errorf("environment variable %s: %w", name, err)
			}
			return key, value
		},
	}), nil)
	if err == nil && jsonErr != nil {
		err = jsonErr
	}
	if err != nil {
		return c, fmt.Errorf("environment: %w", err)
	}
	if envErr != nil {
		return c, envErr
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
			if isJSONList(key) {
				return key, parseJSONList("--"+f.Name, f.Value.String(), &jsonErr)
			}
			return key, posflag.FlagVal(fs, f)
		}), nil)
		if err == nil && jsonErr != nil {
			err = jsonErr
		}
		if err != nil {
			return c, fmt.Errorf("flags: %w", err)
		}
	}
	if err := checkJSONLists(k); err != nil {
		return c, err
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

func isJSONList(key string) bool {
	for _, s := range settings {
		if s.key == key {
			_, ok := s.def.(jsonList)
			return ok
		}
	}
	return false
}

// parseJSONList decodes a list of objects given as text, keeping the first
// error in *errp (koanf's transform functions cannot return one).
func parseJSONList(where, value string, errp *error) any {
	if strings.TrimSpace(value) == "" {
		return []any{}
	}
	var v []map[string]any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		if *errp == nil {
			*errp = fmt.Errorf("%s: must be a JSON list of objects: %w", where, err)
		}
		return nil
	}
	out := make([]any, len(v))
	for i, m := range v {
		out[i] = m
	}
	return out
}

// jwtKeyFields are the members of a jwt_keys entry.
var jwtKeyFields = map[string]bool{"kid": true, "alg": true, "secret": true, "public_key_file": true}

// checkJSONLists refuses a jwt_keys that is not a list of objects with
// known members, naming what is wrong: the decoder would ignore a typo.
func checkJSONLists(k *koanf.Koanf) error {
	if err := checkWebhookList(k.Get("webhooks")); err != nil {
		return err
	}
	raw := k.Get("jwt_keys")
	if raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("jwt_keys: must be a list of {kid, alg, secret | public_key_file}, got %T", raw)
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("jwt_keys[%d]: must be an object {kid, alg, secret | public_key_file}, got %T", i, e)
		}
		for name, v := range m {
			if !jwtKeyFields[name] {
				return fmt.Errorf("jwt_keys[%d]: unknown member %q", i, name)
			}
			if _, isString := v.(string); !isString {
				return fmt.Errorf("jwt_keys[%d].%s: must be a string, got %T", i, name, v)
			}
		}
	}
	return nil
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

// isDuration reports whether key's setting is a duration.
func isDuration(key string) bool {
	for _, s := range settings {
		if s.key == key {
			_, ok := s.def.(time.Duration)
			return ok
		}
	}
	return key == "history_ttl"
}

// checkDuration explains a duration that will not parse, naming the key and
// the value, instead of the decoder's bare "time: unknown unit".
func checkDuration(key string, v any) error {
	s, ok := v.(string)
	if !ok || !isDuration(key) {
		return nil
	}
	if _, err := time.ParseDuration(s); err != nil {
		return fmt.Errorf("%s: %q is not a duration; write it like 15s, 500ms, 2m or 1h30m", key, s)
	}
	return nil
}

// checkDurations checks every duration of a file layer, channel options included.
func checkDurations(k *koanf.Koanf) error {
	keys := k.Keys()
	sort.Strings(keys)
	for _, key := range keys {
		parts := strings.Split(key, ".")
		if err := checkDuration(parts[len(parts)-1], k.Get(key)); err != nil {
			if len(parts) > 1 {
				return fmt.Errorf("%s: %w", strings.Join(parts[:len(parts)-1], "."), err)
			}
			return err
		}
	}
	return nil
}

// DrainMargin is the least time shutdown_timeout must leave after
// drain_duration: the last clients closed need it to finish their close
// handshake and release their subscriptions before the node exits.
const DrainMargin = 2 * time.Second

// Validate checks values that parsed but make no sense.
func (c *Config) Validate() error {
	if err := c.validatePusher(); err != nil {
		return err
	}
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
	case c.DrainDuration < 0:
		return fmt.Errorf("drain_duration: must be 0 (close all at once) or more, got %s", c.DrainDuration)
	case c.DrainDuration > 0 && c.ShutdownTimeout < c.DrainDuration+DrainMargin:
		return fmt.Errorf("shutdown_timeout: must be at least drain_duration + %s (%s), got %s", DrainMargin, c.DrainDuration+DrainMargin, c.ShutdownTimeout)
	case c.MaxMessageBytes < 256:
		return fmt.Errorf("max_message_bytes: must be at least 256, got %d", c.MaxMessageBytes)
	case c.MaxQueueBytes < c.MaxMessageBytes:
		return fmt.Errorf("max_queue_bytes: must be at least max_message_bytes (%d), got %d", c.MaxMessageBytes, c.MaxQueueBytes)
	case c.MaxSubscriptions < 1:
		return fmt.Errorf("max_subscriptions: must be at least 1, got %d", c.MaxSubscriptions)
	case c.MaxBatch < 1 || c.MaxBatch > 100_000:
		return fmt.Errorf("max_batch: must be 1-100000, got %d", c.MaxBatch)
	case c.FunctionsPool < 0 || c.FunctionsPool > 256:
		return fmt.Errorf("functions_pool_size: must be 0 (one per CPU) to 256, got %d", c.FunctionsPool)
	case c.PublishRate <= 0:
		return fmt.Errorf("publish_rate: must be positive, got %g", c.PublishRate)
	case c.MaxConnections < 0:
		return fmt.Errorf("max_connections: must be 0 (no limit) or more, got %d", c.MaxConnections)
	case c.MaxConnectionsPerIP < 0:
		return fmt.Errorf("max_connections_per_ip: must be 0 (no limit) or more, got %d", c.MaxConnectionsPerIP)
	case c.MaxConnectionsPerUser < 0:
		return fmt.Errorf("max_connections_per_user: must be 0 (no limit) or more, got %d", c.MaxConnectionsPerUser)
	case c.PublishRatePerUser <= 0:
		return fmt.Errorf("publish_rate_per_user: must be positive, got %g", c.PublishRatePerUser)
	case c.MaxHistoryBytes < 0:
		return fmt.Errorf("max_history_bytes: must be 0 (no limit) or more, got %d", c.MaxHistoryBytes)
	case c.HTTPIdleTimeout <= 0:
		return fmt.Errorf("http_idle_timeout: must be positive, got %s", c.HTTPIdleTimeout)
	case c.HTTPReadTimeout <= 0:
		return fmt.Errorf("http_read_timeout: must be positive, got %s", c.HTTPReadTimeout)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("log_format: must be text or json, got %q", c.LogFormat)
	case !oneOf(c.LogLevel, "debug", "info", "warn", "error"):
		return fmt.Errorf("log_level: must be debug, info, warn or error, got %q", c.LogLevel)
	}
	for i, u := range c.Redis {
		if err := checkRedisURL(u); err != nil {
			return fmt.Errorf("redis: address %d (%q): %w", i, u, err)
		}
	}
	if err := c.validateRedisModes(); err != nil {
		return err
	}
	if c.NATS != "" {
		if c.UsesRedis() {
			return errors.New("nats and redis: set one broker, not both")
		}
		if err := checkNATSURL(c.NATS); err != nil {
			return fmt.Errorf("nats: %q: %w", c.NATS, err)
		}
	}
	for name, o := range c.Namespaces {
		if err := o.validate(); err != nil {
			return fmt.Errorf("namespaces.%s: %w", name, err)
		}
	}
	if err := c.ChannelDefaults.validate(); err != nil {
		return fmt.Errorf("channel_defaults: %w", err)
	}
	if err := c.validateWebhooks(); err != nil {
		return err
	}
	if err := c.validateOperations(); err != nil {
		return err
	}
	return c.validateKeysAndTLS()
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// checkRedisURL accepts what the Redis broker can dial: redis://, rediss://
// and unix:// URLs with a host or path.
func checkRedisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("has no host; write it like redis://127.0.0.1:6379/0")
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("has no socket path; write it like unix:///run/redis.sock")
		}
	default:
		return fmt.Errorf("must start with redis://, rediss:// or unix://, like redis://127.0.0.1:6379/0")
	}
	return nil
}

// checkNATSURL accepts what the NATS broker can dial: one or more
// comma-separated nats:// or tls:// URLs with a host.
func checkNATSURL(s string) error {
	for _, one := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil {
			return fmt.Errorf("not a URL: %w", err)
		}
		if u.Scheme != "nats" && u.Scheme != "tls" {
			return fmt.Errorf("must start with nats:// or tls://, like nats://127.0.0.1:4222")
		}
		if u.Host == "" {
			return fmt.Errorf("has no host; write it like nats://127.0.0.1:4222")
		}
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
	return pusherChannelOptions(channel, c.ChannelDefaults)
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

// NewAdminKey returns a random admin key, prefixed so it is not mistaken for an API key.
func NewAdminKey() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "eadm_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// NewSecretsKey returns a random secrets_key: the 32-byte AES key that
// encrypts functions' secrets, in the form internal/functions/secrets
// parses.
func NewSecretsKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "esk_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ErrExists is returned by Init when the file is already there.
var ErrExists = errors.New("config file already exists")

// Init writes a new config file at path holding a fresh secret, API key
// and admin key, readable only by its owner. It never overwrites. The admin
// key is separate because it deploys functions, which run code in the
// server: a backend that only publishes never needs it.
func Init(path string) (secret, apiKey string, err error) {
	secret, apiKey = NewSecret(), NewAPIKey()
	adminKey := NewAdminKey()
	secretsKey := NewSecretsKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", "", fmt.Errorf("%s: %w; remove it first to start over", path, ErrExists)
		}
		return "", "", fmt.Errorf("create %s: %w", path, err)
	}
	_, err = fmt.Fprintf(f, `# Eddy configuration. Keep this file private: it holds the token secret and keys.
# Every key is also a flag (--auth-timeout) and an environment variable (EDDY_AUTH_TIMEOUT).
listen: ":8080"
secret: %q
# api_key publishes and reads history; admin_key deploys functions (code run by the server).
api_key: %q
admin_key: %q
# secrets_key encrypts the functions' secrets at rest (eddy functions secrets set).
secrets_key: %q
# The Pusher-compatible protocol (docs/pusher.md): pusher-js connects with pusher_key.
pusher_key: %q
pusher_secret: %q
data_dir: eddy-data
# Channel options per namespace (the part of a channel name before the first ':').
channel_defaults: { history_size: 0 }
namespaces:
  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }
`, secret, apiKey, adminKey, secretsKey, NewPusherKey(), NewSecret())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", fmt.Errorf("write %s: %w", path, err)
	}
	return secret, apiKey, nil
}
