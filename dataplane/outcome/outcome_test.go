package outcome

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestClassify(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	rejected := &jsonrpc.Error{Code: -32005, Message: "rejected by transport"}
	tests := []struct {
		name string
		res  *mcp.CallToolResult
		err  error
		want Class
	}{
		{"result", &mcp.CallToolResult{}, nil, OK},
		{"isError result", &mcp.CallToolResult{IsError: true}, nil, ToolError},
		{"refused", nil, fmt.Errorf("post: %w", dial), ConnectError},
		{"refused behind the SDK's rejection marker", nil, fmt.Errorf("sending: %w: %w", rejected, dial), ConnectError},
		{"not delivered", nil, fmt.Errorf("connect: %w", ErrNotDelivered), ConnectError},
		{"deadline", nil, fmt.Errorf("call: %w", context.DeadlineExceeded), Timeout},
		{"caller cancelled", nil, context.Canceled, CallerError},
		{"internal error", nil, &jsonrpc.Error{Code: -32603}, ServerError},
		{"implementation-defined server error", nil, &jsonrpc.Error{Code: -32042}, ServerError},
		{"invalid params", nil, &jsonrpc.Error{Code: -32602}, CallerError},
		{"method not found", nil, &jsonrpc.Error{Code: -32601}, CallerError},
		{"invalid request", nil, &jsonrpc.Error{Code: -32600}, CallerError},
		{"parse error", nil, &jsonrpc.Error{Code: -32700}, TransportError},
		{"503 from a proxy", nil, fmt.Errorf("%w: Service Unavailable", rejected), TransportError},
		{"broken stream", nil, errors.New("unexpected EOF"), TransportError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.res, tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		c                      Class
		failed, failedCounted  bool
		retrySafe, retryUnsafe bool
	}{
		{OK, false, false, false, false},
		{ConnectError, true, true, true, true},
		{Timeout, true, true, true, false},
		{TransportError, true, true, true, false},
		{ServerError, true, true, true, false},
		{CallerError, false, false, false, false},
		{ToolError, false, true, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.c), func(t *testing.T) {
			if got := tt.c.Failed(false); got != tt.failed {
				t.Errorf("Failed(false) = %v", got)
			}
			if got := tt.c.Failed(true); got != tt.failedCounted {
				t.Errorf("Failed(count_tool_errors) = %v", got)
			}
			if got := tt.c.Retryable(true); got != tt.retrySafe {
				t.Errorf("Retryable(safe) = %v", got)
			}
			if got := tt.c.Retryable(false); got != tt.retryUnsafe {
				t.Errorf("Retryable(unsafe) = %v", got)
			}
		})
	}
}
