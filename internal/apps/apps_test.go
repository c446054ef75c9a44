package apps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateNamesWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		a    App
		want string
	}{
		{App{ID: "Bad_ID"}, "app id"},
		{App{ID: strings.Repeat("a", 64)}, "app id"},
		{App{ID: "ok", Limits: Limits{MaxConnections: -1}}, "limits"},
		{App{ID: "ok", Namespaces: map[string]ChannelOptions{"chat": {JoinLeave: true}}}, "namespaces.chat.join_leave"},
		{App{ID: "ok", Namespaces: map[string]ChannelOptions{"a:b": {}}}, "bad name"},
		{App{ID: "ok", AllowedOrigins: []string{""}}, "allowed_origins"},
	} {
		if err := c.a.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %q", c.a, err, c.want)
		}
	}
}

func TestKeysAndRotation(t *testing.T) {
	a, err := New("shop", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "shop" || len(a.JWTKeys) != 1 || len(a.APIKeys) != 1 || len(a.AdminKeys) != 1 || a.Pusher.Key == "" || a.Pusher.Secret == "" {
		t.Fatalf("new app: %+v", a)
	}
	old := a.JWTKeys[0].ID
	if err := a.RetireKey(old); !errors.Is(err, ErrLastKey) {
		t.Fatalf("retiring the last key: %v", err)
	}
	if _, err := a.AddKey(KindJWT); err != nil {
		t.Fatal(err)
	}
	if err := a.RetireKey(old); err != nil || len(a.JWTKeys) != 1 || a.JWTKeys[0].ID == old {
		t.Fatalf("retire: %v %+v", err, a.JWTKeys)
	}
	if err := a.RetireKey("nosuch"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := a.AddKey("root"); err == nil {
		t.Fatal("unknown kind accepted")
	}
	m := a.Masked()
	if m.APIKeys[0].Key == a.APIKeys[0].Key || !strings.HasSuffix(m.JWTKeys[0].Secret, "…") || a.APIKeys[0].Key == "" {
		t.Fatalf("masked: %+v (original %+v)", m, a)
	}
}

func TestRegistryLeavesOutConflicts(t *testing.T) {
	a, _ := New("a", "", time.Now())
	b, _ := New("b", "", time.Now())
	b.APIKeys = append(b.APIKeys, a.APIKeys[0]) // a key of a's
	r := NewRegistry()
	if err := r.Set([]*App{a, b}); err == nil || !strings.Contains(err.Error(), "app b") {
		t.Fatalf("conflict not reported: %v", err)
	}
	if got, ok := r.ByAPIKey(a.APIKeys[0].Key); !ok || got.ID != "a" {
		t.Fatalf("the first app keeps its key: %v %v", got, ok)
	}
	if _, ok := r.ByID("b"); ok {
		t.Fatal("the conflicting app was set")
	}
	if got, ok := r.ByAdminKey(a.AdminKeys[0].Key); !ok || got.ID != "a" {
		t.Fatal("admin key lookup")
	}
	if got, ok := r.ByPusherKey(a.Pusher.Key); !ok || got.ID != "a" {
		t.Fatal("pusher key lookup")
	}
	if err := r.Conflict(b); err == nil {
		t.Fatal("Conflict missed b's borrowed key")
	}
}

func TestStores(t *testing.T) {
	fs, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Store{"file": fs, "memory": NewMemStore()} {
		ctx := context.Background()
		a, _ := New("a", "A", time.Now())
		if err := s.Create(ctx, a); err != nil {
			t.Fatal(name, err)
		}
		if err := s.Create(ctx, a); !errors.Is(err, ErrExists) {
			t.Fatalf("%s: second create: %v", name, err)
		}
		b := a.Clone()
		b.Name = "changed"
		if err := s.Update(ctx, b); err != nil {
			t.Fatal(name, err)
		}
		list, err := s.Load(ctx)
		if err != nil || len(list) != 1 || list[0].Name != "changed" || list[0].APIKeys[0].Key != a.APIKeys[0].Key {
			t.Fatalf("%s: load: %v %+v", name, err, list)
		}
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatal(name, err)
		}
		if err := s.Delete(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: second delete: %v", name, err)
		}
		if err := s.Update(ctx, b); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: update of a deleted app: %v", name, err)
		}
	}
}
