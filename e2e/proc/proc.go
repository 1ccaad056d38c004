// Package proc starts and stops the real processes of Hangar's end-to-end
// tests, demo and benchmarks: it waits for a process to print its ready line,
// keeps its output for failure messages, and ends processes by PID only.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// Spec describes a process to start.
type Spec struct {
	Name  string   // for messages
	Path  string   // binary
	Args  []string // arguments
	Env   []string // extra environment (added to the current one)
	Stdin io.Reader
	// Ready matches the line (on stdout or stderr) that says the process
	// is serving; its first submatch, if any, is returned by Process.Ready.
	Ready *regexp.Regexp
	// Echo, if set, receives every output line, prefixed with Name.
	Echo io.Writer
	// Group starts the process in a process group of its own: Kill, Stop,
	// Freeze and Thaw then signal the whole group, so that the children
	// it spawned (a gateway's stdio servers, nginx's workers) end with it.
	Group bool
}

// Process is a started process.
type Process struct {
	spec  Spec
	cmd   *exec.Cmd
	ready string
	done  chan struct{}
	err   error // the process' exit error, valid after done is closed

	mu     sync.Mutex
	output bytes.Buffer
	lines  []chan string // listeners for WaitFor
}

// Start starts the process and, if spec.Ready is set, waits up to timeout
// for the ready line. On failure the process is killed and its output is
// part of the error.
func Start(spec Spec, timeout time.Duration) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdin = spec.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: spec.Group}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &Process{spec: spec, cmd: cmd, done: make(chan struct{})}
	readyc := make(chan string, 1)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		wg.Go(func() { p.scan(r, readyc) })
	}
	go func() {
		wg.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	if spec.Ready == nil {
		return p, nil
	}
	select {
	case p.ready = <-readyc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v); output:\n%s", spec.Name, p.err, p.Output())
	case <-time.After(timeout):
		p.Kill()
		return nil, fmt.Errorf("%s was not ready after %s; output:\n%s", spec.Name, timeout, p.Output())
	}
}

func (p *Process) scan(r io.Reader, readyc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.output.WriteString(line + "\n")
		listeners := append([]chan string(nil), p.lines...)
		p.mu.Unlock()
		for _, l := range listeners {
			select {
			case l <- line:
			default:
			}
		}
		if p.spec.Echo != nil {
			fmt.Fprintf(p.spec.Echo, "  [%s] %s\n", p.spec.Name, line)
		}
		if p.spec.Ready != nil {
			if m := p.spec.Ready.FindStringSubmatch(line); m != nil {
				v := m[0]
				if len(m) > 1 {
					v = m[1]
				}
				select {
				case readyc <- v:
				default:
				}
			}
		}
	}
}

// Ready returns the first submatch of the ready line (e.g. an address).
func (p *Process) Ready() string { return p.ready }

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output returns everything the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// WaitFor waits until the process prints a line matching re (counting lines
// already printed), or ctx ends.
func (p *Process) WaitFor(ctx context.Context, re *regexp.Regexp) (string, error) {
	ch := make(chan string, 256)
	p.mu.Lock()
	past := p.output.String()
	p.lines = append(p.lines, ch)
	p.mu.Unlock()
	defer p.unlisten(ch)
	for _, line := range bytes.Split([]byte(past), []byte("\n")) {
		if re.Match(line) {
			return string(line), nil
		}
	}
	for {
		select {
		case line := <-ch:
			if re.MatchString(line) {
				return line, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("%s never printed a line matching %q: %w", p.spec.Name, re, ctx.Err())
		}
	}
}

func (p *Process) unlisten(ch chan string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.lines {
		if l == ch {
			p.lines = append(p.lines[:i], p.lines[i+1:]...)
			return
		}
	}
}

// signal sends sig to the process, or to its process group (Spec.Group).
func (p *Process) signal(sig syscall.Signal) error {
	if p.spec.Group {
		return syscall.Kill(-p.cmd.Process.Pid, sig)
	}
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL (like kill -9) and waits for the process to exit.
func (p *Process) Kill() {
	_ = p.signal(syscall.SIGKILL)
	<-p.done
}

// Freeze stops the process with SIGSTOP (a hung server); Thaw resumes it.
func (p *Process) Freeze() error { return p.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process.
func (p *Process) Thaw() error { return p.signal(syscall.SIGCONT) }

// Stop sends SIGTERM and waits up to grace for the exit, then kills. It
// returns the exit error of a process that did not exit cleanly.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	_ = p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not stop within %s after SIGTERM and was killed", p.spec.Name, grace)
	}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Process) exitErr() error {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) && ee.Exited() && ee.ExitCode() == 0 {
		return nil
	}
	return p.err
}
