package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// totalSteps is the number of steps the demo announces.
const totalSteps = 7

// console serializes the demo's output: step headings from the main flow,
// traffic lines from the reporter and agent log lines from the log filter.
// Its methods are safe for concurrent use.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

// step prints a step heading and its plain-language explanation.
func (c *console) step(n int, title string, explain ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "\n==> %d/%d %s\n", n, totalSteps, title)
	for _, l := range explain {
		fmt.Fprintf(c.w, "    %s\n", l)
	}
}

// say prints one indented line.
func (c *console) say(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "    "+format+"\n", a...)
}

// block prints text indented, one line at a time.
func (c *console) block(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines(text)
}

// command prints an optional line saying why, a command line and its
// output indented under it, with no other line in between.
func (c *console) command(intro, cmdline, output string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if intro != "" {
		fmt.Fprintf(c.w, "    %s\n", intro)
	}
	fmt.Fprintf(c.w, "    %s\n", cmdline)
	if strings.TrimSpace(output) != "" {
		c.lines(output)
	}
}

// lines prints text indented under the current line; c.mu is held.
func (c *console) lines(text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if l == "" {
			fmt.Fprintln(c.w)
			continue
		}
		fmt.Fprintf(c.w, "      %s\n", l)
	}
}

// blank prints an empty line.
func (c *console) blank() {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(c.w)
}
