// Package outcome sorts the result of one attempt of a tool call on one
// upstream member into the classes of docs/design.md §3.3, and says whether a class
// counts against the member and whether the call may move to the next member.
package outcome

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Class is the outcome class of one attempt.
type Class string

// The outcome classes. Their string values are used as metric labels.
const (
	OK             Class = "ok"
	ConnectError   Class = "connect_error"
	Timeout        Class = "timeout"
	TransportError Class = "transport_error"
	ServerError    Class = "server_error"
	CallerError    Class = "caller_error"
	ToolError      Class = "tool_error"
)

// Classes lists every class in a stable order, for metrics and reports.
var Classes = []Class{OK, ConnectError, Timeout, TransportError, ServerError, CallerError, ToolError}

// ErrNotDelivered marks an error raised before a request could reach the
// member (no session could be opened, the child process is not running).
// Attempts failing with it are connect errors: always safe to retry.
var ErrNotDelivered = errors.New("outcome: request not delivered")

// Classify returns the class of an attempt that returned res and err.
func Classify(res *mcp.CallToolResult, err error) Class {
	if err == nil {
		if res != nil && res.IsError {
			return ToolError
		}
		return OK
	}
	if errors.Is(err, ErrNotDelivered) || isDialError(err) {
		return ConnectError
	}
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) && !isTransportRejection(rpcErr) {
		return classifyCode(rpcErr.Code)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), isNetTimeout(err):
		return Timeout
	case errors.Is(err, context.Canceled):
		// The caller went away: not the member's fault, nothing to retry.
		return CallerError
	}
	return TransportError
}

func classifyCode(code int64) Class {
	switch {
	case code == jsonrpc.CodeInvalidRequest, code == jsonrpc.CodeMethodNotFound, code == jsonrpc.CodeInvalidParams:
		return CallerError
	case code == jsonrpc.CodeInternalError, code <= -32000 && code >= -32099:
		return ServerError
	case code == jsonrpc.CodeParseError:
		return TransportError
	}
	// Application-defined codes outside the reserved range: the server
	// answered deliberately, so treat it like a failed call of the server.
	return ServerError
}

// isTransportRejection recognizes the Go SDK's marker for a request its
// HTTP transport could not complete (a 502/503/504/429 answer, a failed
// write): an error of the path to the member, not an answer of the member.
func isTransportRejection(e *jsonrpc.Error) bool {
	return e.Code == -32005 && e.Message == "rejected by transport"
}

func isDialError(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var execErr *exec.Error
	if errors.As(err, &execErr) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Failed reports whether the class is a failure of the member (anything but
// OK, CallerError and, unless countToolErrors, ToolError). Failed attempts
// count against the member's rotation and the group's breaker.
func (c Class) Failed(countToolErrors bool) bool {
	switch c {
	case OK, CallerError:
		return false
	case ToolError:
		return countToolErrors
	}
	return true
}

// Retryable reports whether a call whose attempt ended in class c may be sent
// to the next member. Connect errors were never delivered and are always
// retryable; timeouts, transport and server errors only when the tool is safe
// to repeat (read-only or idempotent, or listed in failover.retry_on).
func (c Class) Retryable(safeToRepeat bool) bool {
	switch c {
	case ConnectError:
		return true
	case Timeout, TransportError, ServerError:
		return safeToRepeat
	}
	return false
}
