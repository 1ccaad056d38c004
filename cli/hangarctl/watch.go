package hangarctl

import (
	"bytes"
	"context"

	"github.com/spf13/cobra"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// addWatchFlag adds -w/--watch to a command that can redraw on change.
func addWatchFlag(c *cobra.Command, watch *bool) {
	c.Flags().BoolVarP(watch, "watch", "w", false,
		"keep running and redraw whenever the control plane reports an event (Ctrl-C stops)")
}

// show draws once, or, with watch, draws a frame now and one more after
// every event of the control plane's event log (filtered to group when it
// is set) until ctx ends. Redraws are driven by the WatchEvents stream, not
// by polling. draw fetches and renders one frame; frames are rendered in
// full before they replace the previous one.
func (a *app) show(ctx context.Context, watch bool, group string, draw func(context.Context, printer) error) error {
	p := printer{format: a.output, w: a.stdout}
	if !watch {
		return draw(ctx, p)
	}
	c, err := a.dial()
	if err != nil {
		return err
	}
	head, err := a.headSeq(ctx, c, group)
	if err != nil {
		return quiet(ctx, err)
	}
	tty := isTerminal(a.stdout)
	frames := 0
	frame := func() error {
		var buf bytes.Buffer
		switch {
		case tty:
			buf.WriteString(clearScreen)
		case frames > 0:
			buf.WriteString(p.separator())
		}
		if err := draw(ctx, printer{format: a.output, w: &buf}); err != nil {
			return err
		}
		frames++
		_, err := a.stdout.Write(buf.Bytes())
		return err
	}
	if err := frame(); err != nil {
		return quiet(ctx, err)
	}
	req := &hangarv1.WatchEventsRequest{AfterSeq: head, Follow: true, Group: group}
	err = c.events(ctx, req, func(*hangarv1.Event) error { return frame() })
	return quiet(ctx, err)
}

// quiet turns the end of a watch by Ctrl-C into success.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// headSeq returns the seq of the newest event (of group, when set), so a
// watch follows only what happens after its first frame. It pages through
// the log, which works whether the server caps a page at its oldest or its
// newest events.
func (a *app) headSeq(ctx context.Context, c *client, group string) (uint64, error) {
	var head uint64
	for {
		prev := head
		req := &hangarv1.WatchEventsRequest{AfterSeq: head, Limit: 1000, Group: group}
		err := c.events(ctx, req, func(e *hangarv1.Event) error {
			head = max(head, e.GetSeq())
			return nil
		})
		if err != nil || head == prev {
			return head, err
		}
	}
}
