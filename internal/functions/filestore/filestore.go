// Package filestore is a functions.Store on the local file system:
//
//	<dir>/functions/<name>.json   one file per function
//	<dir>/associations.json       all associations, one JSON array
//
// Every write goes to a temporary file in the same directory, is synced and
// renamed over the target, so a crash leaves the old or the new version.
// Files are created 0600 since http functions carry their secret.
package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/eddyrt/eddy/internal/functions"
)

// Store keeps functions and associations under a directory.
type Store struct {
	dir string
	mu  sync.Mutex // serializes writes, and the read-modify-write of associations.json
}

// New creates dir (and dir/functions) if needed and returns a store on it.
// Pass <data_dir>/functions-style paths as you like; New uses dir as given.
// Temporary files a crash left behind (a write killed before its rename)
// are removed: they never held a committed version.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "functions"), 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "functions")} {
		tmps, err := filepath.Glob(filepath.Join(d, ".tmp-*"))
		if err != nil {
			return nil, fmt.Errorf("filestore: %w", err)
		}
		for _, t := range tmps {
			if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("filestore: remove leftover %s: %w", t, err)
			}
		}
	}
	return &Store{dir: dir}, nil
}

func (s *Store) fnPath(name string) (string, error) {
	if !functions.ValidName(name) {
		return "", fmt.Errorf("filestore: invalid function name %q", name)
	}
	return filepath.Join(s.dir, "functions", name+".json"), nil
}

func (s *Store) assocPath() string { return filepath.Join(s.dir, "associations.json") }

// LoadAll reads every function file and associations.json. An unreadable
// function file is left out and reported in a *functions.LoadError.
func (s *Store) LoadAll(ctx context.Context) ([]functions.Function, []functions.Association, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(filepath.Join(s.dir, "functions"))
	if err != nil {
		return nil, nil, fmt.Errorf("filestore: %w", err)
	}
	var fns []functions.Function
	var bad []error
	for _, ent := range entries {
		name, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok || ent.IsDir() || !functions.ValidName(name) {
			continue // temp files and strays
		}
		var fn functions.Function
		if err := readJSON(filepath.Join(s.dir, "functions", ent.Name()), &fn); err != nil {
			bad = append(bad, err)
			continue
		}
		fn.Name = name
		fns = append(fns, fn)
	}
	assocs, err := s.loadAssocs()
	if err != nil {
		return nil, nil, err
	}
	if bad != nil {
		return fns, assocs, &functions.LoadError{Errs: bad}
	}
	return fns, assocs, nil
}

func (s *Store) loadAssocs() ([]functions.Association, error) {
	var as []functions.Association
	err := readJSON(s.assocPath(), &as)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return as, err
}

// PutFunction writes <dir>/functions/<name>.json.
func (s *Store) PutFunction(ctx context.Context, fn functions.Function) error {
	p, err := s.fnPath(fn.Name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeJSON(p, fn)
}

// DeleteFunction removes the function's file; a missing one is not an error.
func (s *Store) DeleteFunction(ctx context.Context, name string) error {
	p, err := s.fnPath(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: %w", err)
	}
	return syncDir(filepath.Dir(p))
}

// PutAssociation replaces the association with the same pattern.
func (s *Store) PutAssociation(ctx context.Context, a functions.Association) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	as, err := s.loadAssocs()
	if err != nil {
		return err
	}
	as = slices.DeleteFunc(as, func(x functions.Association) bool { return x.Pattern == a.Pattern })
	as = append(as, a)
	slices.SortFunc(as, func(x, y functions.Association) int { return strings.Compare(x.Pattern, y.Pattern) })
	return writeJSON(s.assocPath(), as)
}

// DeleteAssociation removes the association with pattern, if any.
func (s *Store) DeleteAssociation(ctx context.Context, pattern string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	as, err := s.loadAssocs()
	if err != nil {
		return err
	}
	n := len(as)
	as = slices.DeleteFunc(as, func(x functions.Association) bool { return x.Pattern == pattern })
	if len(as) == n {
		return nil
	}
	return writeJSON(s.assocPath(), as)
}

func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("filestore: %s: %w", path, err)
	}
	return nil
}

// writeJSON replaces path atomically: temp file, fsync, rename, fsync dir.
func writeJSON(path string, v any) (err error) {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if _, err = f.Write(append(raw, '\n')); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("filestore: sync %s: %w", dir, err)
	}
	return nil
}

var _ functions.Store = (*Store)(nil)
