package fakeregistry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ocistream/ocistream/ocitypes"
)

// upload is a blob upload in progress.
type upload struct {
	repo string
	buf  bytes.Buffer
}

// serveUpload answers the blob upload endpoints of the distribution spec: POST
// (start, monolithic with ?digest=, or mount with ?mount=&from=), PATCH (append a
// chunk, Content-Range checked when sent), PUT ?digest= (the last bytes, then the
// digest is verified and the blob linked), GET (the upload's progress). Upload bodies
// are held in memory.
func (r *Registry) serveUpload(w *recorder, req *http.Request, name, id string) {
	q := req.URL.Query()
	if req.Method == http.MethodPost && id == "" {
		if m := q.Get("mount"); m != "" {
			d := digest.Digest(m)
			r.mu.Lock()
			from := r.repos[q.Get("from")]
			ok := from != nil && from.blobs[d]
			if ok {
				r.repo(name).blobs[d] = true
			}
			r.mu.Unlock()
			if ok {
				blobCreated(w, name, d)
				return
			}
		}
		if d := q.Get("digest"); d != "" {
			r.commitUpload(w, req, name, &upload{repo: name}, d, "")
			return
		}
		r.mu.Lock()
		r.uploadID++
		id = strconv.Itoa(r.uploadID)
		r.uploads[id] = &upload{repo: name}
		r.mu.Unlock()
		uploadAccepted(w, name, id, 0)
		return
	}
	r.mu.Lock()
	u := r.uploads[id]
	r.mu.Unlock()
	if u == nil || u.repo != name {
		writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", id)
		return
	}
	switch req.Method {
	case http.MethodGet:
		w.Header().Set("Range", rangeHeader(int64(u.buf.Len())))
		w.Header().Set("Docker-Upload-UUID", id)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		if !appendChunk(w, req, u) {
			return
		}
		uploadAccepted(w, name, id, int64(u.buf.Len()))
	case http.MethodPut:
		r.commitUpload(w, req, name, u, q.Get("digest"), id)
	case http.MethodDelete:
		r.mu.Lock()
		delete(r.uploads, id)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "unsupported method", req.Method)
	}
}

// appendChunk appends the request body to u, refusing a Content-Range that does not
// start where the upload stands.
func appendChunk(w http.ResponseWriter, req *http.Request, u *upload) bool {
	if cr := req.Header.Get("Content-Range"); cr != "" {
		first, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes="), "-")
		if n, err := strconv.ParseInt(first, 10, 64); err != nil || n != int64(u.buf.Len()) {
			w.Header().Set("Range", rangeHeader(int64(u.buf.Len())))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "chunk out of order", cr)
			return false
		}
	}
	if _, err := u.buf.ReadFrom(req.Body); err != nil {
		writeError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "reading the chunk: "+err.Error(), nil)
		return false
	}
	return true
}

// commitUpload appends the request body to u, verifies it against want and links the
// blob into repository name.
func (r *Registry) commitUpload(w http.ResponseWriter, req *http.Request, name string, u *upload, want, id string) {
	d, err := digest.Parse(want)
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "provided digest did not match uploaded content", want)
		return
	}
	if !appendChunk(w, req, u) {
		return
	}
	if digest.FromBytes(u.buf.Bytes()) != d {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "provided digest did not match uploaded content", want)
		return
	}
	r.mu.Lock()
	r.blobs[d] = Bytes(bytes.Clone(u.buf.Bytes()))
	r.repo(name).blobs[d] = true
	delete(r.uploads, id)
	r.mu.Unlock()
	blobCreated(w, name, d)
}

func rangeHeader(n int64) string {
	return "0-" + strconv.FormatInt(max(n-1, 0), 10)
}

func uploadAccepted(w http.ResponseWriter, name, id string, n int64) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", rangeHeader(n))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// putManifest stores a pushed manifest under its digest and, when reference is a tag,
// the tag. Like distribution, it refuses a manifest whose config, layers (foreign
// ones aside) or child manifests the repository does not hold, and a digest reference
// that does not match the body.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, name, reference string) {
	body, err := io.ReadAll(io.LimitReader(req.Body, ocitypes.MaxManifestSize+1))
	if err != nil || len(body) > ocitypes.MaxManifestSize {
		writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest too large or unreadable", nil)
		return
	}
	d := digest.FromBytes(body)
	if want, err := digest.Parse(reference); err == nil && want != d {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "provided digest did not match uploaded content", reference)
		return
	}
	var doc struct {
		Config    *ocitypes.Descriptor  `json:"config"`
		Layers    []ocitypes.Descriptor `json:"layers"`
		Manifests []ocitypes.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest invalid", err.Error())
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rp := r.repo(name)
	var missing []digest.Digest
	if doc.Config != nil && !rp.blobs[doc.Config.Digest] {
		missing = append(missing, doc.Config.Digest)
	}
	for _, l := range doc.Layers {
		if !rp.blobs[l.Digest] && !ocitypes.IsForeignLayer(l.MediaType) {
			missing = append(missing, l.Digest)
		}
	}
	for _, m := range doc.Manifests {
		if _, ok := rp.manifests[m.Digest]; !ok {
			missing = append(missing, m.Digest)
		}
	}
	if len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", missing[0])
		return
	}
	rp.manifests[d] = manifest{mediaType: req.Header.Get("Content-Type"), body: Bytes(body)}
	if _, err := digest.Parse(reference); err != nil {
		rp.tags[reference] = d
	}
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
