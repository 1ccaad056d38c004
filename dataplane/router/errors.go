package router

import (
	"errors"
	"fmt"
)

// ErrorType names a kind of failed call, as reported in hangar_call's
// error_type field. The names follow MCP Hangar's.
type ErrorType string

// The error types a call can end with.
const (
	ErrCircuitOpen       ErrorType = "CircuitOpen"
	ErrNoAvailableMember ErrorType = "NoAvailableMemberError"
	ErrUnknownServer     ErrorType = "UnknownServerError"
	ErrConnect           ErrorType = "ConnectionError"
	ErrTimeout           ErrorType = "TimeoutError"
	ErrTransport         ErrorType = "TransportError"
	ErrServer            ErrorType = "ServerError"
	ErrCaller            ErrorType = "InvalidRequestError"
	ErrToolError         ErrorType = "ToolError"
	ErrCanceled          ErrorType = "Canceled"
)

// CallError is a call that failed. Err, when set, is the last attempt's error.
type CallError struct {
	Type   ErrorType
	Target string // the server or group named by the caller
	Msg    string
	// Member is the last member tried and Attempts how many were; "" and 0
	// when the call reached no member.
	Member   string
	Attempts int
	Err      error
}

func (e *CallError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Target, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Target, e.Msg)
}

func (e *CallError) Unwrap() error { return e.Err }

// TypeOf returns the error type of err, or "" when err is nil.
func TypeOf(err error) ErrorType {
	if err == nil {
		return ""
	}
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Type
	}
	return ErrTransport
}
