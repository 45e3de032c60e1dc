package ocistream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/ocitypes"
	"github.com/ocistream/ocistream/ref"
)

// fakePush is a registry that takes uploads, with the quirks real registries show on
// push and that the reference registry does not: the forms of Location, a query that
// must come back byte for byte, a Location on another origin, PATCH refused or capped.
type fakePush struct {
	t *testing.T

	// location is how upload Locations are written: "absolute-path" (the default),
	// "relative" (relative to the request path), "absolute", "query" (an _state
	// token that must come back as is), "other" (on another origin, presigned).
	location string
	// patch is what the registry does with PATCH: "" accepts it; "refuse" answers
	// 405 (the upload needs one PUT); "cap" answers 416 to a body over 4 MiB
	// without Content-Range (GHCR) and 201 with a stale Range to chunks (ECR);
	// "stall" reads 1 KiB of the body then nothing more; "emptyput" answers 500 to a
	// closing PUT without a body after a PATCH (ECR in 2022).
	patch string
	// mount is the answer to a mount of a blob the registry has: 201 or 202.
	mount int
	// user and pass, when set, are required as Basic credentials on the main origin.
	user, pass string
	// deny answers 403 DENIED to every POST and PUT.
	deny bool
	// rejectMediaType answers 400 MANIFEST_INVALID to a manifest PUT of that type.
	rejectMediaType string

	main, other *httptest.Server
	closed      chan struct{}

	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[string]fakeManifest
	sessions  map[string][]byte
	nextID    int
	log       []string // "METHOD path?query content-range"
	otherAuth []string // Authorization headers the other origin received
}

type fakeManifest struct {
	mediaType string
	body      []byte
}

const fakeState = "a%2Bb%3D%3D+c"

func newFakePush(t *testing.T, configure func(*fakePush)) *fakePush {
	f := &fakePush{t: t, blobs: map[digest.Digest][]byte{}, manifests: map[string]fakeManifest{}, sessions: map[string][]byte{}}
	if configure != nil {
		configure(f)
	}
	f.main = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, false) }))
	f.other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, true) }))
	f.closed = make(chan struct{})
	t.Cleanup(f.main.Close)
	t.Cleanup(f.other.Close)
	t.Cleanup(func() { close(f.closed) }) // first: release stalled handlers
	return f
}

func (f *fakePush) host() string { return f.main.Listener.Addr().String() }

