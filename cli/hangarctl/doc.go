// Package hangarctl is the operators' command-line client of Hangar's
// control plane: it reads and steers the fleet through the AdminService in
// proto/hangar/v1 (docs/design.md §4.4), and imports neither plane.
//
// Commands:
//
//	group list                      every group: strategy, state, breaker, active member
//	group status GROUP              one group: breaker, members, probes, rates, latency, events
//	server list                     every upstream server across the fleet
//	server status SERVER            one server: probes, rates, latency, calls by outcome
//	agent list                      connected agents and the snapshot each has ACKed
//	config get                      the stored fleet file (raw YAML by default)
//	config apply -f FILE [--dry-run]   validate and store a fleet file (-f - reads stdin)
//	events [--follow] [--group G] [--server S] [--limit N]
//	member drain|undrain GROUP MEMBER
//	breaker reset GROUP
//	cluster status                  replicas, leader, etcd health
//	completion bash|zsh|fish|powershell
//	version
//
// group list, group status, server list and cluster status take --watch:
// they redraw whenever the control plane's event stream reports a change
// (no polling), clearing the screen on a terminal and printing a "---"
// line between frames otherwise (nothing between JSON frames, which stay
// a stream jq reads).
//
// Output (-o): table (default), json (protojson with the proto field names,
// every field present, indented) or yaml (the same document as YAML).
// events prints one document per event.
//
// Exit codes: 0 success; 1 a user error (bad flags or arguments, unknown
// group or server, invalid config, permission denied; the control plane's
// message is printed as is); 2 no control-plane endpoint answered.
package hangarctl
