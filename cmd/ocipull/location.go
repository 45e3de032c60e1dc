package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/credentials"
	"github.com/ocistream/ocistream/layout"
	"github.com/ocistream/ocistream/ref"
)

// locationKind is where an image is: a registry, a layout directory or a layout tar.
type locationKind int

const (
	inRegistry locationKind = iota
	inLayoutDir
	inLayoutTar
)

// Transport prefixes of a location, as skopeo and regctl spell them.
const (
	ociPrefix        = "oci:"
	ociArchivePrefix = "oci-archive:"
)

// location is a parsed SRC or DST argument.
type location struct {
	kind locationKind
	// arg is the argument as given, for messages.
	arg string
	// ref is the reference of a registry location.
	ref ref.Reference
	// path is the directory or tar file of a layout location.
	path string
	// image picks an image of a layout: its tag (org.opencontainers.image.ref.name) or
	// full name; "" when the layout holds one image, or for a destination, none given.
	image string
}

// parseLocation parses a registry reference, oci:PATH[:REF] or oci-archive:PATH[:REF].
// As in skopeo, PATH ends at the first colon after the prefix.
func parseLocation(arg string) (location, error) {
	for _, p := range []struct {
		prefix string
		kind   locationKind
	}{{ociPrefix, inLayoutDir}, {ociArchivePrefix, inLayoutTar}} {
		rest, ok := strings.CutPrefix(arg, p.prefix)
		if !ok {
			continue
		}
		path, image, _ := strings.Cut(rest, ":")
		if path == "" {
			return location{}, fmt.Errorf("%q names no path: want %sPATH[:REF]", arg, p.prefix)
		}
		return location{kind: p.kind, arg: arg, path: path, image: image}, nil
	}
	r, err := ref.Parse(arg)
	if err != nil {
		return location{}, err
	}
	return location{kind: inRegistry, arg: arg, ref: r}, nil
}

// String returns the location as the user gave it.
func (l location) String() string { return l.arg }

// target describes the location for error messages.
func (l location) target() target {
	if l.kind == inRegistry {
		return target{name: l.ref.String(), host: l.ref.Registry()}
	}
	return target{name: l.arg, dest: l.path}
}

// openSource opens SRC (a reference, oci:PATH[:REF] or oci-archive:PATH[:REF]) as a
// source; close releases what it holds. Errors are ready to return from the command.
func (st *state) openSource(ctx context.Context, cmd *cli.Command, arg string) (ocistream.Source, func() error, error) {
	loc, err := parseLocation(arg)
	if err != nil {
		return nil, nil, st.fail(target{name: arg}, err)
	}
	c, err := st.locationClient(ctx, cmd, loc)
	if err != nil {
		return nil, nil, err
	}
	return st.sourceAt(c, loc)
}

// locationClient returns a client for loc's registry, or nil for a layout.
func (st *state) locationClient(ctx context.Context, cmd *cli.Command, locs ...location) (*ocistream.Client, error) {
	var hosts []string
	for _, l := range locs {
		if l.kind == inRegistry {
			hosts = append(hosts, l.ref.Registry())
		}
	}
	if len(hosts) == 0 {
		return nil, nil
	}
	if len(hosts) == 2 && credentials.CanonicalHost(hosts[0]) != credentials.CanonicalHost(hosts[1]) && st.opts.username != "" {
		return nil, usagef("-u/--username names one registry, and %s and %s are two: log in to each with ocipull login (or docker login) and leave -u out", hosts[0], hosts[1])
	}
	c, err := st.newClient(ctx, cmd, hosts...)
	if err != nil {
		return nil, st.fail(locs[0].target(), err)
	}
	return c, nil
}

// sourceAt opens loc as a source; c is the client for a registry location.
func (st *state) sourceAt(c *ocistream.Client, loc location) (ocistream.Source, func() error, error) {
	noop := func() error { return nil }
	switch loc.kind {
	case inRegistry:
		return c.RepositoryOf(loc.ref), noop, nil
	case inLayoutDir, inLayoutTar:
		open := layout.OpenSource
		if loc.kind == inLayoutTar {
			open = layout.OpenArchiveSource
		}
		src, err := open(loc.path, loc.image)
		if err != nil {
			return nil, nil, st.fail(loc.target(), err)
		}
		return src, src.Close, nil
	}
	return nil, nil, errors.New("unknown location")
}