func (f *fakePush) client(t *testing.T, extra ...Option) *Client {
	opts := []Option{WithPlainHTTP(f.host(), f.other.Listener.Addr().String()),
		WithRetryPolicy(RetryPolicy{MaxRetries: 1, MinWait: 1, MaxWait: 1})}
	opts = append(opts, extra...)
	if f.user != "" {
		opts = append(opts, WithCredentials(StaticCredentials(f.host(), Credential{Username: f.user, Password: f.pass})))
	}
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakePush) repo(t *testing.T, c *Client, name string) *Repository {
	r, err := c.Repository(f.host() + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fakePush) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func fakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

func (f *fakePush) uploadLocation(name, id string) string {
	p := "/v2/" + name + "/blobs/uploads/" + id
	switch f.location {
	case "relative":
		return id
	case "absolute":
		return f.main.URL + p
	case "query":
		return p + "?_state=" + fakeState
	case "other":
		return f.other.URL + p + "?X-Amz-Signature=s3cret&id=" + id
	}
	return p
}

func (f *fakePush) serve(w http.ResponseWriter, r *http.Request, other bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Range")))
	if other {
		f.otherAuth = append(f.otherAuth, r.Header.Get("Authorization"))
	} else if f.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			fakeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	if f.deny && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		fakeError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v2/")
	switch {
	case strings.Contains(path, "/blobs/uploads/"):
		name, id, _ := strings.Cut(path, "/blobs/uploads/")
		f.serveUpload(w, r, name, id, other)
	case strings.Contains(path, "/blobs/"):
		_, dg, _ := strings.Cut(path, "/blobs/")
		b, ok := f.blobs[digest.Digest(dg)]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("Docker-Content-Digest", dg)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	case strings.Contains(path, "/manifests/"):
		name, reference, _ := strings.Cut(path, "/manifests/")
		key := name + "@" + reference
		switch r.Method {
		case http.MethodPut:
			body, _ := io.ReadAll(r.Body)
			mt := r.Header.Get("Content-Type")
			if mt == f.rejectMediaType {
				fakeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest invalid")
				return
			}
			f.manifests[key] = fakeManifest{mediaType: mt, body: body}
			f.manifests[name+"@"+digest.FromBytes(body).String()] = fakeManifest{mediaType: mt, body: body}
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
			w.WriteHeader(http.StatusCreated)
		default:
			m, ok := f.manifests[key]
			if !ok {
				fakeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
				return
			}
			w.Header().Set("Content-Type", m.mediaType)
			w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.body).String())
			if r.Method == http.MethodGet {
				w.Write(m.body)
			}
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakePush) serveUpload(w http.ResponseWriter, r *http.Request, name, id string, other bool) {
	if r.Method == http.MethodPost {
		q := r.URL.Query()
		if m := q.Get("mount"); m != "" && q.Get("from") != "" {
			if _, ok := f.blobs[digest.Digest(m)]; ok && f.mount == http.StatusCreated {
				w.Header().Set("Docker-Content-Digest", m)
				w.Header().Set("Location", "/v2/"+name+"/blobs/"+m)
				w.WriteHeader(http.StatusCreated)
				return
			}
		}
		f.nextID++
		id := "u" + strconv.Itoa(f.nextID)
		f.sessions[id] = nil
		w.Header().Set("Location", f.uploadLocation(name, id))
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if f.location == "other" {
		id = r.URL.Query().Get("id")
		if !other || r.URL.Query().Get("X-Amz-Signature") != "s3cret" {
			fakeError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "not on the presigned origin")
			return
		}
	}
	if f.location == "query" && !strings.HasPrefix(r.URL.RawQuery, "_state="+fakeState) {
		fakeError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "state lost: "+r.URL.RawQuery)
		return
	}
	data, ok := f.sessions[id]
	if !ok {
		fakeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
		return
	}
	cr := r.Header.Get("Content-Range")
	switch r.Method {
	case http.MethodDelete:
		delete(f.sessions, id)
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPatch:
		switch {
		case f.patch == "refuse":
			fakeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "chunked uploads are not supported")
			return
		case f.patch == "stall":
			io.CopyN(io.Discard, r.Body, 1024)
			f.mu.Unlock() // other requests go on meanwhile
			defer f.mu.Lock()
			select {
			case <-r.Context().Done():
			case <-f.closed:
			}
			return
		case f.patch == "cap" && cr == "" && r.ContentLength > chunkSize:
			fakeError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "the request body is too large and exceeds the maximum permissible limit of 4.00MiB")
			return
		}
	}
	if cr != "" {
		start, _, _ := strings.Cut(cr, "-")
		if n, err := strconv.Atoi(start); err != nil || n != len(data) || strings.HasPrefix(cr, "bytes") {
			fakeError(w, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID", "bad range "+cr)
			return
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if f.patch == "emptyput" && r.Method == http.MethodPut && len(body) == 0 && len(data) > 0 {
		fakeError(w, http.StatusInternalServerError, "UNKNOWN", "internal error")
		return
	}
	data = append(data, body...)
	f.sessions[id] = data
	switch r.Method {
	case http.MethodPatch:
		w.Header().Set("Location", f.uploadLocation(name, id))
		if f.patch == "cap" {
			w.Header().Set("Range", "0-"+strconv.Itoa(chunkSize-1)) // ECR: stale
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Range", "0-"+strconv.Itoa(len(data)-1))
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPut:
		want := digest.Digest(r.URL.Query().Get("digest"))
		if digest.FromBytes(data) != want {
			fakeError(w, http.StatusBadRequest, "DIGEST_INVALID", "digest did not match")
			return
		}
		delete(f.sessions, id)
		f.blobs[want] = data
		w.Header().Set("Docker-Content-Digest", want.String())
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *fakePush) blob(d digest.Digest) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[d]
	return b, ok
}

func testBlob(size int) ([]byte, ocitypes.Descriptor) {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b, ocitypes.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(size)}
}

// upload pushes data as d through the Destination methods, in writes of 100 KiB.
func upload(ctx context.Context, dst Destination, d ocitypes.Descriptor, data []byte) error {
	w, err := dst.OpenBlob(ctx, d)
	if err != nil {
		return err
	}
	defer w.Close()
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 100<<10)
		if _, err := w.Write(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return w.Commit()
}

func TestPushLocation(t *testing.T) {
	for _, loc := range []string{"absolute-path", "relative", "absolute", "query", "other"} {
		for _, size := range []int{0, 1000, monolithicMax + 1, 3 << 20} {
			t.Run(fmt.Sprintf("%s/%d", loc, size), func(t *testing.T) {
				f := newFakePush(t, func(f *fakePush) { f.location, f.user, f.pass = loc, "u", "p" })
				c := f.client(t)
				data, d := testBlob(size)
				if err := upload(t.Context(), f.repo(t, c, "a/b"), d, data); err != nil {
					t.Fatal(err)
				}
				if got, ok := f.blob(d.Digest); !ok || !bytes.Equal(got, data) {
					t.Fatalf("the registry holds %d bytes (present %v), want %d", len(got), ok, len(data))
				}
				for _, a := range f.otherAuth {
					if a != "" {
						t.Errorf("the upload origin received credentials %q", a)
					}
				}
			})
		}
	}
}

// A registry that refuses the streaming PATCH fails one attempt with an error a copy
// retries; the next attempt uses the form the registry takes.
func TestPushFallback(t *testing.T) {
	for _, tc := range []struct {
		patch string
		want  uploadMode
	}{
		{"refuse", uploadPut},
		{"cap", uploadChunked},
		{"emptyput", uploadChunked},
	} {
		t.Run(tc.patch, func(t *testing.T) {
			f := newFakePush(t, func(f *fakePush) { f.patch = tc.patch })
			c := f.client(t)
			r := f.repo(t, c, "app")
			data, d := testBlob(9<<20 + 123)
			err := upload(t.Context(), r, d, data)
			if err == nil || !retryableUpload(err) {
				t.Fatalf("first attempt: %v, want a retryable error", err)
			}
			if !strings.Contains(err.Error(), "push to "+f.host()+"/app") {
				t.Errorf("error %q does not name the destination", err)
			}
			if got := c.pushes.mode(f.host()); got != tc.want {
				t.Fatalf("mode %s, want %s", got, tc.want)
			}
			if err := upload(t.Context(), r, d, data); err != nil {
				t.Fatal(err)
			}
			if got, ok := f.blob(d.Digest); !ok || !bytes.Equal(got, data) {
				t.Fatalf("the registry holds %d bytes, want %d", len(got), len(data))
			}
			if tc.patch == "cap" {
				var ranges []string
				for _, l := range f.requests() {
					if m, _, _ := strings.Cut(l, " "); (m == "PATCH" || m == "PUT") && strings.Count(l, " ") == 2 {
						ranges = append(ranges, l[strings.LastIndex(l, " ")+1:])
					}
				}
				want := []string{"0-4194303", "4194304-8388607", "8388608-9437306"}
				if fmt.Sprint(ranges) != fmt.Sprint(want) {
					t.Errorf("Content-Ranges %v, want %v (the last chunk in the PUT)", ranges, want)
				}
			}
		})
	}
}

// Wrong bytes are never committed, and the session is abandoned.
func TestPushWrongBytes(t *testing.T) {
	for _, size := range []int{1000, 3 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			f := newFakePush(t, nil)
			r := f.repo(t, f.client(t), "app")
			data, d := testBlob(size)
			bad := bytes.Clone(data)
			bad[len(bad)-1] ^= 1
			err := upload(t.Context(), r, d, bad)
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("got %v, want ErrDigestMismatch", err)
			}
			if _, ok := f.blob(d.Digest); ok {
				t.Fatal("the wrong blob was committed")
			}
			for _, l := range f.requests() {
				if strings.HasPrefix(l, "PUT ") {
					t.Errorf("a PUT was sent: %s", l)
				}
			}
			if got := f.requests(); !strings.HasPrefix(got[len(got)-1], "DELETE ") {
				t.Errorf("the session was not cancelled: %v", got)
			}
			err = upload(t.Context(), r, d, data[:size-1])
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("short blob: got %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestPushMount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mount   int
		present bool
		from    string
		want    error
		delete  bool
	}{
		{name: "mounted", mount: http.StatusCreated, present: true, from: "src", want: ErrAlreadyExists},
		{name: "declined", mount: http.StatusAccepted, present: true, from: "src", delete: true},
		{name: "unknown blob", mount: http.StatusCreated, from: "src", delete: true},
		{name: "other registry", mount: http.StatusCreated, present: true, from: "other.example/src"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePush(t, func(f *fakePush) { f.mount = tc.mount })
			c := f.client(t)
			data, d := testBlob(100)
			if tc.present {
				f.blobs[d.Digest] = data
			}
			from := f.repo(t, c, "src")
			if strings.Contains(tc.from, ".") {
				var err error
				if from, err = c.Repository(tc.from); err != nil {
					t.Fatal(err)
				}
			}
			err := f.repo(t, c, "dst").Mount(t.Context(), d, from)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Mount: %v, want %v", err, tc.want)
			}
			log := f.requests()
			if tc.from != "src" {
				if len(log) != 0 {
					t.Fatalf("requests to mount from another registry: %v", log)
				}
				return
			}
			if want := "POST /v2/dst/blobs/uploads/?mount=" + url.QueryEscape(d.Digest.String()) + "&from=src"; log[0] != want {
				t.Errorf("request %q, want %q", log[0], want)
			}
			if gotDelete := strings.HasPrefix(log[len(log)-1], "DELETE "); gotDelete != tc.delete {
				t.Errorf("requests %v: DELETE %v, want %v", log, gotDelete, tc.delete)
			}
		})
	}
}

