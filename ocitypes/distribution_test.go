package ocitypes

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseTagList(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		file        string
		want        TagList
		errContains string
	}{
		{name: "distribution", file: "distribution-tags.json",
			want: TagList{Name: "library/ubuntu", Tags: []string{"18.04", "20.04", "22.04", "24.04", "latest"}}},
		{name: "gcr extra fields", file: "gcr-tags.json",
			want: TagList{Name: "distroless/static", Tags: []string{"3.11", "latest"}}},
		{name: "tags null", file: "tags-null.json", want: TagList{Name: "empty/repo", Tags: []string{}}},
		{name: "tags missing", body: `{"name":"a/b"}`, want: TagList{Name: "a/b", Tags: []string{}}},
		{name: "name missing", body: `{"tags":["v1"]}`, want: TagList{Tags: []string{"v1"}}},
		{name: "trailing newline", body: "{\"name\":\"a\",\"tags\":[]}\n", want: TagList{Name: "a", Tags: []string{}}},
		{name: "not an object", body: `["v1"]`, errContains: "invalid tag list: body is not a json object"},
		{name: "plain text", body: `Not Authorized`, errContains: "not a json object"},
		{name: "tags not a list", body: `{"tags":"v1"}`, errContains: "invalid tag list"},
		{name: "null tag", body: `{"tags":["v1",null]}`, errContains: "invalid tag list: tags[1] is null, not a string"},
		{name: "numeric tag", body: `{"tags":[1]}`, errContains: "tags[0] is 1, not a string"},
		{name: "empty tag", body: `{"tags":["v1",""]}`, errContains: "tags[1] is empty"},
		{name: "name not a string", body: `{"name":5,"tags":[]}`, errContains: "name is 5, not a string"},
		{name: "trailing garbage", body: `{"tags":[]}]`, errContains: "invalid tag list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = fixture(t, tt.file)
			}
			got, err := ParseTagList(body)
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("ParseTagList(%s) error = %v, want it to contain %q", body, err, tt.errContains)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseTagList(%s) = %#v, %v, want %#v", body, got, err, tt.want)
			}
		})
	}
}

func TestParseCatalog(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		file        string
		want        []string
		errContains string
	}{
		{name: "distribution", file: "catalog.json", want: []string{"library/alpine", "library/ubuntu", "team/app"}},
		{name: "empty", body: `{"repositories":[]}`, want: []string{}},
		{name: "null", body: `{"repositories":null}`, want: []string{}},
		{name: "missing", body: `{}`, want: []string{}},
		{name: "not an object", body: `true`, errContains: "invalid catalog: body is not a json object"},
		{name: "bad entry", body: `{"repositories":["a",{}]}`, errContains: "invalid catalog: repositories[1] is {}, not a string"},
		{name: "malformed", body: `{"repositories":[`, errContains: "invalid catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = fixture(t, tt.file)
			}
			got, err := ParseCatalog(body)
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("ParseCatalog(%s) error = %v, want it to contain %q", body, err, tt.errContains)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got.Repositories, tt.want) {
				t.Errorf("ParseCatalog(%s) = %#v, %v, want %#v", body, got, err, tt.want)
			}
		})
	}
}

