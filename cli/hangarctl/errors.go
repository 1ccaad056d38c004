package hangarctl

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unreachableError says that no control-plane endpoint answered, and why
// each did not.
type unreachableError struct {
	tried []attempt
	// tls and clientCert say how hangarctl dialled: with TLS, and with a
	// client certificate.
	tls, clientCert bool
}

// attempt is one endpoint that did not answer.
type attempt struct {
	endpoint string
	cause    string
}

func (e *unreachableError) Error() string {
	if msg, ok := e.tlsRefused(); ok {
		return msg
	}
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

// tlsRefused is the message for a control plane that refused this
// client's certificate (mTLS) at every endpoint.
// Without a client certificate, a TLS 1.3 server that requires one
// sends its alert after the handshake: the client may then see the alert,
// or only the connection closing under it.
func (e *unreachableError) tlsRefused() (string, bool) {
	if !e.tls || len(e.tried) == 0 {
		return "", false
	}
	for _, t := range e.tried {
		closed := !e.clientCert && (strings.Contains(t.cause, "broken pipe") || strings.Contains(t.cause, "connection reset by peer") || t.cause == "EOF")
		if !strings.Contains(t.cause, "remote error: tls:") && !closed {
			return "", false
		}
	}
	alert := e.tried[0].cause
	if i := strings.Index(alert, "remote error: tls:"); i >= 0 {
		alert = alert[i:]
	}
	eps := make([]string, len(e.tried))
	for i, t := range e.tried {
		eps[i] = t.endpoint
	}
	what := "this client's certificate"
	if !e.clientCert {
		what = "a connection without a client certificate"
	}
	return fmt.Sprintf("the control plane at %s refused %s (%s): it requires mutual TLS; pass --cert-file and --key-file "+
		"with a certificate signed by the CA the replicas trust (their --tls-client-ca-file)", strings.Join(eps, ", "), what, alert), true
}

// etcdDownError says that the replicas answered but could not reach etcd.
type etcdDownError struct {
	tried []attempt
}

func (e *etcdDownError) Error() string {
	var b strings.Builder
	b.WriteString("the control plane cannot reach etcd, so it can neither read nor change the fleet's state " +
		"(etcd is down or has lost quorum; agents keep their last snapshot):")
	for _, t := range e.tried {
		fmt.Fprintf(&b, "\n  %s: %s", t.endpoint, t.cause)
	}
	return b.String()
}

// isEtcdDown reports whether err is a replica's answer that etcd is
// unavailable (ErrorInfo reason ETCD_UNAVAILABLE).
func isEtcdDown(err error) bool {
	s, ok := status.FromError(err)
	if !ok {
		return false
	}
	for _, d := range s.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reasonEtcdUnavailable {
			return true
		}
	}
	return false
}

// reasonEtcdUnavailable is the control plane's ErrorInfo reason for a
// call refused because etcd does not answer.
const reasonEtcdUnavailable = "ETCD_UNAVAILABLE"

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var u *unreachableError
	var e *etcdDownError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u), errors.As(err, &e):
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
	var e *etcdDownError
	if errors.As(err, &u) {
		return u.Error()
	}
	if errors.As(err, &e) {
		return e.Error()
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
