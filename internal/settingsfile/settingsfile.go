// Package settingsfile reads a daemon's --settings file (YAML, TOML or
// JSON; keys are flag names) through viper, and reads it again on SIGHUP.
//
// On a reload, a setting whose value changed is applied if it is
// reloadable (each daemon lists its own: the log level for both), and
// otherwise logged as settings_restart_required with its old and new
// value: it keeps its running value until a restart. A file that does not
// parse (the error names file:line) or gives settings that do not validate
// changes nothing and is logged as settings_reload_refused. Flags and
// HANGAR_* variables still win over the file, as at startup.
package settingsfile

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"

	"github.com/spf13/viper"
)

// Read reads the settings file at path into v, under its flags and
// environment variables; a parse error names file:line.
func Read(v *viper.Viper, path string) error {
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("read --settings %s", where(path, err))
	}
	return nil
}

// yamlLine finds the line in yaml's errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`line (\d+)`)

// where formats err as "file:line: err" when it names a line, else
// "file: err".
func where(path string, err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Sprintf("%s:%s: %v", path, m[1], err)
	}
	return fmt.Sprintf("%s: %v", path, err)
}

// Reloader reads the settings file again on request (SIGHUP).
type Reloader struct {
	v          *viper.Viper
	path       string
	reloadable map[string]func(value string) error
	validate   func() error
	log        *slog.Logger

	running map[string]string // key → the value in force
	good    []byte            // the file's last accepted content
}

// NewReloader follows the file Read read into v. reloadable maps a key to
// the function that applies a new value; validate checks the settings v
// gives (it builds them as at startup). Call it after Read.
func NewReloader(v *viper.Viper, path string, reloadable map[string]func(string) error, validate func() error, log *slog.Logger) *Reloader {
	r := &Reloader{v: v, path: path, reloadable: reloadable, validate: validate, log: log, running: values(v)}
	r.good, _ = os.ReadFile(path)
	return r
}

func values(v *viper.Viper) map[string]string {
	out := map[string]string{}
	for _, k := range v.AllKeys() {
		out[k] = fmt.Sprint(v.Get(k))
	}
	return out
}

// Reload reads the file again and applies what changed (see the package
// doc). It returns the keys applied.
func (r *Reloader) Reload() []string {
	data, err := os.ReadFile(r.path)
	if err != nil {
		r.refuse(fmt.Errorf("read --settings %s: %w", r.path, err))
		return nil
	}
	if err := r.v.ReadConfig(bytes.NewReader(data)); err != nil { // viper keeps its settings on error
		r.refuse(fmt.Errorf("read --settings %s", where(r.path, err)))
		return nil
	}
	if err := r.validate(); err != nil {
		_ = r.v.ReadConfig(bytes.NewReader(r.good))
		r.refuse(fmt.Errorf("--settings %s: %w", r.path, err))
		return nil
	}
	r.good = data
	now := values(r.v)
	keys := make([]string, 0, len(now))
	for k := range now {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var applied []string
	for _, k := range keys {
		old, val := r.running[k], now[k]
		if old == val {
			continue
		}
		apply, ok := r.reloadable[k]
		if !ok {
			r.log.Warn("settings_restart_required", "path", r.path, "key", k, "running", old, "file", val,
				"reason", "this setting is read at startup only: restart the process to apply it")
			continue
		}
		if err := apply(val); err != nil {
			r.refuse(fmt.Errorf("--settings %s: %s: %w", r.path, k, err))
			continue
		}
		r.running[k] = val
		applied = append(applied, k)
		r.log.Info("settings_applied", "path", r.path, "key", k, "old", old, "new", val)
	}
	if len(applied) == 0 {
		r.log.Info("settings_reloaded", "path", r.path, "applied", "nothing changed that can change without a restart")
	}
	return applied
}

func (r *Reloader) refuse(err error) {
	r.log.Error("settings_reload_refused", "error", err.Error(), "running", "the previous settings")
}
