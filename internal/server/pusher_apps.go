package server

import (
	"crypto/subtle"
	"encoding/json"
)

// pusherApp is what the Pusher protocol needs of an app: its id (in the
// HTTP API's paths), key (in the WebSocket path and every signature),
// secret and whether its clients may send client events.
type pusherApp struct {
	ID           string
	Key          string
	Secret       string
	ClientEvents bool
}

// This file is the one place that decides which app a Pusher key or app id
// names. Today a node serves one app, from pusher_app_id, pusher_key and
// pusher_secret; an apps registry replaces these two functions.

func (s *Server) pusherDefaultApp() *pusherApp {
	if s.cfg.PusherKey == "" || s.cfg.PusherSecret == "" {
		return nil
	}
	return &pusherApp{ID: s.cfg.PusherAppID, Key: s.cfg.PusherKey, Secret: s.cfg.PusherSecret, ClientEvents: s.cfg.PusherClientEvents}
}

// appForPusherKey returns the app whose key is key.
func (s *Server) appForPusherKey(key string) (*pusherApp, bool) {
	a := s.pusher.app
	if a == nil || subtle.ConstantTimeCompare([]byte(key), []byte(a.Key)) != 1 {
		return nil, false
	}
	return a, true
}

// appForPusherID returns the app whose id is id.
func (s *Server) appForPusherID(id string) (*pusherApp, bool) {
	a := s.pusher.app
	if a == nil || id != a.ID {
		return nil, false
	}
	return a, true
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

func (p *pusherNode) clientEvent(channel, event string, data json.RawMessage, socketID, userID string) {
	if p.events != nil {
		p.events.ClientEvent(p.app.ID, channel, event, data, socketID, userID)
	}
}

func (p *pusherNode) cacheMiss(channel string) {
	if p.events != nil {
		p.events.CacheMiss(p.app.ID, channel)
	}
}
