package mathserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

func TestAdminFaultsRoundTrip(t *testing.T) {
	f := start(t, mathserver.Options{})
	admin := mathserver.NewAdminClient(f.url + mathserver.MCPPath) // the endpoint URL works too
	set := mathserver.Faults{
		FailTools: []string{"divide", "add", "add"},
		FailRate:  0.8,
		FailMode:  mathserver.FailTool,
		Latency:   50 * time.Millisecond,
		FailList:  true,
	}
	if err := admin.SetFaults(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	want := set
	want.FailTools = []string{"add", "divide"}
	got, err := admin.Faults(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /admin/faults (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.srv.Faults()); diff != "" {
		t.Errorf("Server.Faults (-want +got):\n%s", diff)
	}
	wire := `{"fail_tools":["add","divide"],"fail_rate":0.8,"fail_mode":"tool","latency":"50ms","hang":false,"fail_list":true}`
	if body := doAdmin(t, http.MethodGet, f.url+mathserver.FaultsPath, "", http.StatusOK); body != wire {
		t.Errorf("GET /admin/faults body:\n got %s\nwant %s", body, wire)
	}
}

func TestAdminPutDefaults(t *testing.T) {
	f := start(t, mathserver.Options{})
	doAdmin(t, http.MethodPut, f.url+mathserver.FaultsPath, `{"fail_tools":["*"]}`, http.StatusOK)
	want := mathserver.Faults{FailTools: []string{"*"}, FailRate: 1, FailMode: mathserver.FailRPC}
	if diff := cmp.Diff(want, f.srv.Faults()); diff != "" {
		t.Errorf("faults after PUT {fail_tools:[*]} (-want +got):\n%s", diff)
	}
}

func TestAdminRejectsBadBody(t *testing.T) {
	tests := []struct {
		name, body, wantMsg string
	}{
		{"not json", `fail everything`, "invalid character"},
		{"unknown key", `{"fail_tool":["add"]}`, `unknown field "fail_tool"`},
		{"rate", `{"fail_tools":["add"],"fail_rate":2}`, "fail_rate: 2 is out of range"},
		{"mode", `{"fail_tools":["add"],"fail_mode":"grpc"}`, `fail_mode: "grpc" is not a mode`},
		{"latency", `{"latency":"50"}`, `latency: "50" is not a Go duration`},
		{"latency number", `{"latency":50}`, `latency: 50 is not a string`},
		{"tool", `{"fail_tools":["sqrt"]}`, `unknown tool "sqrt"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mathserver.New(mathserver.Options{})
			setFaults(t, srv, mathserver.Faults{FailTools: []string{"add"}, Hang: true})
			before := srv.Faults()
			hs := newHTTPTest(t, srv)
			body := doAdmin(t, http.MethodPut, hs+mathserver.FaultsPath, tt.body, http.StatusBadRequest)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tt.wantMsg) {
				t.Errorf("400 body %s does not say %q", body, tt.wantMsg)
			}
			if diff := cmp.Diff(before, srv.Faults()); diff != "" {
				t.Errorf("faults changed by a rejected PUT (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAdminClientReportsRejection(t *testing.T) {
	f := start(t, mathserver.Options{})
	err := mathserver.NewAdminClient(f.url).SetFaults(t.Context(), mathserver.Faults{FailTools: []string{"sqrt"}})
	if err == nil || !strings.Contains(err.Error(), `unknown tool "sqrt"`) {
		t.Errorf("SetFaults with an unknown tool = %v, want the server's message", err)
	}
}

// doAdmin sends one admin request and checks its status, returning the body
// without its trailing newline.
func doAdmin(t *testing.T, method, url, body string, wantStatus int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %s %s, want %d", method, url, resp.Status, data, wantStatus)
	}
	return strings.TrimSuffix(string(data), "\n")
}
