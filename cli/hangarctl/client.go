package hangarctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hangarmesh/hangar/internal/grpccred"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// dialConfig is how to reach the control plane, from the global flags.
type dialConfig struct {
	Endpoints []string // HOST:PORT, tried in order
	Source    string   // the flag or variable that named them, for messages
	CAFile    string
	CertFile  string
	KeyFile   string
	TokenFile string
	Insecure  bool          // allow plaintext to non-loopback endpoints
	Timeout   time.Duration // per endpoint and request
}

// dialOptions checks the config and builds the gRPC credentials: TLS when a
// CA or client certificate is given, else plaintext, which is refused for
// a non-loopback endpoint unless Insecure.
func (d dialConfig) dialOptions() ([]grpc.DialOption, error) {
	opts := []grpc.DialOption{
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
		grpc.WithUserAgent("hangarctl/" + readVersion().Version),
	}
	for _, ep := range d.Endpoints {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return nil, fmt.Errorf("%s %q: want HOST:PORT, e.g. %s", d.Source, ep, DefaultControlPlane)
		}
	}
	if (d.CertFile == "") != (d.KeyFile == "") {
		return nil, errors.New("--cert-file and --key-file go together")
	}
	creds, err := grpccred.DialOptions(grpccred.Options{
		Endpoints: d.Endpoints, CAFile: d.CAFile, CertFile: d.CertFile, KeyFile: d.KeyFile,
		TokenFile: d.TokenFile, Insecure: d.Insecure,
	})
	if err != nil {
		return nil, err
	}
	return append(opts, creds...), nil
}

// client reaches the AdminService on the first endpoint that answers. It
// is used by one goroutine at a time.
type client struct {
	endpoints []string
	timeout   time.Duration
	opts      []grpc.DialOption
	conns     []*grpc.ClientConn // by endpoint, created on first use
	cur       int                // the endpoint tried first: the last one that answered
	tls       bool               // dialled with TLS
	cert      bool               // with a client certificate
}

func newClient(d dialConfig) (*client, error) {
	opts, err := d.dialOptions()
	if err != nil {
		return nil, err
	}
	return &client{endpoints: d.Endpoints, timeout: d.Timeout, opts: opts, conns: make([]*grpc.ClientConn, len(d.Endpoints)),
		tls: d.CAFile != "" || d.CertFile != "", cert: d.CertFile != ""}, nil
}

// Close closes the connections made.
func (c *client) Close() {
	for _, cc := range c.conns {
		if cc != nil {
			cc.Close()
		}
	}
}

func (c *client) conn(i int) (*grpc.ClientConn, error) {
	if c.conns[i] == nil {
		// passthrough: the dialer resolves the name, so a bad host reads
		// "lookup x: no such host" rather than a resolver's summary.
		cc, err := grpc.NewClient("passthrough:///"+c.endpoints[i], c.opts...)
		if err != nil {
			return nil, fmt.Errorf("control plane %s: %w", c.endpoints[i], err)
		}
		c.conns[i] = cc
	}
	return c.conns[i], nil
}

