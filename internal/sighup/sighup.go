// Package sighup catches SIGHUP for the daemons' reloads (systemctl reload).
package sighup

import (
	"os"
	"os/signal"
	"syscall"
)

// Notify starts catching SIGHUP; call it before the process says it is
// ready, so that no signal sent after that line ends the process. stop
// undoes it. The channel holds one pending signal: a burst of SIGHUPs
// during a reload asks for one more reload, not one per signal.
func Notify() (hup chan os.Signal, stop func()) {
	hup = make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}
