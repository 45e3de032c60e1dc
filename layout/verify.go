package layout

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/internal/text"
	"github.com/ocistream/ocistream/ocitypes"
	"github.com/opencontainers/go-digest"
)

// ProblemKind classifies what [Verify] found wrong (or, for [Absent], notable) in a
// layout. Its text form (String, MarshalText) is the stable lower-case name given with
// each constant; the order of the constants is the order of a report.
type ProblemKind int

const (
	// BadLayout ("bad-layout"): the oci-layout file is missing, or does not say
	// {"imageLayoutVersion":"1.0.0"}.
	BadLayout ProblemKind = iota + 1
	// BadIndex ("bad-index"): index.json is missing, unreadable as JSON or not a
	// valid image index (the walk stops there), or one of its annotations is malformed.
	BadIndex
	// Missing ("missing"): a referenced blob is not in blobs/.
	Missing
	// WrongSize ("wrong-size"): a blob's file does not hold the number of bytes its
	// descriptor says (a truncated or overlong file, or a wrong descriptor).
	WrongSize
	// Corrupt ("corrupt"): a blob has the right size but its content does not hash
	// to its digest.
	Corrupt
	// BadMediaType ("bad-media-type"): a manifest or index is not of the media type
	// its descriptor says (a manifest where an index was announced, or a mediaType
	// field that contradicts the descriptor).
	BadMediaType
	// Unparsable ("unparsable"): a manifest, index or image config with the right
	// digest does not pass the strict parsers of package ocitypes.
	Unparsable
	// Unreferenced ("unreferenced"): a file under blobs/ that nothing reachable from
	// index.json references.
	Unreferenced
	// Partial ("partial"): a partial download left under .ingest/ by an interrupted
	// pull. The next pull of that blob resumes it.
	Partial
	// Absent ("absent"): a blob that is not in the layout and that index.json declares
	// absent on purpose (see [ocitypes.AnnotationAbsentBlobs]). Informational, not an error.
	Absent
	// NotRegular ("not-regular"): a blob or a partial download that is not a regular
	// file: a symbolic link (which could point outside the layout), a FIFO, a device,
	// a directory where a blob belongs. It is never opened nor read.
	NotRegular
)

var problemKindNames = [...]string{
	BadLayout:    "bad-layout",
	BadIndex:     "bad-index",
	Missing:      "missing",
	WrongSize:    "wrong-size",
	Corrupt:      "corrupt",
	BadMediaType: "bad-media-type",
	Unparsable:   "unparsable",
	Unreferenced: "unreferenced",
	Partial:      "partial",
	Absent:       "absent",
	NotRegular:   "not-regular",
}

// String returns the kind's stable name ("missing", "wrong-size"), or
// "ProblemKind(N)" for a value that is none of the constants.
func (k ProblemKind) String() string {
	if k > 0 && int(k) < len(problemKindNames) {
		return problemKindNames[k]
	}
	return fmt.Sprintf("ProblemKind(%d)", int(k))
}

// MarshalText returns the kind's name, so that a [Problem] encodes to JSON as
// {"kind":"corrupt",...}. A value that is none of the constants is an error.
func (k ProblemKind) MarshalText() ([]byte, error) {
	if k > 0 && int(k) < len(problemKindNames) {
		return []byte(problemKindNames[k]), nil
	}
	return nil, fmt.Errorf("marshal problem kind: unknown kind %d", int(k))
}

// UnmarshalText parses a kind's name, as MarshalText writes it.
func (k *ProblemKind) UnmarshalText(b []byte) error {
	for i, name := range problemKindNames {
		if name != "" && name == string(b) {
			*k = ProblemKind(i)
			return nil
		}
	}
	return fmt.Errorf("unmarshal problem kind: unknown kind %q", clipText(string(b)))
}

// Problem is one thing [Verify] found. Its JSON form has the fields kind, digest
// (omitted when none), path and detail.
type Problem struct {
	Kind ProblemKind `json:"kind"`
	// Digest is the blob concerned; "" for a problem of oci-layout or index.json, or
	// for a file under blobs/ whose name is not a digest.
	Digest digest.Digest `json:"digest,omitempty"`
	// Path is the file concerned, relative to the layout directory, with forward
	// slashes: "blobs/sha256/<hex>", "index.json", ".ingest/sha256-<hex>.partial".
	Path string `json:"path"`
	// Detail says what is wrong in words: "content hashes to sha256:...",
	// "holds 10 bytes, sha256:... says 20", the parser's error.
	Detail string `json:"detail"`
}