func TestPushRefusals(t *testing.T) {
	t.Run("denied", func(t *testing.T) {
		f := newFakePush(t, func(f *fakePush) { f.deny = true })
		data, d := testBlob(10)
		err := upload(t.Context(), f.repo(t, f.client(t), "x"), d, data)
		want := "push to " + f.host() + "/x: denied (scope repository:x:pull,push): requested access to the resource is denied"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		var re *ResponseError
		if !errors.As(err, &re) || !errors.Is(err, ErrDenied) {
			t.Fatalf("%v is not a *ResponseError matching ErrDenied", err)
		}
	})
	t.Run("manifest media type", func(t *testing.T) {
		mt := ocitypes.MediaTypeOCIManifest
		f := newFakePush(t, func(f *fakePush) { f.rejectMediaType = mt })
		body := []byte(`{"schemaVersion":2,"mediaType":"` + mt + `"}`)
		d := ocitypes.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body))}
		err := upload(t.Context(), f.repo(t, f.client(t), "x"), d, body)
		want := fmt.Sprintf("push to %s/x: manifest %s (%s) refused: PUT 400 Bad Request: manifest invalid", f.host(), d.Digest, mt)
		if err == nil || err.Error() != want {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		var re *ResponseError
		if !errors.As(err, &re) || re.Code() != "MANIFEST_INVALID" {
			t.Fatalf("%v does not unwrap to the registry's response", err)
		}
	})
}

