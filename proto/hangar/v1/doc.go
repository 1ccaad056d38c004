// Package hangarv1 is the wire contract between the planes, generated from
// the .proto files beside it (make generate; the generated code is
// committed): agent.proto is AgentService, the stream from hangar-agent to
// a control-plane replica (Hello, reports, snapshots, ACK/NACK, probe
// assignments and confirmations); admin.proto is AdminService, what
// hangarctl calls; state.proto is the snapshot record stored in etcd and in
// an agent's state dir. The fleet file, the other contract, is parsed by
// internal/fleetfile.
package hangarv1
