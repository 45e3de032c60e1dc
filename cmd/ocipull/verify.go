package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/ocistream/ocistream"
	"github.com/ocistream/ocistream/layout"
)

func newVerifyCommand(st *state) *cli.Command {
	var asJSON, repair bool
	var format string
	return &cli.Command{
		Name:      "verify",
		Usage:     "check an OCI layout directory: every blob hashed again, nothing missing or left over",
		ArgsUsage: "DIR",
		UsageText: "ocipull verify [options] DIR",
		Description: `Walk everything reachable from DIR/index.json (indexes, manifests, configs and
layers), hash every blob again and check its size, its digest and, for manifests,
indexes and image configs, its media type and content. Report the blobs that are
missing, corrupt, of the wrong size or that do not parse, a broken index.json or
oci-layout, the files under blobs/ that nothing references, and the partial
downloads an interrupted pull left under .ingest/. A blob or partial download that
is not a regular file (a symbolic link, a FIFO, a device) is reported as
not-regular and never opened. Blobs a pull skipped on purpose (foreign layers,
listed in the index.json annotation io.ocistream.absent-blobs) are reported as
absent, which is not an error. Nothing is modified, unless --repair: then the blobs
whose bytes are wrong (corrupt, wrong size, and unreferenced blobs that do not hash
to their name) are moved to DIR/.quarantine/, and pulling the image into DIR again
(ocipull pull --verify REF -o DIR, the command printed) fetches them.

Each problem is one line on stdout, "KIND DIGEST PATH: DETAIL", the summary goes to
stderr, and the exit status is 1 when anything is wrong. Blobs are read once each,
several at once (--concurrency, default: the number of CPUs); on a terminal a
counter shows the progress.

--json prints the report on stdout as one JSON object instead:
   {"dir": DIR, "ok": BOOL, "blobs": N, "bytes": N, "problems": [PROBLEM...]}
where blobs and bytes count what was read, and each PROBLEM is
   {"kind": KIND, "digest": DIGEST, "path": PATH, "detail": TEXT}
KIND is one of bad-layout, bad-index, missing, wrong-size, corrupt, bad-media-type,
unparsable, unreferenced, partial, absent, not-regular; PATH is relative to DIR;
digest is left out when the problem concerns no blob. ok is false when any problem but absent is
reported. --format json is the same as --json; --format TEMPLATE runs the Go template
on the report: .Dir, .OK, .Blobs, .Bytes, .Problems (each with .Kind, .Digest, .Path,
.Detail).

Examples:
   ocipull verify alpine
   ocipull verify --json alpine | jq -r '.problems[] | select(.kind == "corrupt") | .path'
   ocipull verify --format '{{.OK}} {{len .Problems}}' alpine
   ocipull verify --repair alpine && ocipull pull --verify alpine -o alpine`,
		Flags: []cli.Flag{
			&cli.BoolFlag{
				Name:        "json",
				Usage:       "print the report as JSON on stdout",
				Destination: &asJSON,
			},
			formatFlag(&format),
			&cli.BoolFlag{
				Name:        "repair",
				Usage:       "move bad blobs to DIR/.quarantine/ so that a pull fetches them again",
				Destination: &repair,
			},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return usagef("verify wants one DIR, got %d arguments (see ocipull verify --help)", cmd.Args().Len())
			}
			f, err := parseFormat(format)
			if err != nil {
				return err
			}
			if asJSON && f.tmpl != nil {
				return usagef("--json and --format TEMPLATE exclude each other")
			}
			f.json = f.json || asJSON
			return st.verify(ctx, cmd, cmd.Args().First(), f, repair)
		},
	}
}

// verifyOutput is the JSON form of a report that verify --json prints.
type verifyOutput struct {
	Dir string `json:"dir"`
	OK  bool   `json:"ok"`
	*layout.VerifyReport
}