// String formats p on one line: kind, digest, path and detail ("corrupt sha256:ab...
// blobs/sha256/ab...: content hashes to sha256:cd...").
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Kind.String())
	if p.Digest != "" {
		b.WriteString(" " + p.Digest.String())
	}
	b.WriteString(" " + p.Path)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	return b.String()
}

// VerifyReport is the result of [Verify]. Its JSON form has the fields blobs, bytes and
// problems.
type VerifyReport struct {
	// Blobs is the number of distinct blobs found and read.
	Blobs int `json:"blobs"`
	// Bytes is the number of bytes hashed: the sum of the sizes of those blobs.
	Bytes int64 `json:"bytes"`
	// Problems lists what was found, sorted by kind, then digest, path and detail;
	// never nil (empty when the layout is sound).
	Problems []Problem `json:"problems"`
}

// OK reports whether nothing is wrong with the layout: no problem other than [Absent].
func (r *VerifyReport) OK() bool {
	for _, p := range r.Problems {
		if p.Kind != Absent {
			return false
		}
	}
	return true
}

// VerifyEvent tells a [VerifyOptions.Progress] function how far a [Verify] has got.
type VerifyEvent struct {
	// Digest is the blob whose check just ended; "" in a periodic update sent while
	// large blobs are being hashed.
	Digest digest.Digest
	// Size is the number of bytes of that blob read, its descriptor's size when the
	// blob is missing.
	Size int64
	// Checked is the number of blobs checked so far, Total the number known to check:
	// Total grows while manifests and indexes are read.
	Checked, Total int
	// Bytes is the number of bytes hashed so far, TotalBytes the sum of the sizes
	// the descriptors of the blobs known to check give.
	Bytes, TotalBytes int64
}

// VerifyOptions tunes [Verify]. The zero value (or nil) is the default.
type VerifyOptions struct {
	// Concurrency is the number of blobs hashed at once; runtime.GOMAXPROCS(0) when
	// zero or negative.
	Concurrency int
	// Progress, when not nil, receives an event after each blob is checked and, while
	// blobs are being hashed, about ten times a second. Calls are never concurrent;
	// a slow Progress slows the walk (not the hashing of blobs already started).
	Progress func(VerifyEvent)
}

// verifyBufferSize is the read buffer of each hashing worker.
const verifyBufferSize = 256 << 10

// verifyTick is how often a Progress function hears of bytes hashed in large blobs.
const verifyTick = 100 * time.Millisecond

