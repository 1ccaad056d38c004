package daemon

import (
	"context"
	"log/slog"
	"os"

	"github.com/hangarmesh/hangar/controlplane/store"
)

// reloadOnHUP, on SIGHUP (systemctl reload), reads --settings (onHUP) and
// the TLS and token files again, and re-applies --fleet-config: a file
// that differs from the stored one is stored and pushed; a bad file is
// refused with the parser's file:line and the stored config stays.
// Without --fleet-config that part is logged and skipped.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, s Settings, st *store.Store, sec secrets, onHUP func(), log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		}
		onHUP() // --settings
		sec.reload(log)
		if s.FleetConfig == "" {
			log.Info("config_reload_skipped", "by", "SIGHUP", "reason", "no --fleet-config (use hangarctl config apply)")
			continue
		}
		if err := applyFleetConfig(ctx, st, s, false, log); err != nil {
			log.Error("config_reload_refused", "path", s.FleetConfig, "error", err.Error(), "running", "stored configuration")
		}
	}
}
