package bench

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(Options) bool
		wantErr string
	}{
		{name: "defaults", args: nil, check: func(o Options) bool {
			return o.Calls == 2000 && o.Clients == 16 && o.Duration == 5*time.Second && o.JSONPath == ".bench/report.json"
		}},
		{name: "quick shortens", args: []string{"-quick"}, check: func(o Options) bool {
			return o.Calls == 300 && o.Duration == time.Second && o.Before == time.Second && o.After == 2*time.Second
		}},
		{name: "quick keeps explicit flags", args: []string{"-n", "50", "-quick", "-d", "3s"}, check: func(o Options) bool {
			return o.Calls == 50 && o.Duration == 3*time.Second && o.Rounds == 3
		}},
		{name: "rounds above calls", args: []string{"-n", "5", "-rounds", "10"}, wantErr: "-rounds 10"},
		{name: "stray argument", args: []string{"now"}, wantErr: `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(o) {
				t.Errorf("options = %+v", o)
			}
		})
	}
}