// Verify checks the OCI image layout directory at path and reports what is wrong with
// it. It never modifies the layout.
//
// It reads oci-layout and index.json (strictly: [ocitypes.ParseIndex]), then walks every
// descriptor reachable from index.json: each index and manifest is read whole (at most
// [ocitypes.MaxManifestSize] bytes) and parsed with the strict parsers of package
// ocitypes, with its descriptor's media type as content type, and its children (the
// entries of an index; the config and layers of a manifest) are walked in turn; an
// image config (OCI or Docker media type) is parsed with [ocitypes.ParseImageConfig];
// any other blob (layers) is only hashed. Subjects are not followed. Every blob is
// hashed exactly once however often it is referenced, streamed through the hash by a
// pool of Concurrency workers, each reusing one 256 KiB read buffer and, for the
// manifests, indexes and configs it parses, one buffer of at most MaxManifestSize:
// memory does not grow with blob sizes, only with the number of blobs. The size of the
// file is checked against every descriptor that references it, and its content against
// the digest.
//
// Then it lists the files under blobs/ that nothing reachable references, and the
// partial downloads under .ingest/. A broken index.json is reported as [BadIndex] and
// stops the walk: no blob is read and no file reported unreferenced, since nothing is
// known to be reachable. The blobs named by [ocitypes.AnnotationAbsentBlobs] on index.json
// entries (of any entry, taken together) are [Absent] rather than [Missing].
//
// A content problem hides the ones that follow from it: a truncated blob is reported as
// [WrongSize] only (not also [Corrupt]), and a manifest whose bytes are wrong is not also
// [Unparsable]; it is still parsed when its bytes allow, so that its children are walked
// and not reported unreferenced.
//
// The error is not nil only when the check could not run: ctx was cancelled (the error
// wraps ctx.Err()), path does not exist or is not a directory, is not a layout at all
// (no oci-layout, index.json nor blobs/; the error wraps errdef.ErrInvalidLayout), or a
// file could not be read for another reason than its absence (permissions, I/O).
// Everything else about the layout is in the report.
func Verify(ctx context.Context, path string, opts *VerifyOptions) (*VerifyReport, error) {
	v := &verifier{
		d:       &Dir{path: path},
		entries: map[digest.Digest]*verifyEntry{},
		absent:  map[digest.Digest]string{},
		report:  &VerifyReport{Problems: []Problem{}},
	}
	if opts != nil {
		v.opts = *opts
	}
	if v.opts.Concurrency <= 0 {
		v.opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("verify layout: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("verify layout %s: %w: not a directory", path, errdef.ErrInvalidLayout)
	}
	if err := v.checkLayoutFile(); err != nil {
		return nil, err
	}
	roots, ok, err := v.readIndex()
	if err != nil {
		return nil, err
	}
	if ok {
		for _, r := range roots {
			v.discover(r, indexFile)
		}
		if err := v.walk(ctx); err != nil {
			return nil, err
		}
		v.conclude()
		if err := v.unreferenced(); err != nil {
			return nil, err
		}
	}
	if err := v.partials(); err != nil {
		return nil, err
	}
	slices.SortFunc(v.report.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Digest, b.Digest),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Detail, b.Detail))
	})
	v.report.Problems = slices.Compact(v.report.Problems)
	return v.report, nil
}

// verifyRole is what a blob is read as, beyond being hashed.
type verifyRole uint8

const (
	roleBlob     verifyRole = 0 // hashed only
	roleIndex    verifyRole = 1 << 0
	roleManifest verifyRole = 1 << 1
	roleConfig   verifyRole = 1 << 2
)

// roleOf returns the role a descriptor's media type gives its blob.
func roleOf(mediaType string) verifyRole {
	switch {
	case ocitypes.IsIndex(mediaType):
		return roleIndex
	case ocitypes.IsManifest(mediaType):
		return roleManifest
	}
	switch mediaTypeBase(mediaType) {
	case ocitypes.MediaTypeOCIConfig, ocitypes.MediaTypeDockerConfig:
		return roleConfig
	}
	return roleBlob
}

// mediaTypeBase returns mediaType without parameters, trimmed and in lower case.
func mediaTypeBase(mediaType string) string {
	mediaType, _, _ = strings.Cut(mediaType, ";")
	return strings.ToLower(strings.TrimSpace(mediaType))
}

// verifyRef is one reference to a blob: the size it claims and who makes it.
type verifyRef struct {
	size int64
	from string // "index.json" or the digest of the referring index or manifest
}

// verifyEntry is what the walk knows of one digest.
type verifyEntry struct {
	desc  ocitypes.Descriptor // of the first reference
	refs  []verifyRef         // distinct sizes claimed, the first reference's first
	roles verifyRole          // roles a read was scheduled for

	checked    bool   // the hashing job ended
	missing    string // why the blob counts as missing ("" when present)
	notRegular string // what the blob's path holds instead of a regular file
	size       int64  // bytes read
	got        digest.Digest
	parsed     []Problem // media type and parse problems, kept only when the bytes are right
}

// verifyJob asks a worker to read one blob: hashed when hash is set (once per digest),
// parsed as role.
type verifyJob struct {
	desc ocitypes.Descriptor
	role verifyRole
	hash bool
}

// verifyResult is what a worker learnt from a job.
type verifyResult struct {
	job      verifyJob
	missing  string // why the blob counts as missing
	special  string // what the blob's path holds instead of a regular file
	size     int64
	got      digest.Digest
	children []ocitypes.Descriptor
	problems []Problem
	err      error // the job could not run
}

// verifier holds the state of one Verify.
type verifier struct {
	d       *Dir
	opts    VerifyOptions
	report  *VerifyReport
	entries map[digest.Digest]*verifyEntry
	absent  map[digest.Digest]string // digest → the entry declaring it absent
	queue   []verifyJob
	hashed  atomic.Int64 // bytes hashed, for progress events

	checked, total int
	totalBytes     int64
}

