package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/server/servertest"
	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func TestApplyConfig(t *testing.T) {
	e := newEnv(t, nil)
	_, rev0, err := e.store.Config(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(e.fleet, []byte("min_healthy: 1"), []byte("min_healthy: 2"), 1)

	t.Run("dry run shows the diff and stores nothing", func(t *testing.T) {
		resp, err := e.admin.ApplyConfig(e.ctx, &hangarv1.ApplyConfigRequest{Config: edited, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetChanged() || resp.GetRevision() != rev0 {
			t.Errorf("changed %v, revision %d; want true, the stored %d", resp.GetChanged(), resp.GetRevision(), rev0)
		}
		for _, want := range []string{"+++ config.yaml\n", "-    min_healthy: 1\n+    min_healthy: 2\n"} {
			if !strings.Contains(resp.GetDiff(), want) {
				t.Errorf("diff lacks %q:\n%s", want, resp.GetDiff())
			}
		}
		got, err := e.admin.GetConfig(e.ctx, &hangarv1.GetConfigRequest{})
		if err != nil || !bytes.Equal(got.GetConfig(), e.fleet) || got.GetRevision() != rev0 {
			t.Errorf("after a dry run the stored config changed (revision %d, err %v)", got.GetRevision(), err)
		}
	})

	t.Run("an invalid file is refused with the parser's message", func(t *testing.T) {
		bad := bytes.Replace(e.fleet, []byte("strategy: priority"), []byte("strategy: priorty"), 1)
		_, perr := fleetfile.Parse("fleet.yaml", bad, nil)
		if perr == nil {
			t.Fatal("the edited file parses; the test needs an invalid one")
		}
		_, err := e.admin.ApplyConfig(e.ctx, &hangarv1.ApplyConfigRequest{Config: bad, Name: "fleet.yaml"})
		if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != perr.Error() {
			t.Errorf("got %v\nwant InvalidArgument: %s", err, perr)
		}
		if !strings.HasPrefix(status.Convert(err).Message(), "fleet.yaml:") {
			t.Errorf("message %q does not start with file:line", status.Convert(err).Message())
		}
	})

	t.Run("apply stores it and logs config_applied", func(t *testing.T) {
		resp, err := e.admin.ApplyConfig(e.ctx, &hangarv1.ApplyConfigRequest{Config: edited})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetChanged() || resp.GetRevision() <= rev0 || resp.GetDiff() == "" {
			t.Errorf("apply: %v; want changed, a revision after %d, a diff", resp, rev0)
		}
		got, err := e.admin.GetConfig(e.ctx, &hangarv1.GetConfigRequest{})
		if err != nil || !bytes.Equal(got.GetConfig(), edited) || got.GetRevision() != resp.GetRevision() {
			t.Errorf("GetConfig after apply: revision %d, err %v; want the applied file at %d", got.GetRevision(), err, resp.GetRevision())
		}
		if evs := e.eventsOf("config_applied"); len(evs) != 1 || !strings.Contains(evs[0].Message, "config.yaml") {
			t.Errorf("config_applied events: %v; want one naming config.yaml", evs)
		}
		gs := groupStatus(t, e)
		if gs.GetMinHealthy() != 2 {
			t.Errorf("group status min_healthy %d after the apply, want 2", gs.GetMinHealthy())
		}

		again, err := e.admin.ApplyConfig(e.ctx, &hangarv1.ApplyConfigRequest{Config: edited})
		if err != nil {
			t.Fatal(err)
		}
		if again.GetChanged() || again.GetDiff() != "" || again.GetRevision() != resp.GetRevision() {
			t.Errorf("applying the same file again: %v; want unchanged, no diff, revision %d", again, resp.GetRevision())
		}
		if n := len(e.eventsOf("config_applied")); n != 1 {
			t.Errorf("%d config_applied events after applying the same file twice, want 1", n)
		}
	})
}

func TestDrainUndrain(t *testing.T) {
	e := newEnv(t, nil)
	a := e.connect("agent-1", true)
	a.Await("both members in rotation", 0, servertest.Rotation(primary, backup))

	mark := a.Mark()
	if _, err := e.admin.DrainMember(e.ctx, &hangarv1.DrainMemberRequest{Group: group, Member: primary}); err != nil {
		t.Fatal(err)
	}
	s := a.Await("my-mcp drained", mark, servertest.Rotation(backup)).Snap
	if !slices.Equal(servertest.GroupState(s, group).GetDrained(), []string{primary}) {
		t.Errorf("snapshot drained %v, want [my-mcp]", servertest.GroupState(s, group).GetDrained())
	}
	gs := groupStatus(t, e)
	if m := gs.GetMembers()[0]; !m.GetDrained() || m.GetInRotation() || m.GetReason() != "drained" || gs.GetActiveMember() != backup {
		t.Errorf("after drain: %v, active %q; want my-mcp drained, out (drained), backup active", m, gs.GetActiveMember())
	}
	// Draining again changes nothing and logs nothing.
	if _, err := e.admin.DrainMember(e.ctx, &hangarv1.DrainMemberRequest{Group: group, Member: primary}); err != nil {
		t.Fatal(err)
	}
	if evs := e.eventsOf("member_drained"); len(evs) != 1 || evs[0].Group != group || evs[0].Server != primary {
		t.Errorf("member_drained events: %v; want one for my-mcp-group/my-mcp", evs)
	}

	mark = a.Mark()
	if _, err := e.admin.UndrainMember(e.ctx, &hangarv1.UndrainMemberRequest{Group: group, Member: primary}); err != nil {
		t.Fatal(err)
	}
	a.Await("my-mcp back", mark, func(s *hangarv1.Snapshot) bool {
		return servertest.Rotation(primary, backup)(s) && len(servertest.GroupState(s, group).GetDrained()) == 0
	})
	if m := groupStatus(t, e).GetMembers()[0]; m.GetDrained() || !m.GetInRotation() || m.GetReason() != "" {
		t.Errorf("after undrain: %v; want in rotation, not drained", m)
	}
	if evs := e.eventsOf("member_undrained"); len(evs) != 1 || evs[0].Server != primary {
		t.Errorf("member_undrained events: %v; want one for my-mcp", evs)
	}

	tests := []struct {
		name          string
		group, member string
		want          string
	}{
		{"unknown member", group, "my-mcp-typo", `group "my-mcp-group" has no member "my-mcp-typo" (members: my-mcp, my-mcp-backup)`},
		{"unknown group", "nope", primary, `no group "nope" in the fleet config (groups: my-mcp-group)`},
		{"a server is not a group", primary, backup, `no group "my-mcp" in the fleet config (groups: my-mcp-group)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.admin.DrainMember(e.ctx, &hangarv1.DrainMemberRequest{Group: tt.group, Member: tt.member})
			if status.Code(err) != codes.NotFound || status.Convert(err).Message() != tt.want {
				t.Errorf("drain: %v; want NotFound: %s", err, tt.want)
			}
			_, err = e.admin.UndrainMember(e.ctx, &hangarv1.UndrainMemberRequest{Group: tt.group, Member: tt.member})
			if status.Code(err) != codes.NotFound {
				t.Errorf("undrain: %v; want NotFound", err)
			}
		})
	}
}

func TestResetBreaker(t *testing.T) {
	e := newEnv(t, nil)
	a := e.connect("agent-1", true)
	if g := servertest.GroupState(a.Await("a snapshot", 0, servertest.Rotation(primary, backup)).Snap, group); g.GetBreakerReset() != 0 {
		t.Fatalf("breaker_reset %d before any reset", g.GetBreakerReset())
	}
	mark := a.Mark()
	if _, err := e.admin.ResetBreaker(e.ctx, &hangarv1.ResetBreakerRequest{Group: group}); err != nil {
		t.Fatal(err)
	}
	a.Await("breaker_reset 1", mark, func(s *hangarv1.Snapshot) bool { return servertest.GroupState(s, group).GetBreakerReset() == 1 })
	if evs := e.eventsOf("breaker_reset"); len(evs) != 1 || evs[0].Group != group {
		t.Errorf("breaker_reset events: %v; want one for the group", evs)
	}
	_, err := e.admin.ResetBreaker(e.ctx, &hangarv1.ResetBreakerRequest{Group: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("reset of an unknown group: %v; want NotFound", err)
	}
}

func TestWatchEvents(t *testing.T) {
	e := newEnv(t, nil)
	after, err := e.store.Events(e.ctx, 0, 0) // the leader's own, if any
	if err != nil {
		t.Fatal(err)
	}
	var base uint64
	if len(after) > 0 {
		base = after[len(after)-1].Seq
	}
	appendEv := func(kind, group, server string) uint64 {
		t.Helper()
		ev, err := e.store.AppendEvent(e.ctx, store.Event{Kind: kind, Group: group, Server: server})
		if err != nil {
			t.Fatal(err)
		}
		return ev.Seq
	}
	appendEv("k1", "g1", "s1")
	appendEv("k2", "g2", "s1")
	appendEv("k3", "g1", "s2")
	appendEv("k4", "g1", "s1")

	tests := []struct {
		name string
		req  *hangarv1.WatchEventsRequest
		want []string
	}{
		{"all", &hangarv1.WatchEventsRequest{AfterSeq: base}, []string{"k1", "k2", "k3", "k4"}},
		{"group", &hangarv1.WatchEventsRequest{AfterSeq: base, Group: "g1"}, []string{"k1", "k3", "k4"}},
		{"server", &hangarv1.WatchEventsRequest{AfterSeq: base, Server: "s1"}, []string{"k1", "k2", "k4"}},
		{"group and server", &hangarv1.WatchEventsRequest{AfterSeq: base, Group: "g1", Server: "s1"}, []string{"k1", "k4"}},
		{"limit keeps the newest", &hangarv1.WatchEventsRequest{AfterSeq: base, Group: "g1", Limit: 2}, []string{"k3", "k4"}},
		{"after_seq", &hangarv1.WatchEventsRequest{AfterSeq: base + 2}, []string{"k3", "k4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := e.admin.WatchEvents(e.ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				ev, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.GetKind())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		stream, err := e.admin.WatchEvents(ctx, &hangarv1.WatchEventsRequest{AfterSeq: base, Limit: 1, Follow: true, Group: "g1", Server: "s1"})
		if err != nil {
			t.Fatal(err)
		}
		recv := func() *hangarv1.Event {
			t.Helper()
			ev, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}
		if ev := recv(); ev.GetKind() != "k4" {
			t.Fatalf("first event %v, want the newest past match, k4", ev)
		}
		appendEv("k5", "g2", "s1")
		seq := appendEv("k6", "g1", "s1")
		if ev := recv(); ev.GetKind() != "k6" || ev.GetSeq() != seq || ev.GetTime() == nil {
			t.Fatalf("next event %v, want k6 (seq %d)", ev, seq)
		}
		cancel()
		if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
			t.Errorf("after cancel: %v, want Canceled", err)
		}
	})

	t.Run("negative limit", func(t *testing.T) {
		stream, err := e.admin.WatchEvents(e.ctx, &hangarv1.WatchEventsRequest{Limit: -1})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("limit -1: %v, want InvalidArgument", err)
		}
	})
}
