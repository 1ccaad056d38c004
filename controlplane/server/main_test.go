package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops the etcd node, replicas, gRPC servers and agent streams
// it starts, and waits for their goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
