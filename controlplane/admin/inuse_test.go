package admin

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func TestRemovedInUse(t *testing.T) {
	raw, err := os.ReadFile("../../internal/fleetfile/testdata/recipes/04-failover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(s string) *fleetfile.Fleet {
		f, err := fleetfile.Parse("f.yaml", []byte(s), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	full := string(raw)
	noGroup := full[:strings.Index(full, "  my-mcp-group:")]
	noBackup := full[:strings.Index(full, "      - id: my-mcp-backup")]
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	agent := func(ago time.Duration) []*hangarv1.AgentReport {
		at := timestamppb.New(now.Add(-ago))
		return []*hangarv1.AgentReport{{Report: &hangarv1.Report{
			Groups:  []*hangarv1.GroupReport{{Group: "my-mcp-group", LastCall: at}},
			Members: []*hangarv1.MemberReport{{Member: "my-mcp-backup", LastCall: at}},
		}}}
	}
	tests := []struct {
		name   string
		next   string
		agents []*hangarv1.AgentReport
		want   []string
	}{
		{"busy group removed", noGroup, agent(2 * time.Minute), []string{`group "my-mcp-group" is removed, and it carried calls 2m0s ago`}},
		{"idle group removed", noGroup, agent(11 * time.Minute), nil},
		{"no caller", noGroup, nil, nil},
		{"busy member removed", noBackup, agent(30 * time.Second), []string{`member "my-mcp-backup" is removed from group "my-mcp-group", and it carried calls 30s ago`}},
		{"nothing removed", full, agent(time.Second), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := removedInUse(parse(full), parse(tt.next), tt.agents, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
