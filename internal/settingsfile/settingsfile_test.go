package settingsfile

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// TestReload: a changed reloadable setting applies; a changed setting read
// at startup only is logged as needing a restart; a file that does not
// parse (file:line) or does not validate changes nothing; a flag set on
// the command line still wins over the file.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log-level: info\nlisten: 127.0.0.1:7400\n")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("log-level", "info", "")
	fs.String("listen", "", "")
	fs.String("name", "", "")
	if err := fs.Parse([]string{"--name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	v := viper.New()
	if err := v.BindPFlags(fs); err != nil {
		t.Fatal(err)
	}
	if err := Read(v, path); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	level := "info"
	r := NewReloader(v, path, map[string]func(string) error{"log-level": func(s string) error { level = s; return nil }},
		func() error {
			if l := v.GetString("log-level"); l != "info" && l != "debug" {
				return errors.New("--log-level " + l + ": use debug or info")
			}
			return nil
		}, slog.New(slog.NewTextHandler(&logs, nil)))

	write("log-level: debug\nlisten: 127.0.0.1:9999\nname: from-file\n")
	if got := r.Reload(); !slices.Equal(got, []string{"log-level"}) || level != "debug" {
		t.Errorf("Reload applied %v (level %s), want log-level (debug)", got, level)
	}
	if !strings.Contains(logs.String(), `msg=settings_restart_required path=`+path+` key=listen running=127.0.0.1:7400 file=127.0.0.1:9999`) {
		t.Errorf("logs:\n%s\nwant listen reported as needing a restart", logs.String())
	}
	if strings.Contains(logs.String(), "key=name") {
		t.Errorf("--name was set by a flag, which wins over the file; logs:\n%s", logs.String())
	}

	logs.Reset()
	write("log-level: info\nlisten: [\n")
	if got := r.Reload(); len(got) != 0 || level != "debug" || v.GetString("log-level") != "debug" {
		t.Errorf("a broken file applied %v, level %s", got, level)
	}
	if !strings.Contains(logs.String(), "msg=settings_reload_refused") || !strings.Contains(logs.String(), path+":2: ") {
		t.Errorf("logs:\n%s\nwant settings_reload_refused naming %s:2", logs.String(), path)
	}

	logs.Reset()
	write("log-level: loud\n")
	if got := r.Reload(); len(got) != 0 || level != "debug" || v.GetString("log-level") != "debug" {
		t.Errorf("an invalid setting applied %v, level %s, viper %s", got, level, v.GetString("log-level"))
	}
	if !strings.Contains(logs.String(), "--log-level loud: use debug or info") {
		t.Errorf("logs:\n%s\nwant the validation error", logs.String())
	}

	write("log-level: info\nlisten: 127.0.0.1:7400\n")
	if got := r.Reload(); !slices.Equal(got, []string{"log-level"}) || level != "info" {
		t.Errorf("after the bad files, a good one applied %v (level %s)", got, level)
	}
}

func TestReadNamesLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte("a: 1\nb: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Read(viper.New(), path); err == nil || !strings.Contains(err.Error(), path+":2: ") {
		t.Errorf("Read of a broken file: %v, want %s:2", err, path)
	}
}
