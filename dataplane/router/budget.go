package router

import "sync"

// budget limits retries on the next member to a share of the calls a group
// serves, so that a fleet-wide failure does not multiply the load on the
// members that are left (the idea of Envoy's retry budgets and gRPC's retry
// throttling). Every call earns a fifth of a retry, up to a reserve of 100
// retries; a retry spends one. It starts full, so a burst of failovers when
// a member dies is always covered. Amounts are in thousandths of a retry.
type budget struct {
	mu     sync.Mutex
	tokens int
}

const (
	retryCost    = 1000
	earnPerCall  = retryCost / 5
	budgetTokens = 100 * retryCost
)

func newBudget() *budget { return &budget{tokens: budgetTokens} }

// call records one call.
func (b *budget) call() {
	b.mu.Lock()
	b.tokens = min(budgetTokens, b.tokens+earnPerCall)
	b.mu.Unlock()
}

// retry reports whether one more retry may be spent, and spends it.
func (b *budget) retry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < retryCost {
		return false
	}
	b.tokens -= retryCost
	return true
}
