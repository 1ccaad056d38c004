//go:build !unix

package etcdnode

// dirLock is a no-op where flock is not available; etcd's own locks remain.
type dirLock struct{}

func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release() error { return nil }
