package server

import (
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Where an agent's fleet comes from (Hello.config_source).
const (
	ConfigSourceLocal        = "local"
	ConfigSourceControlPlane = "control-plane"
)

// The agents' standing with the control plane (AgentStatus.sync).
const (
	SyncLocal  = "LOCAL"
	SyncNacked = "NACKED"
	SyncStale  = "STALE"
	SyncSynced = "SYNCED"
)

// IsLocal reports whether the agent runs a local fleet file that differs
// from the stored one (whose hash is configSHA): its reports describe
// another fleet and never count toward the control plane's decisions.
func IsLocal(h *hangarv1.Hello, configSHA string) bool {
	return h.GetConfigSource() == ConfigSourceLocal && h.GetConfigSha256() != configSHA
}

// Sync is the agent's standing (one of the Sync constants) given the
// stored config's hash and the current snapshot version.
func Sync(ar *hangarv1.AgentReport, configSHA string, version uint64) string {
	switch {
	case IsLocal(ar.GetHello(), configSHA):
		return SyncLocal
	case version != 0 && ar.GetNackedVersion() == version:
		return SyncNacked
	case ar.GetAckedVersion() != version:
		return SyncStale
	}
	return SyncSynced
}