func TestParseErrorEnvelope(t *testing.T) {
	type entry struct{ code, message, detail string }
	tests := []struct {
		name string
		file string
		body string
		want []entry // nil: not an envelope
	}{
		{name: "distribution manifest unknown", file: "errors/distribution-manifest-unknown.json",
			want: []entry{{"MANIFEST_UNKNOWN", "manifest unknown", `{"Tag":"nope"}`}}},
		{name: "distribution manifest unknown revision", file: "errors/distribution-manifest-unknown-revision.json",
			want: []entry{{"MANIFEST_UNKNOWN", "manifest unknown", `{"Name":"library/alpine","Revision":"sha256:0d5c6d6d8f1d8b1f1e4f8b6a9b7b0d6d4b5f7c1e2a3b4c5d6e7f8091a2b3c4d5"}`}}},
		{name: "distribution name unknown", file: "errors/distribution-name-unknown.json",
			want: []entry{{"NAME_UNKNOWN", "repository name not known to registry", `{"name":"foo/bar"}`}}},
		{name: "distribution blob unknown", file: "errors/distribution-blob-unknown.json",
			want: []entry{{"BLOB_UNKNOWN", "blob unknown to registry", `"sha256:0d5c6d6d8f1d8b1f1e4f8b6a9b7b0d6d4b5f7c1e2a3b4c5d6e7f8091a2b3c4d5"`}}},
		{name: "distribution unauthorized with null detail", file: "errors/distribution-unauthorized.json",
			want: []entry{{"UNAUTHORIZED", "authentication required", ""}}},
		{name: "hub repository access with Class", file: "errors/hub-unauthorized-repository.json",
			want: []entry{{"UNAUTHORIZED", "authentication required",
				`[{"Type":"repository","Class":"","Name":"samalba/my-app","Action":"pull"},{"Type":"repository","Class":"","Name":"samalba/my-app","Action":"push"}]`}}},
		{name: "hub catalog", file: "errors/hub-unauthorized-catalog.json",
			want: []entry{{"UNAUTHORIZED", "authentication required", `[{"Type":"registry","Class":"","Name":"catalog","Action":"*"}]`}}},
		{name: "acr without Class", file: "errors/acr-unauthorized.json",
			want: []entry{{"UNAUTHORIZED", "authentication required, visit https://aka.ms/acr/authorization for more information.",
				`[{"Type":"repository","Name":"hello-world","Action":"pull"}]`}}},
		{name: "hub rate limit", file: "errors/hub-toomanyrequests.json",
			want: []entry{{"TOOMANYREQUESTS", "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limits", ""}}},
		{name: "ecr plain text", file: "errors/ecr-not-authorized.txt"},
		{name: "hub auth details", file: "errors/hub-details.json"},
		{name: "quay true", file: "errors/quay-true.json"},
		{name: "s3 xml", file: "errors/s3-access-denied.xml"},
		{name: "empty body", body: ""},
		{name: "empty errors", body: `{"errors":[]}`},
		{name: "errors not a list", body: `{"errors":"boom"}`},
		{name: "lower-case code does not count", body: `{"errors":[{"code":"manifest_unknown","message":"x"}]}`},
		{name: "code with digits does not count", body: `{"errors":[{"code":"E404"}]}`},
		{name: "bad entries are dropped", body: `{"errors":[{"code":""},"x",{"code":"DENIED","message":"requested access to the resource is denied"},{"code":"NAME_UNKNOWN","message":{"text":"x"}}]}`,
			want: []entry{{"DENIED", "requested access to the resource is denied", ""}, {"NAME_UNKNOWN", "", ""}}},
		{name: "several errors", body: `{"errors":[{"code":"UNAUTHORIZED","message":"a"},{"code":"DENIED","message":"b"}]}`,
			want: []entry{{"UNAUTHORIZED", "a", ""}, {"DENIED", "b", ""}}},
		{name: "trailing garbage", body: `{"errors":[{"code":"DENIED"}]}x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = fixture(t, tt.file)
			}
			got, ok := ParseErrorEnvelope(body)
			if ok != (tt.want != nil) {
				t.Fatalf("ParseErrorEnvelope(%s) = %+v, %v, want ok %v", body, got, ok, tt.want != nil)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseErrorEnvelope(%s) = %d errors, want %d", body, len(got), len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Code != w.code || g.Message != w.message || string(g.Detail) != w.detail {
					t.Errorf("ParseErrorEnvelope(%s)[%d] = {%s %q %s}, want {%s %q %s}", body, i, g.Code, g.Message, g.Detail, w.code, w.message, w.detail)
				}
			}
		})
	}
}

func TestRegistryErrorError(t *testing.T) {
	tests := []struct {
		e    RegistryError
		want string
	}{
		{RegistryError{Code: "MANIFEST_UNKNOWN", Message: "manifest unknown"}, "manifest unknown"},
		{RegistryError{Code: "UNAUTHORIZED", Message: "authentication required"}, "unauthorized: authentication required"},
		{RegistryError{Code: "TOOMANYREQUESTS", Message: "You have reached your pull rate limit."}, "toomanyrequests: You have reached your pull rate limit."},
		{RegistryError{Code: "DENIED"}, "denied"},
		{RegistryError{Message: "something"}, "something"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestErrorEnvelopeRoundTrip(t *testing.T) {
	body := fixture(t, "errors/hub-unauthorized-repository.json")
	errs, ok := ParseErrorEnvelope(body)
	if !ok {
		t.Fatal("not an envelope")
	}
	out, err := json.Marshal(ErrorEnvelope{Errors: errs})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(body)); string(out) != got {
		t.Errorf("json.Marshal(ParseErrorEnvelope(b)) = %s, want %s", out, got)
	}
}
