// Package layering holds the test that keeps the planes apart (docs/design.md §1):
// the data plane never imports the control plane or etcd, the control plane
// never imports the data plane, and the CLI imports neither plane. The planes
// meet only at the contracts: the wire protocol in proto/ and the fleet file
// in internal/fleetfile.
package layering
