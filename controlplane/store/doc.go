// Package store is the control plane's view of etcd: the key layout and every
// read, write and watch the replicas make (docs/design.md §4.3). It holds decisions,
// configuration, leases and a bounded event log; raw agent reports stay in
// control-plane memory.
//
// # Key layout
//
// All keys live under a prefix, DefaultPrefix ("/hangar/") unless New is
// given another:
//
//	config                  the fleet file (YAML bytes); its mod revision is the config version
//	snapshot                the routing snapshot (opaque bytes, a serialized protobuf); its mod
//	                        revision IS the snapshot version; written only by the leader
//	replicas/<name>         leased to the replica's session: the replica's advertise address
//	reports/<replica>       leased: opaque bytes, the replica's summary of its agents' reports
//	                        (which agents it holds, too), written on change
//	events/<seq>            the event log: JSON Event, seq zero-padded to 20 digits so keys sort
//	                        by seq; only the newest EventLimit (default 1,000) are kept
//	eventseq                the last event seq assigned (decimal), the counter AppendEvent
//	                        increments in the same transaction that writes the event
//	drain/<group>/<member>  an operator drain of one member (value: RFC 3339 time of the drain)
//	election/<lease>        the leader election (etcd concurrency.Election): the oldest key
//	                        holds the leader's replica name
//
// Names used in keys (replicas, agents, groups, members) must be non-empty
// and must not contain '/'.
//
// # Leases and leadership
//
// Each replica opens one Session (NewSession); its lease holds the replica's
// replicas/ and reports/ keys and its election key, so when the
// replica dies they all disappear within the session TTL. Campaign blocks
// until the replica leads; the Leadership it returns is lost when the session
// ends, the election key is deleted, or Resign is called. PutSnapshot writes
// in a transaction that checks the leader's election key and its create
// revision, so a deposed leader never overwrites the snapshot: it gets
// ErrNotLeader.
//
// # Watches
//
// The Watch methods return a channel that first carries the current state,
// then every change in order, and is closed when ctx ends or the client is
// closed. A failed watch (compaction, lost connection, restarted etcd) is
// re-established with a fresh read, after a capped, jittered backoff, so a
// receiver never misses the latest state, though it may miss intermediate
// ones. The receiver must keep reading: the watch waits for it.
//
// A Store is safe for concurrent use once its optional fields are set.
package store
