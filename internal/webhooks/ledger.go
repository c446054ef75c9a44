package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// A Ledger is where the nodes record which channels and members they hold,
// so that the node whose change turns the cluster-wide state over (the
// first holder of a channel, the last to let go of it) is the one that
// reports it. Fields are opaque strings (the Tracker's keys).
type Ledger interface {
	// Apply records this node's ops in order and reports, per op, whether
	// it turned the cluster-wide state over: a hold of a field nobody
	// held, or the release of the last hold. Holding a field twice, or
	// releasing one not held, changes nothing (so a retried Apply is
	// harmless). reaped reports that this node's holds had been released
	// by Reap before these ops (it was taken for dead): the caller holds
	// again what it still holds.
	Apply(ctx context.Context, ops []Op) (changed []bool, reaped bool, err error)
	// Reap releases every hold of the nodes that stopped calling Apply for
	// longer than the ledger's TTL and returns the fields whose last holder
	// they were. Exactly one caller gets each field.
	Reap(ctx context.Context) ([]string, error)
	// Leave releases all of this node's holds (a clean shutdown) and
	// returns the fields whose last holder it was.
	Leave(ctx context.Context) ([]string, error)
}

// Op is one change of this node's holds.
type Op struct {
	Field string
	Hold  bool // false: release
}

// MemoryLedger is the ledger of a node alone: its own holds are the cluster's.
type MemoryLedger struct {
	mu   sync.Mutex
	held map[string]bool
}

// NewMemoryLedger returns an empty one-node ledger.
func NewMemoryLedger() *MemoryLedger { return &MemoryLedger{held: map[string]bool{}} }

// Apply implements Ledger.
func (l *MemoryLedger) Apply(_ context.Context, ops []Op) ([]bool, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]bool, len(ops))
	for i, op := range ops {
		out[i] = l.held[op.Field] != op.Hold
		if op.Hold {
			l.held[op.Field] = true
		} else {
			delete(l.held, op.Field)
		}
	}
	return out, false, nil
}

// Reap implements Ledger: a lone node never sees another die.
func (l *MemoryLedger) Reap(context.Context) ([]string, error) { return nil, nil }

// Leave implements Ledger.
func (l *MemoryLedger) Leave(context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.held))
	for f := range l.held {
		out = append(out, f)
	}
	clear(l.held)
	return out, nil
}

// key is what the tracker follows: a channel's occupancy (user empty,
// kind 'o') or one user's membership of a presence channel (kind 'm').
type key struct {
	kind    byte
	app     string
	channel string
	user    string
}

const (
	kindOccupancy = 'o'
	kindMember    = 'm'
)

// field is k as a ledger field: a JSON array, which no channel or user
// name can break.
func (k key) field() string {
	var b []byte
	if k.kind == kindOccupancy {
		b, _ = json.Marshal([]string{"o", k.app, k.channel})
	} else {
		b, _ = json.Marshal([]string{"m", k.app, k.channel, k.user})
	}
	return string(b)
}

func parseField(f string) (key, error) {
	var parts []string
	if err := json.Unmarshal([]byte(f), &parts); err != nil {
		return key{}, fmt.Errorf("ledger field %q: %w", f, err)
	}
	switch {
	case len(parts) == 3 && parts[0] == "o":
		return key{kind: kindOccupancy, app: parts[1], channel: parts[2]}, nil
	case len(parts) == 4 && parts[0] == "m":
		return key{kind: kindMember, app: parts[1], channel: parts[2], user: parts[3]}, nil
	}
	return key{}, fmt.Errorf("ledger field %q: not an occupancy or member field", f)
}

// event is the event of k turning over to held (or not).
func (k key) event(held bool) Event {
	switch {
	case k.kind == kindOccupancy && held:
		return Event{Name: ChannelOccupied, Channel: k.channel}
	case k.kind == kindOccupancy:
		return Event{Name: ChannelVacated, Channel: k.channel}
	case held:
		return Event{Name: MemberAdded, Channel: k.channel, UserID: k.user}
	default:
		return Event{Name: MemberRemoved, Channel: k.channel, UserID: k.user}
	}
}
