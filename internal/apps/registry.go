package apps

import (
	"fmt"
	"sort"
	"sync/atomic"
)

// Registry answers which app an id or a key belongs to. It holds an
// immutable snapshot, replaced whole by Set, so lookups take no lock and
// see one consistent set of apps.
type Registry struct{ snap atomic.Pointer[snapshot] }

type snapshot struct {
	list     []*App
	byID     map[string]*App
	byAPI    map[string]*App
	byAdmin  map[string]*App
	byPusher map[string]*App
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.snap.Store(&snapshot{byID: map[string]*App{}, byAPI: map[string]*App{}, byAdmin: map[string]*App{}, byPusher: map[string]*App{}})
	return r
}

// Set replaces every app. An app whose id or any key is already taken by
// an earlier one (by id order) is left out and reported in the error, so
// that one bad entry cannot hide every other app; the rest are set.
func (r *Registry) Set(list []*App) error {
	sorted := append([]*App(nil), list...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	s := &snapshot{byID: map[string]*App{}, byAPI: map[string]*App{}, byAdmin: map[string]*App{}, byPusher: map[string]*App{}}
	var bad []string
	for _, a := range sorted {
		if err := s.conflict(a); err != nil {
			bad = append(bad, fmt.Sprintf("app %s: %v", a.ID, err))
			continue
		}
		s.list = append(s.list, a)
		s.byID[a.ID] = a
		for _, k := range a.APIKeys {
			s.byAPI[k.Key] = a
		}
		for _, k := range a.AdminKeys {
			s.byAdmin[k.Key] = a
		}
		if a.Pusher.Key != "" {
			s.byPusher[a.Pusher.Key] = a
		}
	}
	r.snap.Store(s)
	if bad != nil {
		return fmt.Errorf("apps left out: %v", bad)
	}
	return nil
}

// Conflict reports whether a's id or one of its keys belongs to another
// app of the registry (a itself, by id, excluded).
func (r *Registry) Conflict(a *App) error {
	s := r.snap.Load()
	c := *s
	c.byID = map[string]*App{}
	return c.conflict(a)
}

func (s *snapshot) conflict(a *App) error {
	if _, ok := s.byID[a.ID]; ok {
		return fmt.Errorf("id %q is taken", a.ID)
	}
	other := func(m map[string]*App, k string) bool { o, ok := m[k]; return ok && o.ID != a.ID }
	for _, k := range a.APIKeys {
		if other(s.byAPI, k.Key) || other(s.byAdmin, k.Key) {
			return fmt.Errorf("API key %s is another app's", k.ID)
		}
	}
	for _, k := range a.AdminKeys {
		if other(s.byAdmin, k.Key) || other(s.byAPI, k.Key) {
			return fmt.Errorf("admin key %s is another app's", k.ID)
		}
	}
	if a.Pusher.Key != "" && other(s.byPusher, a.Pusher.Key) {
		return fmt.Errorf("pusher key is another app's")
	}
	return nil
}

// List returns every app, by id.
func (r *Registry) List() []*App { return append([]*App(nil), r.snap.Load().list...) }

// ByID finds an app by id.
func (r *Registry) ByID(id string) (*App, bool) { a, ok := r.snap.Load().byID[id]; return a, ok }

// ByAPIKey finds the app an API key belongs to.
func (r *Registry) ByAPIKey(key string) (*App, bool) { a, ok := r.snap.Load().byAPI[key]; return a, ok }

// ByAdminKey finds the app an admin key belongs to.
func (r *Registry) ByAdminKey(key string) (*App, bool) {
	a, ok := r.snap.Load().byAdmin[key]
	return a, ok
}

// ByPusherKey finds the app a Pusher key belongs to.
func (r *Registry) ByPusherKey(key string) (*App, bool) {
	a, ok := r.snap.Load().byPusher[key]
	return a, ok
}
