package server

import "github.com/eddyrt/eddy/internal/apps"

// Webhooks per app: each app's hub reports its channels under its app id,
// and each app's stored webhooks are put in force on every node as the
// node loads the app, so an app's events reach its own receivers only.

// appObserver is the hub.Observer of an app's hub: its channel names do
// not say their app, so it adds it.
type appObserver struct {
	app string
	w   Webhooks
}

func (o appObserver) LocalOccupied(channel string) { o.w.OccupiedIn(o.app, channel) }
func (o appObserver) LocalVacated(channel string)  { o.w.VacatedIn(o.app, channel) }

// observeApp makes a's hub report to the webhooks; a new app state calls it
// before its hub is used.
func (s *Server) observeApp(a *appState) {
	if s.opts.Webhooks != nil {
		a.hub.SetObserver(appObserver{app: a.id, w: s.opts.Webhooks})
	}
}

// appWebhooksChanged puts app m's receivers in force on this node (nil m:
// app id was deleted, its receivers stop).
func (s *Server) appWebhooksChanged(id string, m *apps.App) {
	if s.opts.Webhooks == nil {
		return
	}
	if m == nil {
		s.opts.Webhooks.SetAppHooks(id, nil)
		return
	}
	s.opts.Webhooks.SetAppHooks(id, m.Webhooks)
}

// appConnRefused reports to a's receivers that limit refused one of a's
// connections (the default app's go to the eddy.yaml receivers).
func (s *Server) appConnRefused(a *appState, limit string) {
	switch {
	case s.opts.Webhooks == nil:
	case a.isDefault():
		s.opts.Webhooks.ConnectionRefused(limit)
	default:
		s.opts.Webhooks.ConnectionRefusedIn(a.id, limit)
	}
}
