package admin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

func TestToStatus(t *testing.T) {
	cfgErr := fleetfile.Errors{{File: "config.yaml", Line: 7, Path: "mcp_servers.g.strategy", Msg: "unknown strategy"}}
	denied := status.Error(codes.PermissionDenied, "no")
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string // "" skips the check
	}{
		{"nil", nil, codes.OK, ""},
		{"unknown group", notFoundf("no group %q", "g"), codes.NotFound, `no group "g"`},
		{"wrapped not found", fmt.Errorf("drain: %w", notFoundf("no member")), codes.NotFound, "drain: no member"},
		{"config errors", cfgErr, codes.InvalidArgument, "config.yaml:7: mcp_servers.g.strategy: unknown strategy"},
		{"bad name", fmt.Errorf("drain: %w", store.ErrBadName), codes.InvalidArgument, ""},
		{"not leader", fmt.Errorf("put: %w", store.ErrNotLeader), codes.Unavailable, ""},
		{"session expired", store.ErrSessionExpired, codes.Unavailable, ""},
		{"deadline", fmt.Errorf("get config: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "get config: context deadline exceeded"},
		{"canceled", context.Canceled, codes.Canceled, ""},
		{"etcd without a leader", fmt.Errorf("get config: %w", rpctypes.ErrNoLeader), codes.Unavailable, "etcd: get config: etcdserver: no leader (etcd is down or has lost quorum)"},
		{"etcd unreachable", fmt.Errorf("get config: %w", status.Error(codes.Unavailable, "connection refused")), codes.Unavailable, ""},
		{"etcd says something odd", fmt.Errorf("txn: %w", rpctypes.ErrGRPCDuplicateKey), codes.Internal, ""},
		{"already a status", denied, codes.PermissionDenied, "no"},
		{"other", errors.New("boom"), codes.Internal, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toStatus(tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("toStatus(nil) = %v", got)
				}
				return
			}
			st, ok := status.FromError(got)
			if !ok {
				t.Fatalf("%v is not a status", got)
			}
			if st.Code() != tt.wantCode || (tt.wantMsg != "" && st.Message() != tt.wantMsg) {
				t.Errorf("got %v: %q; want %v: %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
		})
	}
	if toStatus(denied) != denied {
		t.Errorf("a status error was not returned unchanged")
	}
}

// The expected outputs are GNU diff -u's, with the labels given.
func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"both empty", "", "", ""},
		{"from nothing", "", "a\nb\n", "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"to nothing", "a\n", "", "--- old\n+++ new\n@@ -1 +0,0 @@\n-a\n"},
		{"one line changed in the middle",
			"1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
			"--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"two hunks",
			"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve\n",
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+twelve\n"},
		{"close changes share a hunk",
			"1\n2\n3\n4\n5\n6\n7\n", "1\nB\n3\n4\n5\nF\n7\n",
			"--- old\n+++ new\n@@ -1,7 +1,7 @@\n 1\n-2\n+B\n 3\n 4\n 5\n-6\n+F\n 7\n"},
		{"insertion", "a\nc\n", "a\nb\nc\n", "--- old\n+++ new\n@@ -1,2 +1,3 @@\n a\n+b\n c\n"},
		{"no newline at end", "a\nb", "a\nb\n",
			"--- old\n+++ new\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unifiedDiff("old", "new", []byte(tt.a), []byte(tt.b)); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestUnifiedDiffLargeChange(t *testing.T) {
	var a, b []byte
	for i := range 5000 {
		a = fmt.Appendf(a, "a%d\n", i)
		b = fmt.Appendf(b, "b%d\n", i)
	}
	got := unifiedDiff("old", "new", a, b)
	if want := "--- old\n+++ new\n@@ -1,5000 +1,5000 @@\n-a0\n"; got[:len(want)] != want {
		t.Errorf("got %q…", got[:len(want)])
	}
}
