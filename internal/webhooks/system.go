package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/config"
)

// SystemOptions assemble a node's webhooks.
type SystemOptions struct {
	Dispatcher Options
	// Static are the webhooks of eddy.yaml.
	Static []config.Webhook
	// Store keeps the webhooks added through the admin API.
	Store Store
	// Ledger decides occupancy and membership: NewMemoryLedger for one
	// node, NewRedisLedger for a cluster. Every is its renewal period.
	Ledger Ledger
	Every  time.Duration
	AppOf  func(channel string) string
	// DefaultPusherApp is the Pusher app id of the default app
	// (pusher_app_id): the Pusher events reported under it are the
	// default app's; those under another id are that app's.
	DefaultPusherApp string
}

// System is a node's webhooks: the dispatcher that sends, the tracker that
// decides occupancy and membership events, and the receivers in force
// (eddy.yaml's plus the stored ones).
type System struct {
	Dispatcher *Dispatcher
	Tracker    *Tracker
	store      Store
	static     []config.Webhook
	log        *slog.Logger
	reloading  sync.Mutex
	defPusher  string
}

// NewSystem assembles and starts a node's webhooks and loads the stored
// receivers. A store that cannot be read is logged, not fatal: the node
// serves, and the next Reload tries again.
func NewSystem(opts SystemOptions) *System {
	d := NewDispatcher(opts.Dispatcher)
	s := &System{Dispatcher: d, store: opts.Store, log: d.log, defPusher: opts.DefaultPusherApp}
	for i, w := range opts.Static {
		w.ID = fmt.Sprintf("config-%d", i+1)
		s.static = append(s.static, w)
	}
	ledger := opts.Ledger
	if ledger == nil {
		ledger = NewMemoryLedger()
	}
	s.Tracker = NewTracker(TrackerOptions{Ledger: ledger, Emit: d.Emit, AppOf: opts.AppOf, Every: opts.Every, Logger: opts.Dispatcher.Logger})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Reload(ctx); err != nil {
		s.log.Warn("webhooks: stored receivers not loaded; using eddy.yaml's until the next change", "err", err)
	}
	return s
}

// Reload reads the stored receivers again and puts them in force with
// those of eddy.yaml.
func (s *System) Reload(ctx context.Context) error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	hooks := slices.Clone(s.static)
	var err error
	if s.store != nil {
		var stored []config.Webhook
		stored, err = s.store.List(ctx)
		for _, w := range stored {
			if verr := w.Validate(); verr != nil {
				s.log.Warn("webhooks: stored receiver skipped", "id", w.ID, "err", verr)
				continue
			}
			hooks = append(hooks, w)
		}
		if err != nil && len(stored) == 0 {
			return err
		}
	}
	s.enableTracking(hooks)
	s.Dispatcher.SetHooks(hooks)
	return err
}

// enableTracking starts tracking channels and members when some of hooks
// asks for their events. It comes before the receivers are in force, so
// whoever sees them listed sees their channels tracked.
func (s *System) enableTracking(hooks []config.Webhook) {
	for _, h := range hooks {
		for _, name := range h.Events {
			switch name {
			case ChannelOccupied, ChannelVacated, MemberAdded, MemberRemoved:
				s.Tracker.Enable()
			}
		}
	}
}

// SetAppHooks puts app's own receivers in force (an app other than the
// default one; nil: it has none). Each node sets them from the app's
// stored settings.
func (s *System) SetAppHooks(app string, hooks []config.Webhook) {
	s.enableTracking(hooks)
	s.Dispatcher.SetAppHooks(app, hooks)
}

// OccupiedIn reports this node's first subscriber of a channel of app.
func (s *System) OccupiedIn(app, channel string) { s.Tracker.OccupiedIn(app, channel) }

// VacatedIn reports that this node's last subscriber of app's channel left.
func (s *System) VacatedIn(app, channel string) { s.Tracker.VacatedIn(app, channel) }

// MemberJoinedIn reports a presence member's connection in app's channel.
func (s *System) MemberJoinedIn(app, channel, user string) {
	s.Tracker.MemberJoinedIn(app, channel, user)
}

// MemberLeftIn reports that a member's connection left app's channel.
func (s *System) MemberLeftIn(app, channel, user string) { s.Tracker.MemberLeftIn(app, channel, user) }

// pusherApp maps a Pusher app id to the app whose receivers get its events.
func (s *System) pusherApp(id string) string {
	if id == s.defPusher {
		return ""
	}
	return id
}

// isStatic reports whether id is an eddy.yaml receiver.
func (s *System) isStatic(id string) bool {
	for _, w := range s.static {
		if w.ID == id {
			return true
		}
	}
	return false
}

// Close stops the tracker (this node's channels and members are released,
// reporting those it held last), then gives the dispatcher until ctx ends
// to send what is queued.
func (s *System) Close(ctx context.Context) {
	s.Tracker.Close(ctx)
	s.Dispatcher.Close(ctx)
}

// LocalOccupied implements hub.Observer (through the server's Webhooks).
func (s *System) LocalOccupied(channel string) { s.Tracker.LocalOccupied(channel) }

// LocalVacated implements hub.Observer.
func (s *System) LocalVacated(channel string) { s.Tracker.LocalVacated(channel) }

// MemberJoined reports a presence member's connection on this node.
func (s *System) MemberJoined(channel, user string) { s.Tracker.MemberJoined(channel, user) }

// MemberLeft reports that a presence member's connection left.
func (s *System) MemberLeft(channel, user string) { s.Tracker.MemberLeft(channel, user) }

// ConnectionRefused reports a connection refused by limit.
func (s *System) ConnectionRefused(limit string) { s.Dispatcher.ConnectionRefused(limit) }

// ConnectionRefusedIn reports a connection of app refused by limit, to
// app's own receivers.
func (s *System) ConnectionRefusedIn(app, limit string) { s.Dispatcher.ConnectionRefusedIn(app, limit) }

// FunctionFailedIn reports the failure or timeout of a function of app,
// to app's own receivers.
func (s *System) FunctionFailedIn(app, function, channel string, err error) {
	s.Dispatcher.FunctionFailedIn(app, function, channel, err)
}

// FunctionFailed reports a function's failure or timeout.
func (s *System) FunctionFailed(function, channel string, err error) {
	s.Dispatcher.FunctionFailed(function, channel, err)
}

// Emit sends ev, seen by this node alone, to app's receivers.
func (s *System) Emit(app string, ev Event) { s.Dispatcher.Emit(app, ev) }

// ClientEvent reports a Pusher client-* event (server.PusherEvents): data
// goes out as the string Pusher's webhook carries, the JSON string's text
// when the client sent a string, else the JSON itself.
func (s *System) ClientEvent(appID, channel, event string, data json.RawMessage, socketID, userID string) {
	text := string(data)
	var str string
	if json.Unmarshal(data, &str) == nil {
		text = str
	}
	s.Emit(s.pusherApp(appID), Event{Name: ClientEvent, Channel: channel, Event: event, Data: text, SocketID: socketID, UserID: userID})
}

// CacheMiss reports a subscription to a Pusher cache channel that had no
// event to give (server.PusherEvents).
func (s *System) CacheMiss(appID, channel string) {
	s.Emit(s.pusherApp(appID), Event{Name: CacheMiss, Channel: channel})
}
