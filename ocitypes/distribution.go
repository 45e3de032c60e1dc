package ocitypes

import (
	"encoding/json"
	"fmt"
	"strings"
)

// TagList is the body of GET /v2/<name>/tags/list.
type TagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// Catalog is the body of GET /v2/_catalog.
type Catalog struct {
	Repositories []string `json:"repositories"`
}

// ErrorEnvelope is the distribution-spec error body: {"errors":[{code,message,detail}]}.
type ErrorEnvelope struct {
	Errors []RegistryError `json:"errors"`
}

// RegistryError is one entry of an [ErrorEnvelope]. Code is upper case with underscores
// (MANIFEST_UNKNOWN, NAME_UNKNOWN, UNAUTHORIZED, DENIED, TOOMANYREQUESTS, ...); Message and
// Detail are optional.
type RegistryError struct {
	Code    string          `json:"code"`
	Message string          `json:"message,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// Error returns "code: message" in lower case code form, as the docker CLI prints it
// ("manifest unknown: manifest unknown" becomes "manifest unknown" when both say the same).
func (e RegistryError) Error() string {
	code := strings.ToLower(strings.ReplaceAll(e.Code, "_", " "))
	switch {
	case code == "":
		return e.Message
	case e.Message == "" || strings.EqualFold(e.Message, code):
		return code
	default:
		return code + ": " + e.Message
	}
}

// ParseTagList parses the body of GET /v2/<name>/tags/list. It must be a JSON object;
// unknown fields are ignored (GCR adds "child" and "manifest"), a missing or null "tags"
// gives an empty, non-nil list, and every tag must be a non-empty string. The body size
// is the caller's to bound; parsing costs one decode.
func ParseTagList(body []byte) (TagList, error) {
	if firstByte(body) != '{' {
		return TagList{}, fmt.Errorf("invalid tag list: body is not a json object")
	}
	var raw struct {
		Name json.RawMessage   `json:"name"`
		Tags []json.RawMessage `json:"tags"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return TagList{}, fmt.Errorf("invalid tag list: %w", err)
	}
	var tl TagList
	if len(raw.Name) > 0 && string(raw.Name) != "null" {
		if err := json.Unmarshal(raw.Name, &tl.Name); err != nil {
			return TagList{}, fmt.Errorf("invalid tag list: name is %s, not a string", clip(raw.Name))
		}
	}
	names, err := stringList(raw.Tags)
	if err != nil {
		return TagList{}, fmt.Errorf("invalid tag list: tags%w", err)
	}
	tl.Tags = names
	return tl, nil
}

// ParseCatalog parses the body of GET /v2/_catalog. It must be a JSON object; unknown
// fields are ignored, a missing or null "repositories" gives an empty, non-nil list, and
// every repository must be a non-empty string.
func ParseCatalog(body []byte) (Catalog, error) {
	if firstByte(body) != '{' {
		return Catalog{}, fmt.Errorf("invalid catalog: body is not a json object")
	}
	var raw struct {
		Repositories []json.RawMessage `json:"repositories"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Catalog{}, fmt.Errorf("invalid catalog: %w", err)
	}
	names, err := stringList(raw.Repositories)
	if err != nil {
		return Catalog{}, fmt.Errorf("invalid catalog: repositories%w", err)
	}
	return Catalog{Repositories: names}, nil
}

// stringList decodes each element as a non-empty string. Its errors start with the
// element index in brackets, for the caller to prefix with the list's name.
func stringList(raw []json.RawMessage) ([]string, error) {
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		var s string
		if string(r) == "null" || json.Unmarshal(r, &s) != nil {
			return nil, fmt.Errorf("[%d] is %s, not a string", i, clip(r))
		}
		if s == "" {
			return nil, fmt.Errorf("[%d] is empty", i)
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseErrorEnvelope returns the errors of a distribution-spec error body,
// {"errors":[{"code":...,"message":...,"detail":...}]}, and true; or nil and false when
// body is not such an envelope (ECR's "Not Authorized", Quay's "true", the Docker Hub
// auth server's {"details":"..."}, an HTML or XML page). An entry counts only when its
// code is upper-case letters and underscores; a message that is not a string is
// dropped, detail is kept as raw JSON (a JSON null becomes nil). The result is false
// when no entry counts.
func ParseErrorEnvelope(body []byte) ([]RegistryError, bool) {
	if firstByte(body) != '{' {
		return nil, false
	}
	var env struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil, false
	}
	var out []RegistryError
	for _, raw := range env.Errors {
		var e struct {
			Code    string          `json:"code"`
			Message json.RawMessage `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		}
		if firstByte(raw) != '{' || json.Unmarshal(raw, &e) != nil || !validErrorCode(e.Code) {
			continue
		}
		re := RegistryError{Code: e.Code}
		if len(e.Message) > 0 {
			_ = json.Unmarshal(e.Message, &re.Message) // a non-string message is dropped
		}
		if len(e.Detail) > 0 && string(e.Detail) != "null" {
			re.Detail = e.Detail
		}
		out = append(out, re)
	}
	return out, len(out) > 0
}

// validErrorCode reports whether code matches [A-Z_]+.
func validErrorCode(code string) bool {
	if code == "" {
		return false
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}
