package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
)

// protoOptions describe the HTTP/1.1-against-HTTP/2 measurement.
type protoOptions struct {
	shape          shapeOptions
	repo           string
	rounds, warmup int
	work, out      string
}

// protoCmd measures how the chunks of a parallel download should travel when the
// registry speaks HTTP/2 and the link caps every TCP connection (a CDN, an object
// store): it starts the shaping proxy in-process over TLS, offering h2 and pacing each
// connection at -rate, and pulls REPO:latest through it with the SDK, alternating
//
//   - default: the SDK's transport, whose chunk requests go over HTTP/1.1, each on a
//     connection of its own (the rest over HTTP/2);
//   - http2: WithTransport of a transport that speaks HTTP/2, so every chunk is a
//     stream of one connection;
//   - one-stream: the default transport with parallel download off.
//
// It prints a markdown table (and writes it to -out).
func protoCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proto", flag.ExitOnError)
	var o protoOptions
	rate := fs.String("rate", "32MiB", "bytes per second of each TCP connection (KiB, MiB suffixes)")
	fs.StringVar(&o.shape.upstream, "registry", "", "registry host:port (plain HTTP)")
	fs.DurationVar(&o.shape.delay, "delay", 40*time.Millisecond, "delay added to every request")
	fs.StringVar(&o.repo, "repo", "one", "repository pulled (tag latest)")
	fs.IntVar(&o.rounds, "rounds", 3, "timed rounds")
	fs.IntVar(&o.warmup, "warmup", 1, "untimed rounds before them")
	fs.StringVar(&o.work, "work", "", "scratch directory; pulls go to WORK/pulls/proto")
	fs.StringVar(&o.out, "out", "", "markdown report to write")
	_ = fs.Parse(args)
	if o.shape.upstream == "" || o.work == "" {
		return fmt.Errorf("proto needs -registry and -work")
	}
	var err error
	if o.shape.rate, err = parseRate(*rate); err != nil {
		return err
	}
	o.shape.perConn = true
	report, err := runProto(ctx, o, *rate)
	if err != nil {
		return err
	}
	fmt.Print(report)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

// protoMode is one way of pulling in the measurement.
type protoMode struct {
	name string
	opts func(pool *x509.CertPool) []ocistream.Option
}

var protoModes = []protoMode{
	{"default", func(pool *x509.CertPool) []ocistream.Option {
		return []ocistream.Option{ocistream.WithRootCAs(pool)}
	}},
	{"http2", func(pool *x509.CertPool) []ocistream.Option {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
		t.ForceAttemptHTTP2 = true
		t.DisableCompression = true
		return []ocistream.Option{ocistream.WithTransport(t)}
	}},
	{"one-stream", func(pool *x509.CertPool) []ocistream.Option {
		return []ocistream.Option{ocistream.WithRootCAs(pool), ocistream.WithParallelDownload(ocistream.ParallelDownload{Connections: 1})}
	}},
}

// protoResult is one pull's outcome.
type protoResult struct {
	wall          time.Duration
	conns, h1, h2 int64
}

func runProto(ctx context.Context, o protoOptions, rate string) (string, error) {
	cert, pool, err := selfSigned()
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	pl := &pacedListener{Listener: l, rate: o.shape.rate}
	var h1, h2 atomic.Int64
	shaper := newShaper(o.shape)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 {
				h2.Add(1)
			} else {
				h1.Add(1)
			}
			shaper.ServeHTTP(w, r)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: time.Minute,
	}
	go func() { _ = srv.ServeTLS(pl, "", "") }()
	defer srv.Close()
	ref := l.Addr().String() + "/" + o.repo + ":latest"
	logf("proto: TLS shaping proxy on %s, every connection at %s, %s per request", l.Addr(), rate, o.shape.delay)

	runs := map[string][]protoResult{}
	for round := range o.warmup + o.rounds {
		modes := slices.Clone(protoModes)
		if round%2 == 1 {
			slices.Reverse(modes)
		}
		for _, m := range modes {
			c0, a0, b0 := pl.conns.Load(), h1.Load(), h2.Load()
			wall, err := protoPull(ctx, filepath.Join(o.work, "pulls", "proto"), ref, m.opts(pool))
			if err != nil {
				return "", fmt.Errorf("%s: %w", m.name, err)
			}
			r := protoResult{wall: wall, conns: pl.conns.Load() - c0, h1: h1.Load() - a0, h2: h2.Load() - b0}
			logf("proto: round %d %s: %.3f s, %d connections, %d HTTP/1.1 and %d HTTP/2 requests", round+1, m.name, wall.Seconds(), r.conns, r.h1, r.h2)
			if round >= o.warmup {
				runs[m.name] = append(runs[m.name], r)
			}
		}
	}
	return protoReport(o, rate, runs), nil
}

// protoPull pulls ref into a fresh layout directory under dir with a new client.
func protoPull(ctx context.Context, dir, ref string, opts []ocistream.Option) (time.Duration, error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	c, err := ocistream.New(opts...)
	if err != nil {
		return 0, err
	}
	d, err := layout.OpenDir(dir, nil)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	start := time.Now()
	_, err = c.Pull(ctx, ref, d, nil)
	return time.Since(start), err
}

func protoReport(o protoOptions, rate string, runs map[string][]protoResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# chunks over HTTP/1.1 or HTTP/2, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- link: TLS shaping proxy offering h2, every TCP connection paced at %s, %s added to every request (benchpull proto)\n", rate, o.shape.delay)
	fmt.Fprintf(&b, "- image: %s:latest; %d timed rounds after %d warm-up, order reversed every round; SDK pulls into a layout directory\n\n", o.repo, o.rounds, o.warmup)
	b.WriteString("| mode | wall median | wall min–max | TCP connections | HTTP/1.1 requests | HTTP/2 requests | wall / http2 |\n|---|---:|---:|---:|---:|---:|---:|\n")
	base := protoMedian(runs["http2"])
	for _, m := range protoModes {
		rs := runs[m.name]
		walls := make([]float64, len(rs))
		for i, r := range rs {
			walls[i] = r.wall.Seconds()
		}
		last := rs[len(rs)-1]
		fmt.Fprintf(&b, "| %s | %.3f s | %.3f–%.3f s | %d | %d | %d | %.2f |\n", m.name, protoMedian(rs), slices.Min(walls), slices.Max(walls),
			last.conns, last.h1, last.h2, protoMedian(rs)/base)
	}
	return b.String()
}

func protoMedian(rs []protoResult) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = r.wall.Seconds()
	}
	return median(xs)
}

// selfSigned returns a fresh certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "benchpull proto"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
