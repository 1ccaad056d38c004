package controlclient

import (
	"testing"

	"go.uber.org/goleak"
)

// The Client starts gRPC connections and goroutines; every test must join them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
