package store

import (
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestStatus(t *testing.T) {
	s, n := newStore(t)
	ctx := ctxFor(t)
	if _, err := s.Campaign(ctx, newSession(t, s, time.Second), "cp-1"); err != nil {
		t.Fatal(err)
	}

	// A second endpoint that refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: append(n.Endpoints(), dead), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	st, err := New(cli, "").Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Leader != "cp-1" || st.DBSize <= 0 || len(st.Endpoints) != 2 {
		t.Fatalf("Status() = %+v, want leader cp-1, a db size, two endpoints", st)
	}
	if up := st.Endpoints[0]; !up.Healthy || up.Err != "" || !up.IsLeader || up.Version == "" || up.Endpoint != n.Endpoints()[0] {
		t.Errorf("live endpoint = %+v, want healthy raft leader", up)
	}
	if down := st.Endpoints[1]; down.Healthy || down.Err == "" || down.Endpoint != dead {
		t.Errorf("dead endpoint = %+v, want unhealthy with an error", down)
	}
}