func (st *state) verify(ctx context.Context, cmd *cli.Command, dir string, f outputFormat, repair bool) error {
	t := target{name: dir}
	prog := st.newVerifyProgress(cmd)
	opts := &layout.VerifyOptions{Concurrency: st.opts.concurrency}
	if prog.active() {
		opts.Progress = prog.event
	}
	rep, err := layout.Verify(ctx, dir, opts)
	prog.finish()
	if errors.Is(err, ocistream.ErrInvalidLayout) {
		// Not a layout at all: said as is, without the advice pull gives for -o.
		err = errors.New(err.Error())
	}
	if err != nil {
		return st.fail(t, err)
	}

	out := stdout(cmd)
	switch {
	case f.json:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(verifyOutput{Dir: dir, OK: rep.OK(), VerifyReport: rep}); err != nil {
			return st.fail(t, err)
		}
	case f.tmpl != nil:
		if err := f.write(out, verifyOutput{Dir: dir, OK: rep.OK(), VerifyReport: rep}); err != nil {
			return st.fail(t, err)
		}
	default:
		for _, p := range rep.Problems {
			if _, err := fmt.Fprintln(out, p); err != nil {
				return st.fail(t, err)
			}
		}
	}

	read := fmt.Sprintf("%s, %s", plural(rep.Blobs, "blob"), formatSize(rep.Bytes))
	counts, absent := problemCounts(rep.Problems)
	if !rep.OK() {
		n := 0
		for _, c := range counts {
			n += c.n
		}
		msg := fmt.Sprintf("layout %s has %s: %s (verified %s)", dir, plural(n, "problem"), formatCounts(counts), read)
		if fixable(counts) {
			if !repair {
				msg += fmt.Sprintf("; to fetch bad blobs again: %s", repullHint(dir))
			} else if moved, err := quarantine(ctx, dir, rep); err != nil {
				return st.fail(t, err)
			} else if moved > 0 {
				msg += fmt.Sprintf("; moved %s to %s: run %s", plural(moved, "bad blob"), filepath.Join(dir, quarantineDir), repullHint(dir))
			}
		}
		return st.fail(t, errors.New(msg))
	}
	if !st.opts.quiet {
		summary := fmt.Sprintf("verified %s (%s): OK", plural(rep.Blobs, "blob"), formatSize(rep.Bytes))
		if absent > 0 {
			summary += fmt.Sprintf(", %d absent (foreign, skipped)", absent)
		}
		fmt.Fprintln(stderr(cmd), summary)
	}
	return nil
}

// fixable reports whether counts hold problems a pull repairs: blobs whose bytes are
// wrong or missing.
func fixable(counts []kindCount) bool {
	for _, c := range counts {
		switch c.kind {
		case layout.Corrupt, layout.WrongSize, layout.Missing:
			return true
		}
	}
	return false
}

// kindCount is how many problems of a kind a report holds.
type kindCount struct {
	kind layout.ProblemKind
	n    int
}

// problemCounts counts the problems of a sorted report by kind, in report order,
// absent ones apart.
func problemCounts(ps []layout.Problem) (counts []kindCount, absent int) {
	for _, p := range ps {
		switch {
		case p.Kind == layout.Absent:
			absent++
		case len(counts) > 0 && counts[len(counts)-1].kind == p.Kind:
			counts[len(counts)-1].n++
		default:
			counts = append(counts, kindCount{p.Kind, 1})
		}
	}
	return counts, absent
}

// formatCounts prints counts as "2 missing, 1 corrupt".
func formatCounts(counts []kindCount) string {
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = fmt.Sprintf("%d %s", c.n, c.kind)
	}
	return strings.Join(parts, ", ")
}

// plural prints n and noun, with an s unless n is 1: "1 blob", "3 blobs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// verifyProgress shows how far a verify has got on stderr: nothing with --quiet or
// when stderr is not a terminal, one line per blob with --verbose, else a counter
// redrawn in place at most ten times a second and erased at the end.
type verifyProgress struct {
	w       io.Writer
	verbose bool // a line per blob
	counter bool // a counter redrawn in place
	drawn   time.Time
	now     func() time.Time
}

// newVerifyProgress picks how to show the progress of a verify.
func (st *state) newVerifyProgress(cmd *cli.Command) *verifyProgress {
	w := stderr(cmd)
	p := &verifyProgress{w: w, now: time.Now}
	switch {
	case st.opts.quiet:
	case st.opts.verbose:
		p.verbose = true
	case isTerminal(w):
		p.counter = true
	}
	return p
}

// active reports whether p shows anything.
func (p *verifyProgress) active() bool { return p.verbose || p.counter }

// verifyRedraw is the shortest time between two draws of the counter.
const verifyRedraw = 100 * time.Millisecond

func (p *verifyProgress) event(e layout.VerifyEvent) {
	switch {
	case p.verbose:
		if e.Digest != "" {
			fmt.Fprintf(p.w, "checked %s %s\n", e.Digest, formatSize(e.Size))
		}
	case p.counter:
		now := p.now()
		if !p.drawn.IsZero() && now.Sub(p.drawn) < verifyRedraw {
			return
		}
		p.drawn = now
		fmt.Fprintf(p.w, "\r\x1b[Kverifying: %d of %d blobs, %s of %s", e.Checked, e.Total, formatSize(e.Bytes), formatSize(e.TotalBytes))
	}
}

// finish erases the counter, if it was drawn.
func (p *verifyProgress) finish() {
	if p.counter && !p.drawn.IsZero() {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
