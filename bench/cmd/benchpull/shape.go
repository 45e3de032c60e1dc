package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// shapeOptions describe the wide-area link the shaping proxy imitates.
type shapeOptions struct {
	listen   string // host:port to serve on
	upstream string // registry host:port (plain HTTP)
	rate     int64  // bytes per second of each response body, on its own
	delay    time.Duration
	// perConn paces each TCP connection instead of each response body: over HTTP/2,
	// every stream of a connection shares its rate, as at a CDN that caps connections.
	perConn bool
}

// shapeCmd runs a reverse proxy in front of a registry that imitates a wide-area link
// to a CDN or object store: every request waits delay before it is forwarded (the
// round trip), and every response body is paced at rate bytes per second on its own
// (the per-connection cap of such servers; HTTP/1.1 carries one response at a time
// per connection, so this is a per-connection cap). Several connections at once get
// rate each. It prints "ready" once it listens and runs until interrupted.
func shapeCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shape", flag.ExitOnError)
	var o shapeOptions
	rate := fs.String("rate", "32MiB", "bytes per second of each response body (KiB, MiB suffixes)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to listen on")
	fs.StringVar(&o.upstream, "registry", "", "registry host:port (plain HTTP)")
	fs.DurationVar(&o.delay, "delay", 40*time.Millisecond, "delay added to every request")
	_ = fs.Parse(args)
	if o.upstream == "" {
		return fmt.Errorf("shape needs -registry")
	}
	var err error
	if o.rate, err = parseRate(*rate); err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newShaper(o), ReadHeaderTimeout: time.Minute}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(os.Stdout, "ready %s\n", l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newShaper returns the shaping reverse proxy of o.
func newShaper(o shapeOptions) http.Handler {
	target := &url.URL{Scheme: "http", Host: o.upstream}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tr.DisableCompression = true
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the registry builds its Location headers from it
		},
		Transport:     tr,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if !o.perConn {
				resp.Body = &pacedBody{r: resp.Body, rate: o.rate, start: time.Now()}
			}
			return nil
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(o.delay):
		case <-r.Context().Done():
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// pacedBody delivers a body no faster than rate bytes per second from start.
type pacedBody struct {
	r     io.ReadCloser
	rate  int64
	start time.Time
	n     int64
}

// pacingQuantum bounds one read, so the pace is smooth at the granularity of a
// typical TCP window rather than in bursts of the proxy's copy buffer.
const pacingQuantum = 64 << 10

func (p *pacedBody) Read(b []byte) (int, error) {
	if len(b) > pacingQuantum {
		b = b[:pacingQuantum]
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	due := p.start.Add(time.Duration(float64(p.n) / float64(p.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		time.Sleep(wait)
	}
	return n, err
}

func (p *pacedBody) Close() error { return p.r.Close() }

// parseRate reads "32MiB", "512KiB" or a plain number of bytes.
func parseRate(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("rate %q: want a positive number of bytes, like 32MiB", s)
	}
	return n * mult, nil
}

// pacedListener paces every connection it accepts at rate bytes per second.
type pacedListener struct {
	net.Listener
	rate  int64
	conns atomic.Int64 // connections accepted
}

func (l *pacedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.conns.Add(1)
	return &pacedConn{Conn: c, rate: l.rate}, nil
}

// pacingSlack is how far ahead of its pace a connection may run before it sleeps.
const pacingSlack = 2 * time.Millisecond

// pacedConn writes no faster than rate bytes per second, with no burst after an idle
// time: a leaky bucket whose level is due, the time its last byte may leave.
type pacedConn struct {
	net.Conn
	rate int64
	due  time.Time
}

func (c *pacedConn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		piece := b[:min(len(b), pacingQuantum)]
		if now := time.Now(); c.due.Before(now) {
			c.due = now
		}
		c.due = c.due.Add(time.Duration(float64(len(piece)) / float64(c.rate) * float64(time.Second)))
		n, err := c.Conn.Write(piece)
		written += n
		if err != nil {
			return written, err
		}
		if wait := time.Until(c.due); wait > pacingSlack {
			time.Sleep(wait) // TLS writes records of 16 KiB: a sleep each would cost more than the pace
		}
		b = b[n:]
	}
	return written, nil
}
