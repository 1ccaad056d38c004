package strategy

import (
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines; the concurrency tests do and must join them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
