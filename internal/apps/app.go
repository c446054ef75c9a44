// Package apps is the model of an Eddy app (one isolated application on a
// deployment: its keys, origins, namespaces and limits), the Registry that
// finds an app by id or by one of its keys, and the Stores that keep apps
// (a file in data_dir on one node, Redis in cluster mode).
package apps

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
)

// DefaultID is the app that eddy.yaml's keys and namespaces describe. It is
// never kept in a Store and cannot be created, changed or deleted by the
// apps API: a single-app install is the default app alone.
const DefaultID = "default"

// Separator joins an app's id to a channel name on the way to the broker
// ("shop/chat:lobby"). Channel names cannot contain it
// (protocol.ValidateChannel), so a prefixed name never collides with a
// client's name, and the default app's names carry no prefix at all.
const Separator = "/"

var idRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// ValidID checks an app id: 1-63 characters of a-z, 0-9 and '-'.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("app id %q: use 1-63 characters of a-z, 0-9 and -", truncate(id))
	}
	return nil
}

// JWTKey verifies an app's client tokens: an HS256 secret chosen by the
// token's kid header (its ID). Several at once let a key rotate.
type JWTKey struct {
	ID     string `json:"id"`
	Alg    string `json:"alg"`
	Secret string `json:"secret"`
}

// Key is an API or admin key with the id that retires it.
type Key struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// Limits bound what one app may use; zero is no limit of the app's own (the
// node's limits still apply).
type Limits struct {
	// MaxConnections caps the app's connections on each node.
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxPublishRate caps publishes per second through the API and clients
	// together, on each node.
	MaxPublishRate float64 `json:"max_publish_rate,omitempty"`
	// MaxMessageBytes caps one message's data; at most the node's max_message_bytes.
	MaxMessageBytes int `json:"max_message_bytes,omitempty"`
}

// Pusher holds the key and secret Pusher-protocol clients will use; they are
// generated at creation.
type Pusher struct {
	Key    string `json:"key"`
	Secret string `json:"secret"`
}

// Duration is a time.Duration written as Go duration text ("10m") in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler; it takes "10m" or seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return errors.New(`a duration is text like "10m" or a number of seconds`)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", truncate(s), err)
	}
	*d = Duration(v)
	return nil
}

// ChannelOptions are one namespace's options, as in eddy.yaml's namespaces.
type ChannelOptions struct {
	HistorySize int      `json:"history_size,omitempty"`
	HistoryTTL  Duration `json:"history_ttl,omitempty"`
	Presence    bool     `json:"presence,omitempty"`
	JoinLeave   bool     `json:"join_leave,omitempty"`
}

// Config converts o to the node's type.
func (o ChannelOptions) Config() config.ChannelOptions {
	return config.ChannelOptions{HistorySize: o.HistorySize, HistoryTTL: time.Duration(o.HistoryTTL), Presence: o.Presence, JoinLeave: o.JoinLeave}
}

// App is one application: its own channels, keys and limits. Values held by
// a Registry are never changed in place: a change makes a new App.
type App struct {
	ID             string                    `json:"id"`
	Name           string                    `json:"name"`
	JWTKeys        []JWTKey                  `json:"jwt_keys"`
	APIKeys        []Key                     `json:"api_keys"`
	AdminKeys      []Key                     `json:"admin_keys"`
	AllowedOrigins []string                  `json:"allowed_origins,omitempty"`
	Namespaces     map[string]ChannelOptions `json:"namespaces,omitempty"`
	// ChannelDefaults are the options of channels outside every namespace.
	ChannelDefaults ChannelOptions `json:"channel_defaults"`
	Limits          Limits         `json:"limits"`
	Pusher          Pusher         `json:"pusher"`
	// PusherClientEvents lets the app's Pusher clients send client-*
	// events (off by default, as pusher_client_events is for the default app).
	PusherClientEvents bool      `json:"pusher_client_events,omitempty"`
	Created            time.Time `json:"created"`
	// Webhooks are the app's receivers of its channels' events (webhooks.go).
	Webhooks []config.Webhook `json:"webhooks,omitempty"`
}

// Limits of names and lists an app may have, so one app cannot grow without bound.
const (
	maxName       = 200
	maxKeys       = 10
	maxOrigins    = 100
	maxNamespaces = 100
)

// Validate checks what an operator can set.
func (a *App) Validate() error {
	if err := ValidID(a.ID); err != nil {
		return err
	}
	if len(a.Name) > maxName {
		return fmt.Errorf("name: %d bytes; the limit is %d", len(a.Name), maxName)
	}
	if len(a.JWTKeys) > maxKeys || len(a.APIKeys) > maxKeys || len(a.AdminKeys) > maxKeys {
		return fmt.Errorf("at most %d keys of each kind; retire one first", maxKeys)
	}
	if len(a.AllowedOrigins) > maxOrigins {
		return fmt.Errorf("allowed_origins: %d patterns; the limit is %d", len(a.AllowedOrigins), maxOrigins)
	}
	for _, p := range a.AllowedOrigins {
		if p == "" {
			return errors.New("allowed_origins: empty pattern")
		}
	}
	if len(a.Namespaces) > maxNamespaces {
		return fmt.Errorf("namespaces: %d; the limit is %d", len(a.Namespaces), maxNamespaces)
	}
	check := func(name string, o ChannelOptions) error {
		switch {
		case o.HistorySize < 0 || o.HistorySize > 1_000_000:
			return fmt.Errorf("%s.history_size: must be 0-1000000, got %d", name, o.HistorySize)
		case o.HistoryTTL < 0:
			return fmt.Errorf("%s.history_ttl: must not be negative", name)
		case o.JoinLeave && !o.Presence:
			return fmt.Errorf("%s.join_leave needs presence: true", name)
		}
		return nil
	}
	for name, o := range a.Namespaces {
		if name == "" || strings.ContainsAny(name, ":/") || len(name) > 100 {
			return fmt.Errorf("namespaces: bad name %q", truncate(name))
		}
		if err := check("namespaces."+name, o); err != nil {
			return err
		}
	}
	if err := check("channel_defaults", a.ChannelDefaults); err != nil {
		return err
	}
	l := a.Limits
	if l.MaxConnections < 0 || l.MaxPublishRate < 0 || l.MaxMessageBytes < 0 {
		return errors.New("limits: must not be negative")
	}
	return a.validateWebhooks()
}

