package secretfile

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// Followed is a value loaded from one or more files and loaded again when
// one of them changes, checked by a stat of each file on every Get (no
// watcher, no goroutine). A load that fails keeps the last good value; the
// files are then not read again until they change once more (or Reload is
// called), so a half-written file is retried once it is complete and a
// broken one is reported once, not on every use. It is safe for concurrent
// use.
type Followed[T any] struct {
	paths    []string
	load     func() (T, error)
	onReload func(v T, err error)

	mu      sync.Mutex
	seen    []stamp // the files' stamps at the last load attempt
	val     T
	lastErr error
}

// stamp identifies a version of a file: a rename over it changes the
// inode, an edit the modification time or size.
type stamp struct {
	mod     time.Time
	size    int64
	ino     uint64
	missing bool
}

// Follow loads the value from paths with load, which must read the files
// itself; the first load must succeed. onReload, if not nil, is called
// after each later load attempt with the value in force and the attempt's
// error (nil: the value is the new one), so the caller can log it; it runs
// with the lock held and must not call back into f.
func Follow[T any](paths []string, load func() (T, error), onReload func(v T, err error)) (*Followed[T], error) {
	f := &Followed[T]{paths: paths, load: load, onReload: onReload}
	f.seen = f.stamps()
	v, err := load()
	if err != nil {
		return nil, err
	}
	f.val = v
	return f, nil
}

// Get returns the value, loading it again first if a file changed.
func (f *Followed[T]) Get() T {
	now := f.stamps()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !equalStamps(now, f.seen) {
		f.seen = now
		_ = f.reloadLocked()
	}
	return f.val
}

// Reload loads the value again whether or not the files changed (SIGHUP).
// On error the previous value stays and the error is returned.
func (f *Followed[T]) Reload() error {
	now := f.stamps()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = now
	return f.reloadLocked()
}

func (f *Followed[T]) reloadLocked() error {
	v, err := f.load()
	if err == nil {
		f.val = v
	}
	f.lastErr = err
	if f.onReload != nil {
		f.onReload(f.val, err)
	}
	return err
}

// Err is why the last load failed (the previous value stays), or nil.
func (f *Followed[T]) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

func (f *Followed[T]) stamps() []stamp {
	out := make([]stamp, len(f.paths))
	for i, p := range f.paths {
		st, err := os.Stat(p) // follows symlinks: a Kubernetes Secret's swap is seen
		if err != nil {
			out[i] = stamp{missing: true}
			continue
		}
		out[i] = stamp{mod: st.ModTime(), size: st.Size()}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			out[i].ino = sys.Ino
		}
	}
	return out
}

func equalStamps(a, b []stamp) bool {
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size || a[i].ino != b[i].ino || a[i].missing != b[i].missing {
			return false
		}
	}
	return true
}
