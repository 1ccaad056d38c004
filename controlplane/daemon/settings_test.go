package daemon

import (
	"strings"
	"testing"
	"time"
)

func TestSettingsValidate(t *testing.T) {
	base := func() Settings {
		return Settings{Listen: "127.0.0.1:7400", MetricsListen: "127.0.0.1:7401", DataDir: "d", ElectionTTL: 5 * time.Second}
	}
	tests := []struct {
		name    string
		mod     func(*Settings)
		wantErr string
	}{
		{"defaults are valid", func(*Settings) {}, ""},
		{"plaintext on a public address is refused", func(s *Settings) { s.Listen = "0.0.0.0:7400" }, "--insecure"},
		{"--insecure allows it", func(s *Settings) { s.Listen = "0.0.0.0:7400"; s.Insecure = true }, ""},
		{"TLS allows it", func(s *Settings) { s.Listen = "0.0.0.0:7400"; s.TLSCertFile, s.TLSKeyFile = "c", "k" }, ""},
		{"cert without key", func(s *Settings) { s.TLSCertFile = "c" }, "go together"},
		{"mTLS without a server cert", func(s *Settings) { s.TLSClientCAFile = "ca" }, "needs --tls-cert-file"},
		{"bad listen", func(s *Settings) { s.Listen = "7400" }, "--listen"},
		{"short TTL", func(s *Settings) { s.ElectionTTL = 100 * time.Millisecond }, "--election-ttl"},
		{"no etcd at all", func(s *Settings) { s.DataDir = "" }, "--etcd-endpoints"},
		{"read-only token alone", func(s *Settings) { s.ReadOnlyTokenFile = "ro" }, "--auth-token-file"},
		{"read-only token with an admin token", func(s *Settings) { s.ReadOnlyTokenFile, s.AuthTokenFile = "ro", "rw" }, ""},
		{"external etcd needs no data dir", func(s *Settings) { s.DataDir = ""; s.EtcdEndpoints = []string{"http://e:2379"} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.mod(&s)
			err := s.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
	s := base()
	if err := s.Validate(); err != nil || s.Name == "" || s.EtcdPrefix != "/hangar/" {
		t.Fatalf("derived defaults: %+v, %v", s, err)
	}
}