func (v *verifier) add(p Problem) { v.report.Problems = append(v.report.Problems, p) }

// blobRel returns the path of a blob relative to the layout, with forward slashes.
func blobRel(dg digest.Digest) string {
	return path.Join(blobsDir, string(dg.Algorithm()), dg.Encoded())
}

// checkLayoutFile checks oci-layout. A directory with neither oci-layout, index.json
// nor blobs/ is not a layout at all: that is an error, not a report.
func (v *verifier) checkLayoutFile() error {
	b, err := readRegular(filepath.Join(v.d.path, layoutFile), 4<<10)
	switch {
	case errors.As(err, new(*NotRegularError)):
		v.add(Problem{Kind: BadLayout, Path: layoutFile, Detail: notRegularDetail(err)})
	case errors.Is(err, fs.ErrNotExist):
		anyOf := false
		for _, name := range []string{indexFile, blobsDir} {
			if _, err := os.Lstat(filepath.Join(v.d.path, name)); err == nil {
				anyOf = true
			}
		}
		if !anyOf {
			return fmt.Errorf("verify layout %s: %w: no oci-layout, index.json nor blobs/", v.d.path, errdef.ErrInvalidLayout)
		}
		v.add(Problem{Kind: BadLayout, Path: layoutFile, Detail: "oci-layout is missing"})
	case err != nil:
		return fmt.Errorf("verify layout: %w", err)
	default:
		if err := checkLayoutFile(b); err != nil {
			detail := strings.TrimPrefix(err.Error(), layoutFile+": ")
			v.add(Problem{Kind: BadLayout, Path: layoutFile, Detail: detail})
		}
	}
	return nil
}

// readIndex reads index.json strictly and returns its entries, and the absent blobs
// they declare in v.absent. ok is false when index.json is broken (reported).
func (v *verifier) readIndex() (roots []ocitypes.Descriptor, ok bool, err error) {
	b, err := readRegular(filepath.Join(v.d.path, indexFile), ocitypes.MaxManifestSize+1)
	if errors.Is(err, fs.ErrNotExist) {
		v.add(Problem{Kind: BadIndex, Path: indexFile, Detail: "index.json is missing"})
		return nil, false, nil
	}
	if errors.As(err, new(*NotRegularError)) {
		v.add(Problem{Kind: BadIndex, Path: indexFile, Detail: notRegularDetail(err)})
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("verify layout: %w", err)
	}
	idx, err := ocitypes.ParseIndex(ocitypes.MediaTypeOCIIndex, b)
	if err != nil {
		v.add(Problem{Kind: BadIndex, Path: indexFile, Detail: parseDetail(err)})
		return nil, false, nil
	}
	for i, m := range idx.Manifests {
		list, ok := m.Annotations[ocitypes.AnnotationAbsentBlobs]
		if !ok {
			continue
		}
		for s := range strings.SplitSeq(list, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			dg, err := digest.Parse(s)
			if err != nil {
				v.add(Problem{Kind: BadIndex, Path: indexFile, Detail: fmt.Sprintf(
					"manifests[%d]: annotation %s: %q is not a digest: %v", i, ocitypes.AnnotationAbsentBlobs, clipText(s), err)})
				continue
			}
			v.absent[dg] = m.Digest.String()
		}
	}
	return idx.Manifests, true, nil
}

// notRegularDetail describes a *NotRegularError in err for a problem: what the file
// is, with the target of a symbolic link.
func notRegularDetail(err error) string {
	var nr *NotRegularError
	if !errors.As(err, &nr) {
		return err.Error()
	}
	detail := nr.What
	if target, err := os.Readlink(nr.Path); err == nil {
		detail += " to " + strconv.Quote(target)
	}
	return detail + ", not a regular file; never read"
}

// parseDetail turns an error of the ocitypes parsers into a problem's detail: without
// the "invalid manifest: " prefix, and with the byte offset of a JSON error.
func parseDetail(err error) string {
	msg := strings.TrimPrefix(err.Error(), errdef.ErrInvalidManifest.Error()+": ")
	var (
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		off  int64
		have bool
	)
	switch {
	case errors.As(err, &syn):
		off, have = syn.Offset, true
	case errors.As(err, &typ):
		off, have = typ.Offset, true
	}
	if have {
		msg += fmt.Sprintf(" (at byte offset %d)", off)
	}
	return msg
}