// Tag re-sends the root's bytes without fetching them, and does nothing when the tag
// already points at the root.
func TestPushTag(t *testing.T) {
	f := newFakePush(t, nil)
	c := f.client(t)
	mt := ocitypes.MediaTypeOCIIndex
	body := []byte(`{"schemaVersion":2,"mediaType":"` + mt + `","manifests":[]}`)
	d := ocitypes.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body))}
	r := f.repo(t, c, "app")
	if err := upload(t.Context(), r, d, body); err != nil {
		t.Fatal(err)
	}
	if err := upload(t.Context(), r, d, body); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("second push: %v, want ErrAlreadyExists", err)
	}
	// The handle's tag wins; a handle without one takes name's tag; with neither
	// there is nothing to tag.
	tagged, _ := c.Repository(f.host() + "/app:v2")
	repoOnly, _ := ref.ParseRepository(f.host() + "/app")
	untagged := c.RepositoryOf(repoOnly)
	name, _ := ref.Parse(f.host() + "/src:v1")
	digestOnly, _ := ref.Parse(f.host() + "/src@" + d.Digest.String())
	for _, step := range []struct {
		dst  *Repository
		name ref.Reference
	}{{tagged, name}, {untagged, name}, {untagged, name}, {untagged, digestOnly}} {
		if err := step.dst.Tag(t.Context(), step.name, d); err != nil {
			t.Fatal(err)
		}
	}
	var puts, gets int
	for _, l := range f.requests() {
		puts += strings.Count(l, "PUT /v2/app/manifests/v")
		gets += strings.Count(l, "GET /v2/app/manifests/")
	}
	if puts != 2 || gets != 0 {
		t.Errorf("tag PUTs %d (want 2), manifest GETs %d (want 0): %v", puts, gets, f.requests())
	}
	for _, tag := range []string{"v1", "v2"} {
		if m := f.manifests["app@"+tag]; !bytes.Equal(m.body, body) || m.mediaType != mt {
			t.Errorf("tag %s holds %q (%s)", tag, m.body, m.mediaType)
		}
	}
}

