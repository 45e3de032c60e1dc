package serve

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ocistream/ocistream/ocitypes"
)

// The distribution-spec error codes this server answers with.
const (
	codeBlobUnknown      = "BLOB_UNKNOWN"
	codeDigestInvalid    = "DIGEST_INVALID"
	codeManifestUnknown  = "MANIFEST_UNKNOWN"
	codeNameInvalid      = "NAME_INVALID"
	codeNameUnknown      = "NAME_UNKNOWN"
	codePaginationNumber = "PAGINATION_NUMBER_INVALID"
	codeUnauthorized     = "UNAUTHORIZED"
	codeUnsupported      = "UNSUPPORTED"
	codeUnknown          = "UNKNOWN" // what distribution answers a 500 with
)

// apiError is one error response: a status and the envelope's only entry.
type apiError struct {
	status  int
	code    string
	message string
}

// writeError answers with e in the distribution-spec envelope,
// {"errors":[{"code","message"}]}. A HEAD gets the status and headers only.
func writeError(w http.ResponseWriter, r *http.Request, e apiError) {
	body, _ := json.Marshal(ocitypes.ErrorEnvelope{Errors: []ocitypes.RegistryError{{Code: e.code, Message: e.message}}})
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// writeJSON answers 200 with v as JSON of the given content type.
func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, apiError{http.StatusInternalServerError, codeUnknown, err.Error()})
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
