// Package servertest is a test harness for the control plane: an embedded
// etcd holding the failover fleet, replicas on loopback gRPC, and simulated
// agents speaking AgentService.Connect as raw streams.
//
// It is for tests only; production code must not import it.
package servertest