// unanswered reports whether err means the endpoint did not answer, so
// the next one should be tried.
func unanswered(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// call runs fn on the endpoints in turn, starting with the last one that
// answered, each with the client's timeout, until one answers: a result or
// an error other than Unavailable or DeadlineExceeded. When none answers it
// returns an *unreachableError naming them all.
func call[T any](ctx context.Context, c *client, fn func(context.Context, hangarv1.AdminServiceClient) (T, error)) (T, error) {
	var zero T
	var tried []attempt
	etcdDown := true // every endpoint answered that etcd is unavailable
	for k := range c.endpoints {
		i := (c.cur + k) % len(c.endpoints)
		cc, err := c.conn(i)
		if err != nil {
			return zero, err
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		resp, err := fn(cctx, hangarv1.NewAdminServiceClient(cc))
		cancel()
		if ctx.Err() != nil {
			return zero, ctx.Err()
		}
		if !unanswered(err) {
			if err == nil {
				c.cur = i
			}
			return resp, err
		}
		if isEtcdDown(err) {
			tried = append(tried, attempt{c.endpoints[i], status.Convert(err).Message()})
			continue
		}
		etcdDown = false
		tried = append(tried, attempt{c.endpoints[i], cause(err)})
	}
	if etcdDown {
		return zero, &etcdDownError{tried: tried}
	}
	return zero, &unreachableError{tried: tried, tls: c.tls, clientCert: c.cert}
}

// events streams the event log matching req to fn, in seq order. A stream
// that breaks (Unavailable, or a follow stream ended by the replica) is
// reopened on the next endpoint after the last seq received, so a replica
// going away loses no event; when no endpoint answers it returns an
// *unreachableError. Without req.Follow each attempt is bounded by the
// client's timeout. It returns nil at the end of a non-follow stream, and
// ctx.Err() when ctx ends.
func (c *client) events(ctx context.Context, req *hangarv1.WatchEventsRequest, fn func(*hangarv1.Event) error) error {
	req = proto.Clone(req).(*hangarv1.WatchEventsRequest)
	idle := 0 // consecutive streams that broke before sending anything
	for {
		sctx, cancel := context.WithCancel(ctx)
		if !req.GetFollow() {
			sctx, cancel = context.WithTimeout(ctx, c.timeout)
		}
		stream, err := c.openEvents(sctx, req)
		if err != nil {
			cancel()
			return err
		}
		got, err, fnErr := recvEvents(stream, req, fn)
		cancel()
		switch {
		case fnErr != nil:
			return fnErr
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil && !req.GetFollow():
			return nil
		case err != nil && !unanswered(err) && status.Code(err) != codes.ResourceExhausted:
			return err
		}
		if got {
			idle = 0
		} else if idle++; idle >= len(c.endpoints) {
			if err == nil {
				err = status.Error(codes.Unavailable, "the event stream ended")
			}
			return &unreachableError{tried: []attempt{{c.endpoints[c.cur], cause(err)}}, tls: c.tls, clientCert: c.cert}
		}
		c.cur = (c.cur + 1) % len(c.endpoints)
	}
}

// openEvents opens WatchEvents on the first endpoint, from c.cur on, that
// connects.
func (c *client) openEvents(ctx context.Context, req *hangarv1.WatchEventsRequest) (grpc.ServerStreamingClient[hangarv1.Event], error) {
	var tried []attempt
	for k := range c.endpoints {
		i := (c.cur + k) % len(c.endpoints)
		cc, err := c.conn(i)
		if err != nil {
			return nil, err
		}
		if err := c.waitConnected(ctx, cc); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			tried = append(tried, attempt{c.endpoints[i], cause(err)})
			continue
		}
		stream, err := hangarv1.NewAdminServiceClient(cc).WatchEvents(ctx, req)
		if err == nil {
			c.cur = i
			return stream, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !unanswered(err) {
			return nil, err
		}
		tried = append(tried, attempt{c.endpoints[i], cause(err)})
	}
	return nil, &unreachableError{tried: tried, tls: c.tls, clientCert: c.cert}
}

// waitConnected waits up to the client's timeout for cc to connect or fail
// (the stream opened next then fails fast, naming the cause), so a
// black-holed endpoint cannot stall a stream that has no deadline.
func (c *client) waitConnected(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready && s != connectivity.TransientFailure; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil
}

// recvEvents passes the stream's events to fn and advances req.AfterSeq.
// It returns whether any event arrived, the stream's error (nil at its
// end) and fn's error.
func recvEvents(stream grpc.ServerStreamingClient[hangarv1.Event], req *hangarv1.WatchEventsRequest, fn func(*hangarv1.Event) error) (got bool, err, fnErr error) {
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil, nil
		}
		if err != nil {
			return got, err, nil
		}
		got = true
		if ev.GetSeq() > req.GetAfterSeq() {
			req.AfterSeq = ev.GetSeq()
		}
		if err := fn(ev); err != nil {
			return got, nil, err
		}
	}
}
