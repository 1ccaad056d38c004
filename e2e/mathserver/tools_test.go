package mathserver_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

func TestTools(t *testing.T) {
	for _, mode := range []struct {
		name      string
		stateless bool
	}{{"stateful", false}, {"stateless", true}} {
		t.Run(mode.name, func(t *testing.T) {
			f := start(t, mathserver.Options{Name: "alpha", Stateless: mode.stateless})
			tests := []struct {
				tool     string
				args     map[string]any
				wantText string
				isError  bool
			}{
				{"add", map[string]any{"a": 2, "b": 40}, "42", false},
				{"subtract", map[string]any{"a": 2, "b": 40}, "-38", false},
				{"multiply", map[string]any{"a": 1.5, "b": 4}, "6", false},
				{"divide", map[string]any{"a": 1, "b": 4}, "0.25", false},
				{"divide", map[string]any{"a": 1, "b": 0}, "division by zero", true},
				{"power", map[string]any{"a": 2, "b": 10}, "1024", false},
				{"power", map[string]any{"a": 10, "b": 400}, "the result of power(10, 400) is not a finite number", true},
				{"whoami", nil, "alpha", false},
				{"append", map[string]any{"text": "x"}, "1", false},
				{"append", map[string]any{"text": "y"}, "2", false},
			}
			for _, tt := range tests {
				res, err := call(t.Context(), f.session, tt.tool, tt.args)
				if err != nil {
					t.Fatalf("%s(%v): %v", tt.tool, tt.args, err)
				}
				if got := text(t, res); got != tt.wantText || res.IsError != tt.isError {
					t.Errorf("%s(%v) = %q, isError %v; want %q, isError %v",
						tt.tool, tt.args, got, res.IsError, tt.wantText, tt.isError)
				}
			}
		})
	}
}

func TestStructuredResult(t *testing.T) {
	f := start(t, mathserver.Options{})
	res, err := call(t.Context(), f.session, "multiply", map[string]any{"a": 6, "b": 7})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"result":42}`; got != want {
		t.Errorf("structured content = %s, want %s", got, want)
	}
}

func TestBadArguments(t *testing.T) {
	f := start(t, mathserver.Options{})
	res, err := call(t.Context(), f.session, "add", map[string]any{"a": "two", "b": 1})
	if err != nil {
		t.Fatalf("add with a string: %v", err)
	}
	if !res.IsError {
		t.Errorf("add with a string: isError = false, want true (text %q)", text(t, res))
	}
}

func TestToolAnnotations(t *testing.T) {
	f := start(t, mathserver.Options{})
	res, err := f.session.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	type hints struct{ ReadOnly, Idempotent bool }
	got := map[string]hints{}
	for _, tool := range res.Tools {
		if tool.Annotations == nil {
			t.Fatalf("tool %q has no annotations", tool.Name)
		}
		got[tool.Name] = hints{tool.Annotations.ReadOnlyHint, tool.Annotations.IdempotentHint}
	}
	safe := hints{ReadOnly: true, Idempotent: true}
	want := map[string]hints{
		"add": safe, "subtract": safe, "multiply": safe, "divide": safe, "power": safe, "whoami": safe,
		"append": {ReadOnly: false, Idempotent: false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tool hints (-want +got):\n%s", diff)
	}
}

func TestWhoamiNamesServer(t *testing.T) {
	for _, name := range []string{"", "my-mcp-backup"} {
		want := name
		if want == "" {
			want = mathserver.DefaultName
		}
		t.Run(want, func(t *testing.T) {
			f := start(t, mathserver.Options{Name: name})
			res, err := call(t.Context(), f.session, "whoami", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := text(t, res); got != want {
				t.Errorf("whoami = %q, want %q", got, want)
			}
			if got := f.session.InitializeResult().ServerInfo.Name; got != want {
				t.Errorf("serverInfo.name = %q, want %q", got, want)
			}
		})
	}
}

// Ensure the handler keeps the SDK's DNS-rebinding protection.
func TestRejectsForeignHost(t *testing.T) {
	f := start(t, mathserver.Options{})
	client := mcp.NewClient(&mcp.Implementation{Name: "evil", Version: "v0"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: f.url + mathserver.MCPPath, HTTPClient: hostClient("evil.example:80")}
	if cs, err := client.Connect(t.Context(), tr, nil); err == nil {
		cs.Close()
		t.Fatal("connect with Host evil.example succeeded, want it rejected")
	}
}