// discover records a reference to d made by from and schedules the reads it needs: a
// hash the first time the digest is seen, a parse for each new role.
func (v *verifier) discover(d ocitypes.Descriptor, from string) {
	role := roleOf(d.MediaType)
	e := v.entries[d.Digest]
	if e == nil {
		e = &verifyEntry{desc: d, refs: []verifyRef{{d.Size, from}}, roles: role}
		v.entries[d.Digest] = e
		v.total++
		v.totalBytes += d.Size
		v.queue = append(v.queue, verifyJob{desc: d, role: role, hash: true})
		return
	}
	if !slices.ContainsFunc(e.refs, func(r verifyRef) bool { return r.size == d.Size }) {
		e.refs = append(e.refs, verifyRef{d.Size, from})
	}
	if role != roleBlob && e.roles&role == 0 {
		e.roles |= role
		v.queue = append(v.queue, verifyJob{desc: d, role: role})
	}
}

// walk runs the queued jobs, and those their results add, on a pool of workers.
func (v *verifier) walk(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := v.opts.Concurrency
	jobs := make(chan verifyJob)
	results := make(chan verifyResult, n) // a worker never blocks on a send
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			w := verifyWorker{v: v, buf: make([]byte, verifyBufferSize)}
			for j := range jobs {
				results <- w.run(ctx, j)
			}
		}()
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()

	var tick <-chan time.Time
	if v.opts.Progress != nil {
		t := time.NewTicker(verifyTick)
		defer t.Stop()
		tick = t.C
	}
	inflight := 0
	for len(v.queue) > 0 || inflight > 0 {
		var send chan<- verifyJob
		var next verifyJob
		if len(v.queue) > 0 {
			send, next = jobs, v.queue[0]
		}
		select {
		case send <- next:
			v.queue[0] = verifyJob{}
			v.queue = v.queue[1:]
			inflight++
		case r := <-results:
			inflight--
			if r.err != nil {
				return r.err
			}
			v.record(r)
		case <-tick:
			v.progress(VerifyEvent{})
		case <-ctx.Done():
			return fmt.Errorf("verify layout: %w", ctx.Err())
		}
	}
	return nil
}

// progress sends e, completed with the totals, to the Progress function.
func (v *verifier) progress(e VerifyEvent) {
	if v.opts.Progress == nil {
		return
	}
	e.Checked, e.Total = v.checked, v.total
	e.Bytes, e.TotalBytes = v.hashed.Load(), v.totalBytes
	v.opts.Progress(e)
}

// record takes in the result of a job.
func (v *verifier) record(r verifyResult) {
	e := v.entries[r.job.desc.Digest]
	if r.job.hash {
		e.checked = true
		e.missing, e.size, e.got, e.notRegular = r.missing, r.size, r.got, r.special
		v.checked++
		size := r.size
		if r.missing != "" || r.special != "" {
			size = r.job.desc.Size
		} else {
			v.report.Blobs++
			v.report.Bytes += r.size
		}
		v.progress(VerifyEvent{Digest: r.job.desc.Digest, Size: size})
	}
	e.parsed = append(e.parsed, r.problems...)
	from := r.job.desc.Digest.String()
	for _, c := range r.children {
		v.discover(c, from)
	}
}

// conclude turns what the jobs learnt of each digest into problems.
func (v *verifier) conclude() {
	for dg, e := range v.entries {
		rel := blobRel(dg)
		if e.notRegular != "" {
			v.add(Problem{Kind: NotRegular, Digest: dg, Path: rel, Detail: e.notRegular + ", referenced by " + e.refs[0].from})
			continue
		}
		if e.missing != "" {
			if root, ok := v.absent[dg]; ok {
				v.add(Problem{Kind: Absent, Digest: dg, Path: rel,
					Detail: fmt.Sprintf("declared absent by %s in index.json (foreign, skipped)", root)})
				continue
			}
			detail := fmt.Sprintf("%s, referenced by %s", e.missing, e.refs[0].from)
			if ocitypes.IsForeignLayer(e.desc.MediaType) {
				detail += " (a foreign layer not declared absent)"
			}
			v.add(Problem{Kind: Missing, Digest: dg, Path: rel, Detail: detail})
			continue
		}
		sizeOK := false
		for _, r := range e.refs {
			if r.size == e.size {
				sizeOK = true
				continue
			}
			v.add(Problem{Kind: WrongSize, Digest: dg, Path: rel,
				Detail: fmt.Sprintf("holds %d bytes, %s says %d", e.size, r.from, r.size)})
		}
		switch {
		case e.got != dg:
			if sizeOK {
				v.add(Problem{Kind: Corrupt, Digest: dg, Path: rel, Detail: "content hashes to " + e.got.String()})
			}
		case sizeOK:
			v.report.Problems = append(v.report.Problems, e.parsed...)
		}
	}
}

