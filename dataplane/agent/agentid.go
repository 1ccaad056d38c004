package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hangarmesh/hangar/dataplane/controlclient"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// agentIDFile, in the state dir, keeps the agent id chosen when
// --agent-id is not set, so that the agent keeps it across restarts.
const agentIDFile = "agent-id"

// validAgentID is what a generated or stored id may look like.
var validAgentID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// defaultAgentID is the agent id when --agent-id is not set: the host
// name plus a random suffix, so that two agents on one host never share
// an id, kept in stateDir so that it survives restarts. Without a state
// dir the id is new at every start (persisted is then false).
func defaultAgentID(stateDir, host string) (id string, persisted bool, err error) {
	if stateDir == "" {
		return newAgentID(host), false, nil
	}
	path := filepath.Join(stateDir, agentIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(data))
		if !validAgentID.MatchString(id) {
			return "", false, fmt.Errorf("agent id file %s holds %q, not an agent id: delete it to get a new id, or pass --agent-id", path, id)
		}
		return id, true, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", false, fmt.Errorf("read the agent id: %w", err)
	}
	id = newAgentID(host)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", false, fmt.Errorf("keep the agent id in --state-dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("keep the agent id in --state-dir: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", false, fmt.Errorf("keep the agent id in --state-dir: %w", err)
	}
	return id, true, nil
}

// newAgentID is host-XXXXXXXX with a random suffix.
func newAgentID(host string) string {
	host = strings.Trim(regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(host, "-"), "-.")
	if host == "" {
		host = "hangar-agent"
	}
	if len(host) > 100 {
		host = host[:100]
	}
	return host + "-" + strings.ToLower(rand.Text()[:8])
}

// setIdentity fills in what Hello says about the agent: its id (the
// default one if --agent-id is not set) and where its fleet comes from.
func setIdentity(o *controlclient.Options, s Settings, log *slog.Logger) error {
	if o.AgentID == "" {
		id, persisted, err := defaultAgentID(s.StateDir, hostname())
		if err != nil {
			return err
		}
		o.AgentID = id
		log.Info("agent_id_default", "agent_id", id, "kept_in_state_dir", persisted)
	}
	if s.ConfigPath != "" {
		data, err := os.ReadFile(s.ConfigPath)
		if err != nil {
			return fmt.Errorf("read --config: %w", err)
		}
		o.ConfigSource, o.ConfigSHA256 = "local", fleetfile.Hash(data)
	}
	return nil
}