// Close without Commit cancels the session; a cancelled context still cancels it.
func TestPushCloseCancels(t *testing.T) {
	f := newFakePush(t, nil)
	data, d := testBlob(3 << 20)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := f.repo(t, f.client(t), "app").OpenBlob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:1<<20]); err != nil {
		t.Fatal(err)
	}
	cancel()
	w.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sessions) != 0 {
		t.Errorf("sessions left open: %v (requests %v)", f.sessions, f.log)
	}
}

func TestRetryableUpload(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{&ResponseError{StatusCode: http.StatusServiceUnavailable}, true},
		{&ResponseError{StatusCode: http.StatusTooManyRequests}, true},
		{&modeSwitchError{err: &ResponseError{StatusCode: 416}, mode: uploadChunked}, true},
		{&ResponseError{StatusCode: http.StatusForbidden}, false},
		{&ResponseError{StatusCode: http.StatusBadRequest}, false},
		{fmt.Errorf("x: %w", ErrDigestMismatch), false},
		{context.Canceled, false},
		{errors.New("other"), false},
	} {
		if got := retryableUpload(tc.err); got != tc.want {
			t.Errorf("retryableUpload(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A registry that stops taking the body is cut off after the read timeout; the blob
// fails as a lost connection, which a copy retries.
func TestPushStall(t *testing.T) {
	f := newFakePush(t, func(f *fakePush) { f.patch = "stall" })
	data, d := testBlob(3 << 20)
	err := upload(t.Context(), f.repo(t, f.client(t, WithReadTimeout(100*time.Millisecond)), "app"), d, data)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !retryableUpload(err) || !strings.Contains(err.Error(), "made no progress for 100ms") {
		t.Fatalf("got %v, want a stalled upload", err)
	}
}

func TestUploadLocation(t *testing.T) {
	for _, tc := range []struct {
		request, location, want string
		err                     error
	}{
		{"https://r.example/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/1?_state=x%3D", "https://r.example/v2/a/blobs/uploads/1?_state=x%3D", nil},
		{"https://r.example/v2/a/blobs/uploads/", "1?_state=a+b", "https://r.example/v2/a/blobs/uploads/1?_state=a+b", nil},
		{"https://r.example/v2/a/blobs/uploads/", "https://r.example/v2/a/blobs/uploads/2", "https://r.example/v2/a/blobs/uploads/2", nil},
		{"https://r.example/v2/a/blobs/uploads/", "https://203.0.113.9/bucket/up?X-Amz-Signature=s", "https://203.0.113.9/bucket/up?X-Amz-Signature=s", nil},
		{"https://r.example/v2/a/blobs/uploads/", "http://r.example/v2/a/blobs/uploads/1", "", ErrCrossOrigin},
		{"https://203.0.113.5/v2/a/blobs/uploads/", "https://127.0.0.1/v2/a/blobs/uploads/1", "", ErrCrossOrigin},
		{"https://203.0.113.5/v2/a/blobs/uploads/", "https://10.1.2.3:5000/u", "", ErrCrossOrigin},
		{"http://127.0.0.1:5000/v2/a/blobs/uploads/", "http://127.0.0.1:9000/u", "http://127.0.0.1:9000/u", nil},
		{"https://r.example/v2/a/blobs/uploads/", "", "", nil},
		{"https://r.example/v2/a/blobs/uploads/", "ftp://r.example/x", "", nil},
	} {
		req, _ := http.NewRequest(http.MethodPost, tc.request, nil)
		resp := &http.Response{Request: req, StatusCode: http.StatusAccepted, Header: http.Header{}}
		if tc.location != "" {
			resp.Header.Set("Location", tc.location)
		}
		u, err := uploadLocation(t.Context(), resp)
		switch {
		case tc.want != "" && (err != nil || u.String() != tc.want):
			t.Errorf("%s → %q: %v, %v; want %s", tc.request, tc.location, u, err, tc.want)
		case tc.want == "" && err == nil:
			t.Errorf("%s → %q: %v, want an error", tc.request, tc.location, u)
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%s → %q: %v, want %v", tc.request, tc.location, err, tc.err)
		}
	}
}

func FuzzUploadLocation(f *testing.F) {
	for _, s := range []string{"/v2/a/blobs/uploads/1?_state=x", "1", "https://203.0.113.1/x", "http://127.0.0.1/x", "//evil/x", "%zz", "https://[::1]:80/"} {
		f.Add(s)
	}
	req, _ := http.NewRequest(http.MethodPost, "https://127.0.0.1:5000/v2/a/blobs/uploads/", nil)
	f.Fuzz(func(t *testing.T, loc string) {
		if u, err := req.URL.Parse(loc); err == nil && u.Host != req.URL.Host {
			if _, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err != nil && u.Hostname() != "localhost" {
				t.Skip("a host name would be resolved: no network in tests")
			}
		}
		resp := &http.Response{Request: req, Header: http.Header{"Location": {loc}}}
		u, err := uploadLocation(context.Background(), resp)
		if err != nil {
			return
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			t.Fatalf("%q gave %v", loc, u)
		}
		if u.Scheme == "http" {
			t.Fatalf("%q downgraded to %v", loc, u)
		}
	})
}

// A registry that sends a blob HEAD on to storage that refuses HEAD (S3 URLs presigned
// for GET) has the blob.
func TestPushExistsRedirect(t *testing.T) {
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer storage.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+digest.FromString("here").String()) {
			http.Redirect(w, r, storage.URL+"/bucket/blob?X-Amz-Signature=x", http.StatusTemporaryRedirect)
			return
		}
		fakeError(w, http.StatusForbidden, "DENIED", "no")
	}))
	defer reg.Close()
	host := reg.Listener.Addr().String()
	c, err := New(WithPlainHTTP(host, storage.Listener.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Repository(host + "/app")
	here := ocitypes.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromString("here"), Size: 4}
	if ok, err := r.Exists(t.Context(), here); !ok || err != nil {
		t.Errorf("Exists(redirected) = %v, %v", ok, err)
	}
	other := ocitypes.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromString("other"), Size: 5}
	if ok, err := r.Exists(t.Context(), other); ok || !errors.Is(err, ErrDenied) {
		t.Errorf("Exists(denied) = %v, %v", ok, err)
	}
}
