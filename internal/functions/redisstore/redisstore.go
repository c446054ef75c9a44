// Package redisstore keeps functions and associations in Redis for cluster
// mode, and tells every node to reload when one of them changes something.
package redisstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/functions"
)

// Topic is the cluster notification sent after every change.
const Topic = "functions"

// Backend is what the store needs from the Redis broker.
type Backend interface {
	ControlClient() (rueidis.Client, string, error)
	Notify(ctx context.Context, topic string, payload []byte) error
}

// Store implements functions.Store with two Redis hashes.
type Store struct{ b Backend }

var _ functions.Store = (*Store)(nil)

// New returns a store over b.
func New(b Backend) *Store { return &Store{b: b} }

func (s *Store) keys() (rueidis.Client, string, string, error) {
	c, prefix, err := s.b.ControlClient()
	if err != nil {
		return nil, "", "", fmt.Errorf("functions store: %w", err)
	}
	return c, prefix + ":functions", prefix + ":associations", nil
}

// LoadAll implements functions.Store.
func (s *Store) LoadAll(ctx context.Context) ([]functions.Function, []functions.Association, error) {
	c, fk, ak, err := s.keys()
	if err != nil {
		return nil, nil, err
	}
	res := c.DoMulti(ctx, c.B().Hgetall().Key(fk).Build(), c.B().Hgetall().Key(ak).Build())
	fm, err := res[0].AsStrMap()
	if err != nil {
		return nil, nil, fmt.Errorf("load functions: %w", err)
	}
	am, err := res[1].AsStrMap()
	if err != nil {
		return nil, nil, fmt.Errorf("load associations: %w", err)
	}
	// An entry that does not decode is left out and reported, so that one
	// bad entry cannot stop every node from starting.
	var bad []error
	fns := make([]functions.Function, 0, len(fm))
	for name, v := range fm {
		var f functions.Function
		if err := json.Unmarshal([]byte(v), &f); err != nil {
			bad = append(bad, fmt.Errorf("load function %q: %w", name, err))
			continue
		}
		fns = append(fns, f)
	}
	as := make([]functions.Association, 0, len(am))
	for pattern, v := range am {
		var a functions.Association
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			bad = append(bad, fmt.Errorf("load association %q: %w", pattern, err))
			continue
		}
		as = append(as, a)
	}
	if bad != nil {
		return fns, as, &functions.LoadError{Errs: bad}
	}
	return fns, as, nil
}

func (s *Store) write(ctx context.Context, what string, build func(c rueidis.Client, fk, ak string) rueidis.Completed) error {
	c, fk, ak, err := s.keys()
	if err != nil {
		return err
	}
	if err := c.Do(ctx, build(c, fk, ak)).Error(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// The other nodes reload on this; the change is already durable, so a
	// failed notify only delays it until their next reload.
	if err := s.b.Notify(ctx, Topic, nil); err != nil {
		return fmt.Errorf("%s: saved, but notifying the other nodes failed: %w", what, err)
	}
	return nil
}

// PutFunction implements functions.Store.
func (s *Store) PutFunction(ctx context.Context, fn functions.Function) error {
	b, err := json.Marshal(fn)
	if err != nil {
		return err
	}
	return s.write(ctx, "save function "+fn.Name, func(c rueidis.Client, fk, _ string) rueidis.Completed {
		return c.B().Hset().Key(fk).FieldValue().FieldValue(fn.Name, string(b)).Build()
	})
}

// DeleteFunction implements functions.Store.
func (s *Store) DeleteFunction(ctx context.Context, name string) error {
	return s.write(ctx, "delete function "+name, func(c rueidis.Client, fk, _ string) rueidis.Completed {
		return c.B().Hdel().Key(fk).Field(name).Build()
	})
}

// PutAssociation implements functions.Store.
func (s *Store) PutAssociation(ctx context.Context, a functions.Association) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.write(ctx, "save association "+a.Pattern, func(c rueidis.Client, _, ak string) rueidis.Completed {
		return c.B().Hset().Key(ak).FieldValue().FieldValue(a.Pattern, string(b)).Build()
	})
}

// DeleteAssociation implements functions.Store.
func (s *Store) DeleteAssociation(ctx context.Context, pattern string) error {
	return s.write(ctx, "delete association "+pattern, func(c rueidis.Client, _, ak string) rueidis.Completed {
		return c.B().Hdel().Key(ak).Field(pattern).Build()
	})
}
