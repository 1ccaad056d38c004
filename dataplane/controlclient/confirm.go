package controlclient

import (
	"context"
	"sync"
	"time"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Confirmer is implemented by an Agent that can answer the control plane's
// confirmation probes (docs/design.md §4.2): probe a member now, from this
// agent's vantage point, within deadline. An Agent without it ignores
// ConfirmProbe; the control plane gives the request up.
type Confirmer interface {
	Confirm(ctx context.Context, member string, deadline time.Duration) error
}

// confirms runs the confirmation probes of one stream: each in its own
// goroutine, its answer queued for the stream's sender.
type confirms struct {
	wg      sync.WaitGroup
	results chan *hangarv1.ConfirmResult
}

func newConfirms() *confirms { return &confirms{results: make(chan *hangarv1.ConfirmResult, 16)} }

// start probes as p asks, if the agent can.
func (cf *confirms) start(ctx context.Context, agent Agent, p *hangarv1.ConfirmProbe) {
	c, ok := agent.(Confirmer)
	if !ok {
		return
	}
	deadline := time.Duration(p.GetDeadlineMs()) * time.Millisecond
	if deadline <= 0 {
		deadline = time.Second
	}
	cf.wg.Go(func() {
		err := c.Confirm(ctx, p.GetMember(), deadline)
		res := &hangarv1.ConfirmResult{Id: p.GetId(), Member: p.GetMember(), Ok: err == nil}
		if err != nil {
			res.Error = err.Error()
		}
		select {
		case cf.results <- res:
		default: // the stream is gone or swamped: the control plane gives the request up
		}
	})
}

// wait waits for the probes started.
func (cf *confirms) wait() { cf.wg.Wait() }