// unreferenced reports the files under blobs/ that no entry names.
func (v *verifier) unreferenced() error {
	algs, err := os.ReadDir(filepath.Join(v.d.path, blobsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("verify layout: %w", err)
	}
	for _, a := range algs {
		rel := path.Join(blobsDir, a.Name())
		if !a.IsDir() {
			v.add(Problem{Kind: Unreferenced, Path: rel, Detail: "not a blob: a file outside blobs/<algorithm>/"})
			continue
		}
		files, err := os.ReadDir(filepath.Join(v.d.path, blobsDir, a.Name()))
		if err != nil {
			return fmt.Errorf("verify layout: %w", err)
		}
		for _, f := range files {
			dg := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), f.Name())
			if dg.Validate() != nil {
				dg = ""
			} else if _, ok := v.entries[dg]; ok {
				continue
			}
			p := Problem{Kind: Unreferenced, Digest: dg, Path: path.Join(rel, f.Name())}
			switch info, err := f.Info(); {
			case err != nil:
				continue // removed meanwhile
			case info.IsDir():
				p.Detail = "a directory, not reachable from index.json"
			case !info.Mode().IsRegular():
				p.Detail = describeMode(info.Mode()) + ", not reachable from index.json"
			default:
				p.Detail = fmt.Sprintf("%d bytes, not reachable from index.json", info.Size())
			}
			v.add(p)
		}
	}
	return nil
}

// partials reports the partial downloads under .ingest/.
func (v *verifier) partials() error {
	paths, err := v.d.PartialDownloads()
	if err != nil {
		return fmt.Errorf("verify layout: %w", err)
	}
	if err := v.specialPartials(); err != nil {
		return err
	}
	for _, p := range paths {
		name := filepath.Base(p)
		var dg digest.Digest
		if alg, enc, ok := strings.Cut(strings.TrimSuffix(name, partialSuffix), "-"); ok {
			if d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc); d.Validate() == nil {
				dg = d
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue // resumed and committed meanwhile
		}
		v.add(Problem{Kind: Partial, Digest: dg, Path: path.Join(ingestDir, name),
			Detail: fmt.Sprintf("partial download of %d bytes; the next pull of this blob resumes it", fi.Size())})
	}
	return nil
}