// ChannelOptionsFor returns the options of channel's namespace.
func (a *App) ChannelOptionsFor(channel string) config.ChannelOptions {
	if i := strings.IndexByte(channel, ':'); i > 0 {
		if o, ok := a.Namespaces[channel[:i]]; ok {
			return o.Config()
		}
	}
	return a.ChannelDefaults.Config()
}

// Prefix is what the app's channel names carry on the way to the broker.
func (a *App) Prefix() string { return a.ID + Separator }

// New returns an app with fresh keys: one JWT key, one API key, one admin
// key and the Pusher pair.
func New(id, name string, now time.Time) (*App, error) {
	a := &App{ID: id, Name: name, Created: now.UTC()}
	if a.Name == "" {
		a.Name = id
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	for _, kind := range []string{KindJWT, KindAPI, KindAdmin} {
		if _, err := a.AddKey(kind); err != nil {
			return nil, err
		}
	}
	a.Pusher = Pusher{Key: randHex(10), Secret: randHex(20)}
	return a, nil
}

// Key kinds, as the apps API names them.
const (
	KindAPI   = "api"
	KindJWT   = "jwt"
	KindAdmin = "admin"
)

// AddKey adds a fresh key of kind to a and returns its id.
func (a *App) AddKey(kind string) (string, error) {
	id := "k" + randID()
	switch kind {
	case KindJWT:
		a.JWTKeys = append(a.JWTKeys, JWTKey{ID: id, Alg: auth.AlgHS256, Secret: config.NewSecret()})
	case KindAPI:
		a.APIKeys = append(a.APIKeys, Key{ID: id, Key: config.NewAPIKey()})
	case KindAdmin:
		a.AdminKeys = append(a.AdminKeys, Key{ID: id, Key: config.NewAdminKey()})
	default:
		return "", fmt.Errorf("key kind %q: use api, jwt or admin", truncate(kind))
	}
	return id, a.Validate()
}

// ErrLastKey refuses to retire an app's last key of a kind: the app would
// be unusable (no client could connect, no backend publish).
var ErrLastKey = errors.New("it is the app's last key of its kind; add another first")

// ErrNoKey is returned for a key id the app does not have.
var ErrNoKey = errors.New("no such key")

// RetireKey removes the key with id, of whichever kind.
func (a *App) RetireKey(id string) error {
	if i := indexJWT(a.JWTKeys, id); i >= 0 {
		if len(a.JWTKeys) == 1 {
			return ErrLastKey
		}
		a.JWTKeys = append(a.JWTKeys[:i:i], a.JWTKeys[i+1:]...)
		return nil
	}
	for _, ks := range []*[]Key{&a.APIKeys, &a.AdminKeys} {
		for i, k := range *ks {
			if k.ID == id {
				if len(*ks) == 1 {
					return ErrLastKey
				}
				*ks = append((*ks)[:i:i], (*ks)[i+1:]...)
				return nil
			}
		}
	}
	return ErrNoKey
}

func indexJWT(ks []JWTKey, id string) int {
	for i, k := range ks {
		if k.ID == id {
			return i
		}
	}
	return -1
}

// Clone returns a deep copy, to change without touching a.
func (a *App) Clone() *App {
	b := *a
	b.JWTKeys = append([]JWTKey(nil), a.JWTKeys...)
	b.APIKeys = append([]Key(nil), a.APIKeys...)
	b.AdminKeys = append([]Key(nil), a.AdminKeys...)
	b.AllowedOrigins = append([]string(nil), a.AllowedOrigins...)
	if a.Namespaces != nil {
		b.Namespaces = make(map[string]ChannelOptions, len(a.Namespaces))
		for k, v := range a.Namespaces {
			b.Namespaces[k] = v
		}
	}
	b.Webhooks = cloneWebhooks(a.Webhooks)
	return &b
}

// Masked returns a copy fit to list: every secret cut to its first
// characters, enough to tell keys apart, never enough to use one.
func (a *App) Masked() *App {
	b := a.Clone()
	for i := range b.JWTKeys {
		b.JWTKeys[i].Secret = Mask(b.JWTKeys[i].Secret)
	}
	for i := range b.APIKeys {
		b.APIKeys[i].Key = Mask(b.APIKeys[i].Key)
	}
	for i := range b.AdminKeys {
		b.AdminKeys[i].Key = Mask(b.AdminKeys[i].Key)
	}
	b.Pusher.Secret = Mask(b.Pusher.Secret)
	for i := range b.Webhooks {
		b.Webhooks[i].Secret = Mask(b.Webhooks[i].Secret)
	}
	return b
}

// Mask keeps a secret's first characters and hides the rest.
func Mask(s string) string {
	n := min(len(s)/4, 8)
	return s[:n] + "…"
}

func randID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
