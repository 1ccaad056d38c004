package grpccred

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDialOptions(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret-token-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"plaintext to loopback", Options{Endpoints: []string{"127.0.0.1:7400", "localhost:7401", "[::1]:7402"}}, ""},
		{"plaintext elsewhere is refused", Options{Endpoints: []string{"10.0.0.1:7400"}, Flag: "cp-"}, "--cp-ca-file"},
		{"unless insecure", Options{Endpoints: []string{"10.0.0.1:7400"}, Insecure: true}, ""},
		{"not host:port", Options{Endpoints: []string{"7400"}}, "HOST:PORT"},
		{"token", Options{Endpoints: []string{"127.0.0.1:7400"}, TokenFile: token}, ""},
		{"empty token", Options{Endpoints: []string{"127.0.0.1:7400"}, TokenFile: empty}, "is empty"},
		{"missing CA", Options{Endpoints: []string{"10.0.0.1:7400"}, CAFile: filepath.Join(dir, "nope.pem")}, "--ca-file"},
		{"a CA that is no PEM", Options{Endpoints: []string{"10.0.0.1:7400"}, CAFile: token}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := DialOptions(tt.o)
			switch {
			case tt.wantErr == "" && (err != nil || len(opts) == 0):
				t.Fatalf("got %v, %v; want dial options", opts, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v; want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}
