package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// reloadDebounce coalesces the burst of events one save makes (editors
// write, rename and chmod; Kubernetes swaps a ConfigMap's symlink).
const reloadDebounce = 100 * time.Millisecond

// configReloader re-reads the agent's --config file on SIGHUP and when
// the file changes, and installs it if it parses; a file that does not
// parse is refused with the parser's file:line and the running
// configuration stays.
type configReloader struct {
	path    string
	install func(*fleetfile.Fleet) error
	log     *slog.Logger
	current []byte // the contents in force
	onHUP   func() // also run on SIGHUP (reading --settings again); may be nil
}

func newConfigReloader(path string, current []byte, install func(*fleetfile.Fleet) error, log *slog.Logger) *configReloader {
	return &configReloader{path: path, install: install, log: log, current: current}
}

// Run reloads until ctx ends. It watches the file's directory, so a file
// replaced by rename or a ConfigMap update is seen as well as an edit.
func (r *configReloader) Run(ctx context.Context, hup <-chan os.Signal) error {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if r.path != "" {
		if w, err := r.watch(); err != nil {
			r.log.Warn("config_watch_failed", "path", r.path, "error", err.Error(), "reload", "on SIGHUP only")
		} else {
			defer w.Close()
			events, errs = w.Events, w.Errors
		}
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if r.onHUP != nil {
				r.onHUP()
			}
			if r.path == "" {
				r.log.Info("config_reload_skipped", "by", "SIGHUP", "reason", "no --config: the fleet comes from the control plane")
				continue
			}
			r.log.Info("config_reload_requested", "path", r.path, "by", "SIGHUP")
			r.reload(true)
		case ev, ok := <-events:
			if ok && ev.Op != fsnotify.Chmod {
				debounce = time.After(reloadDebounce)
			}
		case err, ok := <-errs:
			if ok {
				r.log.Warn("config_watch_failed", "path", r.path, "error", err.Error())
			}
		case <-debounce:
			debounce = nil
			r.reload(false)
		}
	}
}

// watch watches the file's directory (see Run).
func (r *configReloader) watch() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch --config: %w", err)
	}
	if err := w.Add(filepath.Dir(r.path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch --config: %w", err)
	}
	return w, nil
}

// reload reads and installs the file; unchanged contents are skipped
// unless forced (SIGHUP).
func (r *configReloader) reload(force bool) {
	data, err := os.ReadFile(r.path)
	if err != nil {
		r.log.Error("config_reload_refused", "path", r.path, "error", err.Error(), "running", "previous configuration")
		return
	}
	if !force && bytes.Equal(data, r.current) {
		return
	}
	fleet, err := fleetfile.ParseAs(fleetfile.Agent, r.path, data)
	if err != nil {
		r.log.Error("config_reload_refused", "path", r.path, "error", err.Error(), "running", "previous configuration")
		return
	}
	if bytes.Equal(data, r.current) {
		r.log.Info("config_unchanged", "path", r.path)
		return
	}
	if err := r.install(fleet); err != nil {
		r.log.Error("config_reload_refused", "path", r.path, "error", err.Error(), "running", "previous configuration")
		return
	}
	r.current = data
}
