package server

import (
	"crypto/subtle"
	"encoding/json"
	"sync"

	"github.com/eddyrt/eddy/internal/apps"
)

// pusherApp is what the Pusher protocol needs of an app: its id (in the
// HTTP API's paths), key (in the WebSocket path and every signature),
// secret and whether its clients may send client events, and the app's
// live state (hub, broker view, presence, functions) its channels live in.
type pusherApp struct {
	ID           string
	Key          string
	Secret       string
	ClientEvents bool
	state        *appState
}

// pusherChannels is one app's Pusher fan-outs on this node, by channel
// name; each app has its own, as each has its own channel space.
type pusherChannels struct {
	mu sync.Mutex
	m  map[string]*pusherChannel // made on first use
}

// This file is the one place that decides which app a Pusher key or app id
// names: the default app's Pusher app is pusher_app_id, pusher_key and
// pusher_secret from eddy.yaml; every other app's is its id and the key and
// secret generated when it was created (apps.Pusher).

func (s *Server) pusherDefaultApp() *pusherApp {
	if s.cfg.PusherKey == "" || s.cfg.PusherSecret == "" {
		return nil
	}
	return &pusherApp{ID: s.cfg.PusherAppID, Key: s.cfg.PusherKey, Secret: s.cfg.PusherSecret, ClientEvents: s.cfg.PusherClientEvents}
}

// defaultPusherApp is the default app's Pusher app with its state; nil when
// eddy.yaml gives it no Pusher key.
func (s *Server) defaultPusherApp() *pusherApp {
	a := s.pusher.app
	if a == nil {
		return nil
	}
	out := *a
	out.state = s.apps.def
	return &out
}

// registeredPusherApp is the Pusher app of a registry app. Client events
// follow the app's own pusher_client_events (apps.App), off by default.
func (s *Server) registeredPusherApp(m *apps.App) (*pusherApp, bool) {
	st, ok := s.appByID(m.ID)
	if !ok || st.isDefault() || m.Pusher.Key == "" || m.Pusher.Secret == "" {
		return nil, false
	}
	return &pusherApp{ID: m.ID, Key: m.Pusher.Key, Secret: m.Pusher.Secret, ClientEvents: m.PusherClientEvents, state: st}, true
}

// appForPusherKey returns the app whose key is key. The default app's key
// is compared in constant time; app keys are found by a map lookup.
func (s *Server) appForPusherKey(key string) (*pusherApp, bool) {
	if a := s.defaultPusherApp(); a != nil && subtle.ConstantTimeCompare([]byte(key), []byte(a.Key)) == 1 {
		return a, true
	}
	m, ok := s.apps.reg.ByPusherKey(key)
	if !ok {
		return nil, false
	}
	return s.registeredPusherApp(m)
}

// appForPusherID returns the app whose id is id: pusher_app_id names the
// default app, an app's id names it.
func (s *Server) appForPusherID(id string) (*pusherApp, bool) {
	if a := s.defaultPusherApp(); a != nil && id == a.ID {
		return a, true
	}
	m, ok := s.apps.reg.ByID(id)
	if !ok {
		return nil, false
	}
	return s.registeredPusherApp(m)
}

// PusherEvents receives the Pusher events that webhooks report and that
// only the Pusher layer sees (channel_occupied and the member events come
// from the hub and presence). A nil PusherEvents drops them.
type PusherEvents interface {
	// ClientEvent is a client-* event a Pusher client sent, after it was published.
	ClientEvent(appID, channel, event string, data json.RawMessage, socketID, userID string)
	// CacheMiss is a subscription to a cache channel that had no event to give.
	CacheMiss(appID, channel string)
}

// reportsEvents says whether app's events go to the webhooks: every
// app's do, under its Pusher app id (pusher_app_id for the default app,
// else the app's id), which names the app whose receivers get them. An
// app whose id is the default app's pusher_app_id is not reported: its
// events would reach the default app's receivers.
func (p *pusherNode) reportsEvents(app *pusherApp) bool {
	if p.events == nil {
		return false
	}
	return app.state.isDefault() || p.app == nil || app.ID != p.app.ID
}

func (p *pusherNode) clientEvent(app *pusherApp, channel, event string, data json.RawMessage, socketID, userID string) {
	if p.reportsEvents(app) {
		p.events.ClientEvent(app.ID, channel, event, data, socketID, userID)
	}
}

func (p *pusherNode) cacheMiss(app *pusherApp, channel string) {
	if p.reportsEvents(app) {
		p.events.CacheMiss(app.ID, channel)
	}
}

// clientEvents reports whether the app's clients may send client events
// now: an app's setting is read from its current settings, so a PATCH
// turns them on or off for the connections already open too.
func (p *pusherApp) clientEvents() bool {
	if p.state == nil || p.state.isDefault() {
		return p.ClientEvents
	}
	if m := p.state.conf.Load().model; m != nil {
		return m.PusherClientEvents
	}
	return p.ClientEvents
}
