//go:build unix

package etcdnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dirLock is an exclusive flock on the data dir's lock file, held while the
// node runs so that two Hangar processes never open the same directory.
type dirLock struct{ f *os.File }

// lockName is the file in the data dir that only one node may hold.
const lockName = "hangar.lock"

func lockPath(dir string) string { return filepath.Join(dir, lockName) }

// lockDir takes the data dir's lock and checks that no other etcd (a Hangar
// one or not) has the dir's database open. Without that check etcd would wait
// forever for the database's flock.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("etcdnode: open lock file: %w", err)
	}
	if err := tryFlock(f); err != nil {
		f.Close()
		return nil, lockError(dir, lockPath(dir), err)
	}
	db := filepath.Join(dir, "member", "snap", "db")
	if dbf, err := os.OpenFile(db, os.O_RDWR, 0); err == nil {
		err = tryFlock(dbf)
		if err == nil {
			syscall.Flock(int(dbf.Fd()), syscall.LOCK_UN)
		}
		dbf.Close()
		if err != nil {
			f.Close()
			return nil, lockError(dir, db, err)
		}
	}
	return &dirLock{f: f}, nil
}

func tryFlock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

func lockError(dir, file string, err error) error {
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w: %s is locked; stop the other etcd or hangar-controlplane using %s, or choose another --data-dir",
			ErrDataDirLocked, file, dir)
	}
	return fmt.Errorf("etcdnode: lock %s: %w", file, err)
}

// release unlocks and closes the lock file; closing releases the flock.
func (l *dirLock) release() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("etcdnode: release lock: %w", err)
	}
	return nil
}