// specialPartials reports what .ingest/ holds under a partial download's name that is
// not a regular file (a pull refuses to use it).
func (v *verifier) specialPartials() error {
	entries, err := os.ReadDir(filepath.Join(v.d.path, ingestDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("verify layout: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() || !strings.HasSuffix(e.Name(), partialSuffix) {
			continue
		}
		full := filepath.Join(v.d.path, ingestDir, e.Name())
		v.add(Problem{Kind: NotRegular, Path: path.Join(ingestDir, e.Name()),
			Detail: notRegularDetail(&NotRegularError{Path: full, What: describeMode(e.Type())})})
	}
	return nil
}

// verifyWorker runs jobs with its own buffers.
type verifyWorker struct {
	v    *verifier
	buf  []byte // read buffer
	body []byte // the bytes of a blob to parse, reused
}

// run reads the blob of j: hashes it (when j.hash), keeps its bytes when it is to be
// parsed and not larger than ocitypes.MaxManifestSize, then parses them.
func (w *verifyWorker) run(ctx context.Context, j verifyJob) verifyResult {
	r := verifyResult{job: j}
	p := w.v.d.BlobPath(j.desc.Digest)
	for _, dir := range []string{filepath.Dir(filepath.Dir(p)), filepath.Dir(p)} {
		if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
			// blobs/ or blobs/<alg>/ leads elsewhere: nothing under it is the layout's.
			r.special = notRegularDetail(&NotRegularError{Path: dir, What: describeMode(fi.Mode()), Dir: true})
			return r
		}
	}
	// Checked before it is opened, and opened without following a link or waiting on
	// a FIFO: a planted file can neither hang the check nor pass for a blob.
	f, err := openRegular(p, os.O_RDONLY, 0, false)
	if errors.Is(err, fs.ErrNotExist) {
		r.missing = "not in the layout"
		return r
	}
	if errors.As(err, new(*NotRegularError)) {
		r.special = notRegularDetail(err)
		return r
	}
	if err != nil {
		r.err = fmt.Errorf("verify layout: %w", err)
		return r
	}
	defer f.Close()

	var h hash.Hash
	if j.hash {
		h = j.desc.Digest.Algorithm().Hash()
	}
	keep := j.role != roleBlob
	tooLarge := false
	w.body = w.body[:0]
	for {
		if err := ctx.Err(); err != nil {
			r.err = fmt.Errorf("verify layout: %w", err)
			return r
		}
		n, err := f.Read(w.buf)
		if n > 0 {
			chunk := w.buf[:n]
			if h != nil {
				h.Write(chunk)
				w.v.hashed.Add(int64(n))
			}
			r.size += int64(n)
			if keep {
				if r.size > ocitypes.MaxManifestSize {
					keep, tooLarge = false, true
				} else {
					w.body = append(w.body, chunk...)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			r.err = fmt.Errorf("verify layout: read %s: %w", blobRel(j.desc.Digest), err)
			return r
		}
	}
	if h != nil {
		r.got = digest.NewDigest(j.desc.Digest.Algorithm(), h)
	}
	switch {
	case j.role == roleBlob:
	case tooLarge:
		r.problems = append(r.problems, w.problem(j, Unparsable, fmt.Sprintf(
			"%s of %d bytes is larger than the %d byte limit", roleName(j.role), r.size, ocitypes.MaxManifestSize)))
	default:
		r.children, r.problems = w.parse(j, w.body)
	}
	return r
}

// roleName names a role in messages.
func roleName(r verifyRole) string {
	switch r {
	case roleIndex:
		return "index"
	case roleManifest:
		return "manifest"
	case roleConfig:
		return "image config"
	}
	return "blob"
}

func (w *verifyWorker) problem(j verifyJob, kind ProblemKind, detail string) Problem {
	return Problem{Kind: kind, Digest: j.desc.Digest, Path: blobRel(j.desc.Digest), Detail: detail}
}

// parse checks body, the bytes of an index, manifest or image config, and returns the
// descriptors it references.
func (w *verifyWorker) parse(j verifyJob, body []byte) ([]ocitypes.Descriptor, []Problem) {
	mt := j.desc.MediaType
	if j.role == roleIndex || j.role == roleManifest {
		// What the body says it is, against what the descriptor says.
		if own, err := ocitypes.MediaTypeOf("", body); err == nil {
			ownRole := roleOf(own)
			_, contradicts := ocitypes.MediaTypeOf(mt, body)
			if ownRole != j.role || contradicts != nil {
				return nil, []Problem{w.problem(j, BadMediaType, fmt.Sprintf(
					"descriptor says %s, content is %s", clipText(mt), own))}
			}
		}
	}
	switch j.role {
	case roleIndex:
		idx, err := ocitypes.ParseIndex(mt, body)
		if err != nil {
			return nil, []Problem{w.problem(j, Unparsable, parseDetail(err))}
		}
		return idx.Manifests, nil
	case roleManifest:
		m, err := ocitypes.ParseManifest(mt, body)
		if err != nil {
			return nil, []Problem{w.problem(j, Unparsable, parseDetail(err))}
		}
		return append([]ocitypes.Descriptor{m.Config}, m.Layers...), nil
	case roleConfig:
		if _, err := ocitypes.ParseImageConfig(body); err != nil {
			return nil, []Problem{w.problem(j, Unparsable, parseDetail(err))}
		}
	}
	return nil, nil
}

// clipText shortens s for a message.
func clipText(s string) string { return text.Clip(s, 100) }
