package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/broker"
)

// The node registry is a KV bucket (<prefix>_nodes) whose entries expire
// after NodeTTL: a node's announcement is its entry.

var _ broker.NodeRegistry = (*Broker)(nil)

func (b *Broker) nodesBucket() (jetstream.KeyValue, error) {
	if r := b.nodesKV.Load(); r != nil && b.ensured.Load() {
		return r.kv, nil
	}
	return nil, errors.New("not connected")
}

// Announce records info (its ID defaulting to this node's) for NodeTTL.
func (b *Broker) Announce(ctx context.Context, info api.NodeInfo) error {
	if info.ID == "" {
		info.ID = b.opts.NodeID
	}
	kv, err := b.nodesBucket()
	if err != nil {
		return unavailable("announce", err)
	}
	js, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("nats broker: encode node info: %w", err)
	}
	if _, err := kv.Put(ctx, token(info.ID), js); err != nil {
		return unavailable("announce", err)
	}
	return nil
}

// Nodes lists the nodes whose last announcement has not expired, by ID.
func (b *Broker) Nodes(ctx context.Context) ([]api.NodeInfo, error) {
	kv, err := b.nodesBucket()
	if err != nil {
		return nil, unavailable("nodes", err)
	}
	entries, err := readAll(ctx, kv, ">")
	if err != nil {
		return nil, unavailable("nodes", err)
	}
	out := make([]api.NodeInfo, 0, len(entries))
	for _, e := range entries {
		var n api.NodeInfo
		if err := json.Unmarshal(e.Value(), &n); err != nil {
			return nil, fmt.Errorf("nats broker: node %s: %w", e.Key(), err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// forgetNode removes this node's announcement, on Close.
func (b *Broker) forgetNode() {
	kv, err := b.nodesBucket()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = kv.Delete(ctx, token(b.opts.NodeID))
}

// readAll returns the live entries of kv whose keys match filter: a watch
// delivers the current values, then a nil entry.
func readAll(ctx context.Context, kv jetstream.KeyValue, filter string) ([]jetstream.KeyValueEntry, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opTimeout)
		defer cancel()
	}
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch ended")
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		}
	}
}
