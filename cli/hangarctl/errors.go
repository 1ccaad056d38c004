package hangarctl

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unreachableError says that no control-plane endpoint answered, and why
// each did not.
type unreachableError struct {
	tried []attempt
}

// attempt is one endpoint that did not answer.
type attempt struct {
	endpoint string
	cause    string
}

func (e *unreachableError) Error() string {
	var b strings.Builder
	b.WriteString("cannot reach the control plane at ")
	same := true
	for _, t := range e.tried[1:] {
		same = same && t.cause == e.tried[0].cause
	}
	for i, t := range e.tried {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.endpoint)
		if !same {
			fmt.Fprintf(&b, " (%s)", t.cause)
		}
	}
	if same && len(e.tried) > 0 {
		b.WriteString(": " + e.tried[0].cause)
	}
	tlsTrouble := false
	for _, t := range e.tried {
		tlsTrouble = tlsTrouble || strings.Contains(t.cause, "tls:") || strings.Contains(t.cause, "x509:")
	}
	if tlsTrouble {
		b.WriteString(" (check --ca-file, --cert-file and --key-file against the control plane's TLS settings)")
	} else {
		b.WriteString(" (is hangar-controlplane running? set --control-plane or " + EnvControlPlane + ")")
	}
	return b.String()
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var u *unreachableError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u):
		return ExitUnreachable
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return ExitUnreachable
		}
	}
	return ExitUserError
}

// message is the text printed after "hangarctl: " for err: the control
// plane's own message for a refused request (it names the file and line of
// an invalid config), with a hint where one helps.
func message(err error) string {
	var u *unreachableError
	if errors.As(err, &u) {
		return u.Error()
	}
	if errors.Is(err, context.Canceled) {
		return errInterrupted.Error()
	}
	s, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := s.Message()
	switch s.Code() {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists,
		codes.OutOfRange, codes.Aborted:
		return msg
	case codes.PermissionDenied:
		if !strings.HasPrefix(strings.ToLower(msg), "permission denied") {
			msg = "permission denied: " + msg
		}
		return msg + " (this request needs other rights: check --token-file or --cert-file)"
	case codes.Unauthenticated:
		return "not authenticated: " + msg + " (pass --token-file or --cert-file)"
	case codes.Unimplemented:
		return "the control plane does not support this request (" + msg + "); is it older than hangarctl?"
	case codes.Canceled:
		return errInterrupted.Error()
	}
	return fmt.Sprintf("control plane error (%s): %s", s.Code(), msg)
}

var (
	dialPrefix    = regexp.MustCompile(`^(dial|read|write) tcp( \S+)?: `)
	connectPrefix = regexp.MustCompile(`^(connect|read|write): `)
)

// cause shortens the transport error gRPC reports for an unreachable
// endpoint to its root, e.g. "connection refused" or "i/o timeout", since
// the endpoint itself is printed next to it.
func cause(err error) string {
	s, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := s.Message()
	if s.Code() == codes.DeadlineExceeded {
		return "no answer in time (raise --timeout?)"
	}
	msg = strings.TrimPrefix(msg, "connection error: desc = ")
	msg = strings.Trim(msg, `"`)
	msg = strings.TrimPrefix(msg, "transport: ")
	msg = strings.TrimPrefix(msg, "Error while dialing: ")
	msg = strings.TrimPrefix(msg, "error while dialing: ")
	msg = dialPrefix.ReplaceAllString(msg, "")
	msg = connectPrefix.ReplaceAllString(msg, "")
	if msg == "" {
		return s.Code().String()
	}
	return msg
}
