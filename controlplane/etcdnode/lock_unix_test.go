//go:build unix

package etcdnode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A data dir whose database another etcd (not a Hangar one: no hangar.lock
// held) has open is refused at once; etcd alone would wait forever.
func TestDataDirDatabaseLocked(t *testing.T) {
	dir := t.TempDir()
	start(t, Config{Dir: dir, Fast: true}).Close()

	db := filepath.Join(dir, "member", "snap", "db")
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{Dir: dir, Fast: true})
	if err == nil {
		n.Close()
		t.Fatal("Start with a locked database succeeded")
	}
	if !errors.Is(err, ErrDataDirLocked) || !strings.Contains(err.Error(), db) {
		t.Fatalf("err = %v, want ErrDataDirLocked naming %s", err, db)
	}
}
