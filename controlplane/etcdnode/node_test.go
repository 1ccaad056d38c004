package etcdnode

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("etcd ready in %v at %v", time.Since(begin).Round(time.Millisecond), n.Endpoints())
	return n
}

func put(t *testing.T, n *Node, key, val string) {
	t.Helper()
	cli, err := n.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func get(t *testing.T, n *Node, key string) string {
	t.Helper()
	cli, err := n.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	n := start(t, Config{Dir: dir, Fast: true})
	if eps := n.Endpoints(); len(eps) != 1 || strings.HasSuffix(eps[0], ":0") {
		t.Fatalf("Endpoints() = %v, want one real address", eps)
	}
	put(t, n, "k", "v1")
	if got := get(t, n, "k"); got != "v1" {
		t.Fatalf("get = %q, want v1", got)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	n = start(t, Config{Dir: dir, Fast: true})
	defer n.Close()
	if got := get(t, n, "k"); got != "v1" {
		t.Fatalf("after restart get = %q, want v1", got)
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	n := start(t, Config{Dir: dir, Fast: true})
	defer n.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n2, err := Start(ctx, Config{Dir: dir, Fast: true})
	if err == nil {
		n2.Close()
		t.Fatal("second Start on the same dir succeeded")
	}
	if !errors.Is(err, ErrDataDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want ErrDataDirLocked naming %s", err, dir)
	}
	t.Log(err)
}

func TestAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	url := "http://" + l.Addr().String()

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"client", Config{ClientURL: url}},
		{"peer", Config{PeerURL: url}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Dir, tc.cfg.Fast = t.TempDir(), true
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n, err := Start(ctx, tc.cfg)
			if err == nil {
				n.Close()
				t.Fatal("Start on a busy port succeeded")
			}
			if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), tc.name+" url "+url) {
				t.Fatalf("err = %v, want ErrAddrInUse naming the %s url", err, tc.name)
			}
			t.Log(err)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no dir", Config{}, "data dir is required"},
		{"bad url", Config{Dir: t.TempDir(), ClientURL: "127.0.0.1:2379"}, `client url "127.0.0.1:2379"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Start(context.Background(), tc.cfg)
			if err == nil {
				n.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level slog.Level
		want  bool
	}{
		{"info hides etcd", slog.LevelInfo, false},
		{"debug shows etcd", slog.LevelDebug, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, &slog.HandlerOptions{Level: tc.level}))
			n := start(t, Config{Dir: t.TempDir(), Fast: true, Logger: log})
			n.Close()
			out := buf.String()
			if !strings.Contains(out, "etcd_started") {
				t.Errorf("log lacks etcd_started:\n%s", out)
			}
			if got := strings.Contains(out, "component=etcd"); got != tc.want {
				t.Errorf("etcd's own logs shown = %v, want %v", got, tc.want)
			}
		})
	}
}
