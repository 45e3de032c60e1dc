package ocistream_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ocistream/ocistream"
)

// ch builds the expected challenge: a scheme and name, value pairs.
func ch(scheme string, kv ...string) ocistream.Challenge {
	c := ocistream.Challenge{Scheme: scheme, Params: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Params[kv[i]] = kv[i+1]
	}
	return c
}

// challengeCase is one row of the challenge parser table. A nil want with wantErr
// false means no challenges.
type challengeCase struct {
	name    string
	headers []string
	want    []ocistream.Challenge
	wantErr bool
}

// registryChallenges are the challenge strings real registries send (protocol research
// §1.1), one case per row.
var registryChallenges = []challengeCase{
	{
		name:    "docker hub ping",
		headers: []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.docker.io/token", "service", "registry.docker.io")},
	},
	{
		name:    "docker hub push",
		headers: []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.docker.io/token", "service", "registry.docker.io", "scope", "repository:samalba/my-app:pull,push")},
	},
	{
		name:    "docker hub catalog",
		headers: []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="registry:catalog:*"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.docker.io/token", "service", "registry.docker.io", "scope", "registry:catalog:*")},
	},
	{
		name:    "docker hub catalog insufficient scope",
		headers: []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="registry:catalog:*",error="insufficient_scope"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.docker.io/token", "service", "registry.docker.io", "scope", "registry:catalog:*", "error", "insufficient_scope")},
	},
	{
		name:    "ghcr",
		headers: []string{`Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://ghcr.io/token", "service", "ghcr.io", "scope", "repository:user/image:pull")},
	},
	{
		name:    "github package registry basic",
		headers: []string{`Basic realm="GitHub Package Registry"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "GitHub Package Registry")},
	},
	{
		name:    "quay ping",
		headers: []string{`Bearer realm="https://quay.io/v2/auth",service="quay.io"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://quay.io/v2/auth", "service", "quay.io")},
	},
	{
		name:    "quay repository",
		headers: []string{`Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:devtable/simple:pull,push"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://quay.io/v2/auth", "service", "quay.io", "scope", "repository:devtable/simple:pull,push")},
	},
	{
		name:    "gcr",
		headers: []string{`Bearer realm="https://gcr.io/v2/token",service="gcr.io"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://gcr.io/v2/token", "service", "gcr.io")},
	},
	{
		name:    "gcr regional",
		headers: []string{`Bearer realm="https://k8s.gcr.io/v2/token",service="k8s.gcr.io"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://k8s.gcr.io/v2/token", "service", "k8s.gcr.io")},
	},
	{
		name:    "artifact registry realm only",
		headers: []string{`Bearer realm="https://us-central1-docker.pkg.dev/v2/token"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://us-central1-docker.pkg.dev/v2/token")},
	},
	{
		name:    "artifact registry repository",
		headers: []string{`Bearer realm="https://us-docker.pkg.dev/v2/token",service="us-docker.pkg.dev",scope="repository:proj/repo/img:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://us-docker.pkg.dev/v2/token", "service", "us-docker.pkg.dev", "scope", "repository:proj/repo/img:pull")},
	},
	{
		name:    "ecr basic with realm url",
		headers: []string{`Basic realm="https://123456789.dkr.ecr.eu-central-1.amazonaws.com/",service="ecr.amazonaws.com"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "https://123456789.dkr.ecr.eu-central-1.amazonaws.com/", "service", "ecr.amazonaws.com")},
	},
	{
		name:    "ecr public opaque scope",
		headers: []string{`Bearer realm="https://public.ecr.aws/token",service="public.ecr.aws",scope="aws"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://public.ecr.aws/token", "service", "public.ecr.aws", "scope", "aws")},
	},
	{
		name:    "acr catalog",
		headers: []string{`Bearer realm="https://contosoregistry.azurecr.io/oauth2/token",service="contosoregistry.azurecr.io",scope="registry:catalog:*"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://contosoregistry.azurecr.io/oauth2/token", "service", "contosoregistry.azurecr.io", "scope", "registry:catalog:*")},
	},
	{
		name:    "acr manifest",
		headers: []string{`Bearer realm="https://contosoregistry.azurecr.io/oauth2/token",service="contosoregistry.azurecr.io",scope="repository:hello-world:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://contosoregistry.azurecr.io/oauth2/token", "service", "contosoregistry.azurecr.io", "scope", "repository:hello-world:pull")},
	},
	{
		name:    "acr metadata_read",
		headers: []string{`Bearer realm="https://contosoregistry.azurecr.io/oauth2/token",service="contosoregistry.azurecr.io",scope="repository:library/hello-world:metadata_read"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://contosoregistry.azurecr.io/oauth2/token", "service", "contosoregistry.azurecr.io", "scope", "repository:library/hello-world:metadata_read")},
	},
	{
		name:    "acr invalid token",
		headers: []string{`Bearer realm="https://contosoregistry.azurecr.io/oauth2/token",service="contosoregistry.azurecr.io",scope="registry:catalog:*",error="invalid_token"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://contosoregistry.azurecr.io/oauth2/token", "service", "contosoregistry.azurecr.io", "scope", "registry:catalog:*", "error", "invalid_token")},
	},
	{
		name:    "acr helm artifact-repository",
		headers: []string{`Bearer realm="https://contosoregistry.azurecr.io/oauth2/token",service="contosoregistry.azurecr.io",scope="artifact-repository:repo:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://contosoregistry.azurecr.io/oauth2/token", "service", "contosoregistry.azurecr.io", "scope", "artifact-repository:repo:pull")},
	},
	{
		name:    "harbor bearer with space-joined scopes",
		headers: []string{`Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:proj/app:pull repository:proj/base:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://harbor.example.com/service/token", "service", "harbor-registry", "scope", "repository:proj/app:pull repository:proj/base:pull")},
	},
	{
		name:    "harbor basic",
		headers: []string{`Basic realm="harbor"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "harbor")},
	},
	{
		name:    "gitlab",
		headers: []string{`Bearer realm="https://gitlab.com/jwt/auth",service="container_registry",scope="repository:group/project:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://gitlab.com/jwt/auth", "service", "container_registry", "scope", "repository:group/project:pull")},
	},
	{
		name:    "gitlab catalog insufficient scope",
		headers: []string{`Bearer realm="https://gitlab.com/jwt/auth",service="container_registry",scope="registry:catalog:*",error="insufficient_scope"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://gitlab.com/jwt/auth", "service", "container_registry", "scope", "registry:catalog:*", "error", "insufficient_scope")},
	},
	{
		name:    "artifactory",
		headers: []string{`Bearer realm="https://artifactory/artifactory/api/docker/docker-local/v2/token",service="artifactory",scope="repository:someproduct/someimage:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://artifactory/artifactory/api/docker/docker-local/v2/token", "service", "artifactory", "scope", "repository:someproduct/someimage:pull")},
	},
	{
		name:    "artifactory explicit port",
		headers: []string{`Bearer realm="https://artifactory.local:443/artifactory/api/docker/docker-hub/v2/token",service="artifactory.local:443",scope="repository:node:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://artifactory.local:443/artifactory/api/docker/docker-hub/v2/token", "service", "artifactory.local:443", "scope", "repository:node:pull")},
	},
	{
		name:    "artifactory basic",
		headers: []string{`Basic realm="Artifactory Realm"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "Artifactory Realm")},
	},
	{
		name:    "nexus upper-case scheme",
		headers: []string{`BASIC realm="Sonatype Nexus Repository Manager"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "Sonatype Nexus Repository Manager")},
	},
	{
		name:    "distribution token auth with go %q escapes",
		headers: []string{`Bearer realm="https://auth.example.com/token",service="my \"registry\" \\ here",scope="repository:a/b:pull,push repository:c:pull",error="invalid_token"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.example.com/token", "service", `my "registry" \ here`, "scope", "repository:a/b:pull,push repository:c:pull", "error", "invalid_token")},
	},
	{
		name:    "distribution htpasswd",
		headers: []string{`Basic realm="Registry Realm"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "Registry Realm")},
	},
	{
		name:    "distribution silly auth",
		headers: []string{`Bearer realm="silly-realm",service="silly-service",scope="repository:foo/bar:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "silly-realm", "service", "silly-service", "scope", "repository:foo/bar:pull")},
	},
	{
		name:    "gitea two headers with bare basic",
		headers: []string{`Bearer realm="https://gitea.example.com/v2/token"`, `Basic`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://gitea.example.com/v2/token"), ch("basic")},
	},
	{
		name:    "codeberg two challenges in one header",
		headers: []string{`Bearer realm="https://codeberg.org/v2/token",service="container_registry",scope="*",Basic realm="https://codeberg.org/v2",service="container_registry",scope="*"`},
		want: []ocistream.Challenge{
			ch("bearer", "realm", "https://codeberg.org/v2/token", "service", "container_registry", "scope", "*"),
			ch("basic", "realm", "https://codeberg.org/v2", "service", "container_registry", "scope", "*"),
		},
	},
	{
		name:    "gitea later single bearer",
		headers: []string{`Bearer realm="https://gitea.example.com/v2/token",service="container_registry",scope="*"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://gitea.example.com/v2/token", "service", "container_registry", "scope", "*")},
	},
	{
		name:    "spnego proxy negotiate then basic",
		headers: []string{`Negotiate`, `Basic realm="corp"`},
		want:    []ocistream.Challenge{ch("negotiate"), ch("basic", "realm", "corp")},
	},
}

// oddChallenges are the odd shapes of protocol research §1.2, one case per row (row 14,
// a 403, is about which responses carry challenges and is parsed here like any header).
var oddChallenges = []challengeCase{
	{
		name:    "1 unquoted token and escapes",
		headers: []string{`Bearer realm="https://auth.example.com/token",service="registry.example.com",other=fun,slashed="he\"\l\lo"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.example.com/token", "service", "registry.example.com", "other", "fun", "slashed", `he"llo`)},
	},
	{
		// containerd keeps the empty value; distribution stops parsing at it. The RFC
		// allows an empty quoted-string, so it is kept and parsing goes on.
		name:    "2 empty quoted value kept as in containerd not dropped as in distribution",
		headers: []string{`Bearer realm="https://auth.example.io/token",empty="",service="registry.example.io",scope="repository:library/hello-world:pull,push"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.example.io/token", "empty", "", "service", "registry.example.io", "scope", "repository:library/hello-world:pull,push")},
	},
	{
		name:    "3 bare scheme",
		headers: []string{`BASIC`},
		want:    []ocistream.Challenge{ch("basic")},
	},
	{
		name:    "4 case-insensitive scheme and names",
		headers: []string{`BaSiC ReAlM="Case insensitive key"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "Case insensitive key")},
	},
	{
		name:    "5 unquoted value",
		headers: []string{`Basic realm=unquoted`},
		want:    []ocistream.Challenge{ch("basic", "realm", "unquoted")},
	},
	{
		name:    "5 slash value",
		headers: []string{`Basic realm=/`},
		want:    []ocistream.Challenge{ch("basic", "realm", "/")},
	},
	{
		name:    "6 charset param",
		headers: []string{`Basic realm="Dev", charset="UTF-8"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "Dev", "charset", "UTF-8")},
	},
	{
		name:    "7 two challenges with spaces",
		headers: []string{`Bearer realm="https://auth.docker.io/token", service="registry.docker.io", scope="repository:docker/docker:pull", Basic realm="GitHub Package Registry"`},
		want: []ocistream.Challenge{
			ch("bearer", "realm", "https://auth.docker.io/token", "service", "registry.docker.io", "scope", "repository:docker/docker:pull"),
			ch("basic", "realm", "GitHub Package Registry"),
		},
	},
	{
		name:    "8 missing comma rejected",
		headers: []string{`Basic realm="Dev" charset="UTF-8"`},
		wantErr: true,
	},
	{
		// containerd and distribution return an empty value; an unterminated
		// quoted-string is not RFC 7230, so it is an error.
		name:    "9 unterminated quote rejected rather than read as empty",
		headers: []string{`Basic realm="GitHub Package Registry`},
		wantErr: true,
	},
	{
		name:    "10 dangling escape rejected",
		headers: []string{`Basic realm="GitHub Package Registry\`},
		wantErr: true,
	},
	{
		// regclient accepts this leniently; RFC 7235 makes auth-scheme and the
		// parameter name tokens, and a quoted string is not a token.
		name:    "11 quoted scheme rejected since a scheme is a token",
		headers: []string{`"Basic" "realm"=/`},
		wantErr: true,
	},
	{
		name:    "12 negotiate then basic in two headers",
		headers: []string{`Negotiate`, `Basic realm="http://auth.example.com/token"`},
		want:    []ocistream.Challenge{ch("negotiate"), ch("basic", "realm", "http://auth.example.com/token")},
	},
	{
		name:    "13 negotiate and digest",
		headers: []string{`Negotiate`, `Digest`},
		want:    []ocistream.Challenge{ch("negotiate"), ch("digest")},
	},
	{
		name:    "14 unterminated realm as sent with a 403",
		headers: []string{`Bearer realm="http://auth.example.com/token`},
		wantErr: true,
	},
	{
		name:    "15 no service and empty scope",
		headers: []string{`Bearer realm="https://auth.docker.io/token",scope=""`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.docker.io/token", "scope", "")},
	},
	{
		name:    "16 lower-case scheme",
		headers: []string{`bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:test/image:pull"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://ghcr.io/token", "service", "ghcr.io", "scope", "repository:test/image:pull")},
	},
	{
		name:    "17 three space-separated scopes",
		headers: []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:foo/bar:pull,push repository:foo/baz:pull repository:foo/foo:push"`},
		want:    []ocistream.Challenge{ch("bearer", "realm", "https://auth.docker.io/token", "service", "registry.docker.io", "scope", "repository:foo/bar:pull,push repository:foo/baz:pull repository:foo/foo:push")},
	},
	{
		name:    "18 ecr public and gitea non-grammar scopes",
		headers: []string{`Bearer realm="https://public.ecr.aws/token",service="public.ecr.aws",scope="aws"`, `Bearer realm="https://gitea.example.com/v2/token",scope="*"`},
		want: []ocistream.Challenge{
			ch("bearer", "realm", "https://public.ecr.aws/token", "service", "public.ecr.aws", "scope", "aws"),
			ch("bearer", "realm", "https://gitea.example.com/v2/token", "scope", "*"),
		},
	},
}

// grammarChallenges cover RFC 7235 corners beyond the registries' strings, many from the
// greenbytes HTTP authentication test cases.
var grammarChallenges = []challengeCase{
	{name: "no headers", headers: nil},
	{name: "empty value", headers: []string{""}},
	{name: "only commas and spaces", headers: []string{" , ,\t,"}},
	{
		name:    "token68",
		headers: []string{`Negotiate YIIBTAYGKwYBBQUCoIIBQDCCATygDTALBgkqhkiG9xIBAgI+/a==`},
		want:    []ocistream.Challenge{{Scheme: "negotiate", Params: map[string]string{}, Token68: "YIIBTAYGKwYBBQUCoIIBQDCCATygDTALBgkqhkiG9xIBAgI+/a=="}},
	},
	{
		name:    "token68 then another challenge",
		headers: []string{`Negotiate abc=, Basic realm="x"`},
		want:    []ocistream.Challenge{{Scheme: "negotiate", Params: map[string]string{}, Token68: "abc="}, ch("basic", "realm", "x")},
	},
	{name: "parameter after token68", headers: []string{`Negotiate abc==, realm="x"`}, wantErr: true},
	{
		name:    "empty elements between params",
		headers: []string{`Basic realm="foo", bar="xyz",, a=b,,,c=d`},
		want:    []ocistream.Challenge{ch("basic", "realm", "foo", "bar", "xyz", "a", "b", "c", "d")},
	},
	{
		name:    "comma after scheme and space",
		headers: []string{`Basic , realm="foo"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "foo")},
	},
	{name: "param after scheme without space", headers: []string{`Basic, realm="foo"`}, wantErr: true},
	{
		name:    "whitespace around equals",
		headers: []string{`Basic realm = "foo"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "foo")},
	},
	{
		name:    "leading comma and whitespace",
		headers: []string{` ,Basic realm="basic" `},
		want:    []ocistream.Challenge{ch("basic", "realm", "basic")},
	},
	{
		name:    "unknown schemes keep order",
		headers: []string{`Newauth realm="newauth", Basic realm="basic"`},
		want:    []ocistream.Challenge{ch("newauth", "realm", "newauth"), ch("basic", "realm", "basic")},
	},
	{
		name:    "bare unknown scheme last",
		headers: []string{`Basic realm="basic", Newauth`},
		want:    []ocistream.Challenge{ch("basic", "realm", "basic"), ch("newauth")},
	},
	{
		name:    "schemes only",
		headers: []string{`A, B`},
		want:    []ocistream.Challenge{ch("a"), ch("b")},
	},
	{
		name:    "param named like a scheme",
		headers: []string{`Newauth realm="Newauth Realm", basic=foo, Basic realm="Basic Realm"`},
		want:    []ocistream.Challenge{ch("newauth", "realm", "Newauth Realm", "basic", "foo"), ch("basic", "realm", "Basic Realm")},
	},
	{
		name:    "disguised realm",
		headers: []string{`Basic foo="realm=nottherealm", realm="basic"`},
		want:    []ocistream.Challenge{ch("basic", "foo", "realm=nottherealm", "realm", "basic")},
	},
	{
		name:    "escaped quotes in title",
		headers: []string{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`},
		want:    []ocistream.Challenge{ch("newauth", "realm", "apps", "type", "1", "title", `Login to "apps"`), ch("basic", "realm", "simple")},
	},
	{
		name:    "escaped letters",
		headers: []string{`Basic realm="\f\o\o"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "foo")},
	},
	{
		name:    "comma inside quotes",
		headers: []string{`Digest realm="a", qop="auth, auth-int", algorithm=MD5`},
		want:    []ocistream.Challenge{ch("digest", "realm", "a", "qop", "auth, auth-int", "algorithm", "MD5")},
	},
	{
		name:    "percent and non-ascii kept verbatim",
		headers: []string{`Basic realm="foo%20bar-ä"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "foo%20bar-ä")},
	},
	{
		name:    "base64 bare value",
		headers: []string{`Digest nonce=abc+/d==, realm=x`},
		want:    []ocistream.Challenge{ch("digest", "nonce", "abc+/d==", "realm", "x")},
	},
	{
		name:    "tab between scheme and params",
		headers: []string{"Basic\trealm=\"foo\""},
		want:    []ocistream.Challenge{ch("basic", "realm", "foo")},
	},
	{name: "junk before scheme", headers: []string{`close Bearer realm="https://auth.docker.io/token"`}, wantErr: true},
	{name: "param without scheme", headers: []string{`realm="x"`}, wantErr: true},
	{name: "duplicate param", headers: []string{`Basic realm="a", REALM="b"`}, wantErr: true},
	{
		name:    "same param in two challenges",
		headers: []string{`Basic realm="a", Bearer realm="b"`},
		want:    []ocistream.Challenge{ch("basic", "realm", "a"), ch("bearer", "realm", "b")},
	},
	{name: "param without value", headers: []string{`Basic realm=, x=y`}, wantErr: true},
	{name: "param without value at end", headers: []string{`Basic a=b, realm=`}, wantErr: true},
	{name: "line folding", headers: []string{"Basic\r\n realm=\"foo\""}, wantErr: true},
	{name: "control character in quotes", headers: []string{"Basic realm=\"a\x00b\""}, wantErr: true},
	{name: "escaped control character", headers: []string{"Basic realm=\"a\\\x01\""}, wantErr: true},
	{name: "single quotes are token chars", headers: []string{`Basic realm='foo'`}, want: []ocistream.Challenge{ch("basic", "realm", "'foo'")}},
	{name: "value followed by junk", headers: []string{`Basic realm="a"b`}, wantErr: true},
	{name: "separator after scheme", headers: []string{`Basic;realm="a"`}, wantErr: true},
	{name: "second value invalid", headers: []string{`Basic realm="a"`, `Bearer realm="b`}, wantErr: true},
}

func allChallengeCases() []challengeCase {
	var all []challengeCase
	all = append(all, registryChallenges...)
	all = append(all, oddChallenges...)
	return append(all, grammarChallenges...)
}

func TestParseChallenges(t *testing.T) {
	for _, tc := range allChallengeCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ocistream.ParseChallenges(tc.headers...)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseChallenges(%q) = %v, want an error", tc.headers, got)
				}
				if !errors.Is(err, ocistream.ErrInvalidChallenge) {
					t.Errorf("ParseChallenges(%q) error %v does not wrap ErrInvalidChallenge", tc.headers, err)
				}
				if !strings.Contains(err.Error(), "offset") {
					t.Errorf("ParseChallenges(%q) error %q does not say where", tc.headers, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChallenges(%q): %v", tc.headers, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseChallenges(%q) =\n\t%#v\nwant\n\t%#v", tc.headers, got, tc.want)
			}
		})
	}
}

func TestParseChallengesErrorMessages(t *testing.T) {
	tests := []struct {
		header string
		want   string
	}{
		{`Basic realm="abc`, `unterminated quoted string in parameter "realm" at offset 12`},
		{`Basic realm="abc\`, `dangling escape in parameter "realm" at offset 16`},
		{`Basic realm="Dev" charset="UTF-8"`, `missing comma after parameter "realm" at offset 18`},
		{`realm="x"`, `parameter "realm" has no scheme before it at offset 0`},
		{`Basic realm="a", realm="b"`, `duplicate parameter "realm" at offset 17`},
		{`"Basic"`, `unexpected '"' where a scheme should be at offset 0`},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			_, err := ocistream.ParseChallenges(tc.header)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseChallenges(%q) error = %v, want it to contain %q", tc.header, err, tc.want)
			}
		})
	}
	_, err := ocistream.ParseChallenges(`Basic`, `Basic realm="x`)
	if want := "value 2"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseChallenges of two values: error = %v, want it to name %q", err, want)
	}
}

func TestChallengeString(t *testing.T) {
	tests := []struct {
		c    ocistream.Challenge
		want string
	}{
		{ch("basic"), "basic"},
		{ch("bearer", "service", "s", "realm", "https://r"), `bearer realm="https://r", service="s"`},
		{ch("basic", "realm", `a"b\c`), `basic realm="a\"b\\c"`},
		{ch("basic", "realm", ""), `basic realm=""`},
		{ocistream.Challenge{Scheme: "negotiate", Token68: "abc=="}, "negotiate abc=="},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.c.String(); got != tc.want {
				t.Errorf("%#v.String() = %q, want %q", tc.c, got, tc.want)
			}
		})
	}
}

func TestPreferredChallenge(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    string // the realm of the pick, "" when none
	}{
		{"bearer first", []string{`Bearer realm="b1", Basic realm="a1"`}, "b1"},
		{"bearer after basic", []string{`Basic realm="a1"`, `Bearer realm="b1"`, `Bearer realm="b2"`}, "b1"},
		{"first basic", []string{`Negotiate`, `Basic realm="a1"`, `Basic realm="a2"`}, "a1"},
		{"none supported", []string{`Negotiate`, `Digest realm="d"`}, ""},
		{"empty", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := ocistream.ParseChallenges(tc.headers...)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := ocistream.PreferredChallenge(cs)
			if ok != (tc.want != "") || c.Params["realm"] != tc.want {
				t.Errorf("PreferredChallenge(%q) = %v, %v; want realm %q", tc.headers, c, ok, tc.want)
			}
		})
	}
}

func TestChallengeScopes(t *testing.T) {
	cs, err := ocistream.ParseChallenges(`Bearer realm="r",scope="repository:foo/bar:push,pull aws registry:catalog:*"`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cs[0].Scopes()
	if err != nil {
		t.Fatal(err)
	}
	want := []ocistream.Scope{
		{Type: "repository", Name: "foo/bar", Actions: []string{"pull", "push"}},
		{Opaque: "aws"},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Scopes() = %#v, want %#v", got, want)
	}
	if got, err := ch("basic", "realm", "x").Scopes(); got != nil || err != nil {
		t.Errorf("Scopes() without scope = %v, %v; want nil, nil", got, err)
	}
	if _, err := ch("bearer", "scope", "repository::pull").Scopes(); !errors.Is(err, ocistream.ErrInvalidScope) {
		t.Errorf("Scopes() of an invalid scope: error = %v, want ErrInvalidScope", err)
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in      string
		want    ocistream.Scope
		str     string // String() when it differs from in
		wantErr bool
	}{
		{in: "repository:library/ubuntu:pull", want: ocistream.Scope{Type: "repository", Name: "library/ubuntu", Actions: []string{"pull"}}},
		{in: "repository:localhost:5000/a/b:pull,push", want: ocistream.Scope{Type: "repository", Name: "localhost:5000/a/b", Actions: []string{"pull", "push"}}},
		{in: "repository:samalba/my-app:push,pull,push", want: ocistream.Scope{Type: "repository", Name: "samalba/my-app", Actions: []string{"pull", "push"}}, str: "repository:samalba/my-app:pull,push"},
		{in: "registry:catalog:*", want: ocistream.Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{in: "repository(plugin):foo/bar:pull", want: ocistream.Scope{Type: "repository", Class: "plugin", Name: "foo/bar", Actions: []string{"pull"}}},
		{in: "repository:library/hello-world:metadata_read", want: ocistream.Scope{Type: "repository", Name: "library/hello-world", Actions: []string{"metadata_read"}}},
		{in: "artifact-repository:repo:pull", want: ocistream.Scope{Type: "artifact-repository", Name: "repo", Actions: []string{"pull"}}},
		{in: "repository:LOCALDOMAIN/fooo:pull", want: ocistream.Scope{Type: "repository", Name: "LOCALDOMAIN/fooo", Actions: []string{"pull"}}},
		{in: "repository:*:*", want: ocistream.Scope{Type: "repository", Name: "*", Actions: []string{"*"}}},
		{in: "repository:[::1]:5000/a:delete,pull", want: ocistream.Scope{Type: "repository", Name: "[::1]:5000/a", Actions: []string{"delete", "pull"}}},
		{in: "repository:foo:", wantErr: true},
		{in: "repository::pull", wantErr: true},
		{in: ":foo:pull", wantErr: true},
		{in: "repository:foo", wantErr: true},
		{in: "aws", wantErr: true},
		{in: "*", wantErr: true},
		{in: "", wantErr: true},
		{in: "repository:foo:pull,", wantErr: true},
		{in: "repository:foo:pull,,push", wantErr: true},
		{in: "repository:foo:pull push", wantErr: true},
		{in: "repository:foo/bar:pull repository:foo/baz:pull", wantErr: true},
		{in: "repository:fo o:pull", wantErr: true},
		{in: "repository:foo:pu\"ll", wantErr: true},
		{in: "repository:foo:pull\n", wantErr: true},
		{in: "repository(:foo:pull", wantErr: true},
		{in: "repository():foo:pull", wantErr: true},
		{in: "repository(a)(b):foo:pull", wantErr: true},
		{in: "repo/sitory:foo:pull", wantErr: true},
		{in: "repository:a,b:pull", wantErr: true},
		{in: "repository:foo:pu/ll", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ocistream.ParseScope(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ocistream.ErrInvalidScope) {
					t.Errorf("ParseScope(%q) = %#v, %v; want an error wrapping ErrInvalidScope", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseScope(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
			str := tc.str
			if str == "" {
				str = tc.in
			}
			if s := got.String(); s != str {
				t.Errorf("ParseScope(%q).String() = %q, want %q", tc.in, s, str)
			}
		})
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in      string
		want    []ocistream.Scope
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "aws", want: []ocistream.Scope{{Opaque: "aws"}}},
		{in: "*", want: []ocistream.Scope{{Opaque: "*"}}},
		{
			in: "repository:foo/bar:pull,push repository:foo/baz:pull  repository:foo/foo:push",
			want: []ocistream.Scope{
				{Type: "repository", Name: "foo/bar", Actions: []string{"pull", "push"}},
				{Type: "repository", Name: "foo/baz", Actions: []string{"pull"}},
				{Type: "repository", Name: "foo/foo", Actions: []string{"push"}},
			},
		},
		{
			in: "repository:a:pull repository:a:pull",
			want: []ocistream.Scope{
				{Type: "repository", Name: "a", Actions: []string{"pull"}},
				{Type: "repository", Name: "a", Actions: []string{"pull"}},
			},
		},
		{in: "repository:a:pull repository::pull", wantErr: true},
		{in: `aws "x"`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ocistream.ParseScopes(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ocistream.ErrInvalidScope) {
					t.Errorf("ParseScopes(%q) = %v, %v; want an error wrapping ErrInvalidScope", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseScopes(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseScopes(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestScopeHelpers(t *testing.T) {
	tests := []struct {
		got  ocistream.Scope
		want string
	}{
		{ocistream.RepositoryScope("library/ubuntu"), "repository:library/ubuntu:pull"},
		{ocistream.RepositoryScope("a/b", "push", "pull", "push"), "repository:a/b:pull,push"},
		{ocistream.CatalogScope(), "registry:catalog:*"},
		{ocistream.Scope{}, ""},
		{ocistream.Scope{Opaque: "aws"}, "aws"},
		{ocistream.Scope{Type: "repository", Class: "plugin", Name: "x", Actions: []string{"push", "pull", "pull"}}, "repository(plugin):x:pull,push"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if s := tc.got.String(); s != tc.want {
				t.Errorf("%#v.String() = %q, want %q", tc.got, s, tc.want)
			}
		})
	}
	actions := []string{"push", "pull"}
	_ = ocistream.RepositoryScope("a", actions...)
	if actions[0] != "push" {
		t.Errorf("RepositoryScope sorted its caller's slice: %v", actions)
	}
}

func mustScopes(t *testing.T, s string) []ocistream.Scope {
	t.Helper()
	scopes, err := ocistream.ParseScopes(s)
	if err != nil {
		t.Fatalf("ParseScopes(%q): %v", s, err)
	}
	return scopes
}

func TestMergeScopes(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"repository:b:pull repository:a:push repository:a:pull", "repository:a:pull,push repository:b:pull"},
		{"repository:a:push,pull repository:a:pull repository:a:delete", "repository:a:delete,pull,push"},
		{"repository:a:pull registry:catalog:* aws repository:a:pull aws *", "* aws registry:catalog:* repository:a:pull"},
		{"repository(plugin):a:pull repository:a:push", "repository:a:push repository(plugin):a:pull"},
		{"repository:localhost:5000/a:pull repository:localhost:5000/a:push", "repository:localhost:5000/a:pull,push"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			in := mustScopes(t, tc.in)
			before := fmt.Sprint(in)
			got := ocistream.ScopeString(ocistream.MergeScopes(in...))
			if got != tc.want {
				t.Errorf("MergeScopes(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if after := fmt.Sprint(in); after != before {
				t.Errorf("MergeScopes modified its input: %s, was %s", after, before)
			}
		})
	}
	if got := ocistream.MergeScopes(ocistream.Scope{}, ocistream.Scope{Type: "repository", Name: "a"}); len(got) != 0 {
		t.Errorf("MergeScopes of scopes without actions = %v, want none", got)
	}
}

func TestScopeContains(t *testing.T) {
	tests := []struct {
		have, want string
		ok         bool
	}{
		{"repository:a:pull,push", "repository:a:pull", true},
		{"repository:a:pull", "repository:a:pull,push", false},
		{"repository:a:*", "repository:a:delete,pull", true},
		{"repository:a:pull", "repository:b:pull", false},
		{"registry:catalog:*", "repository:catalog:pull", false},
		{"repository(plugin):a:pull", "repository:a:pull", false},
		{"aws", "aws", true},
		{"aws", "*", false},
		{"*", "repository:a:pull", false},
		{"repository:a:pull", "aws", false},
	}
	for _, tc := range tests {
		t.Run(tc.have+" contains "+tc.want, func(t *testing.T) {
			h, w := mustScopes(t, tc.have)[0], mustScopes(t, tc.want)[0]
			if got := h.Contains(w); got != tc.ok {
				t.Errorf("%v.Contains(%v) = %v, want %v", h, w, got, tc.ok)
			}
		})
	}
}

func TestScopesContain(t *testing.T) {
	tests := []struct {
		have, want string
		ok         bool
	}{
		{"repository:a:pull repository:a:push", "repository:a:pull,push", true},
		{"repository:a:pull,push repository:b:pull", "repository:b:pull repository:a:push", true},
		{"repository:a:pull", "repository:a:pull repository:b:pull", false},
		{"aws repository:a:pull", "aws", true},
		{"repository:a:pull", "aws", false},
		{"repository:a:pull", "", true},
		{"", "repository:a:pull", false},
	}
	for _, tc := range tests {
		t.Run(tc.have+" contain "+tc.want, func(t *testing.T) {
			h, w := mustScopes(t, tc.have), mustScopes(t, tc.want)
			if got := ocistream.ScopesContain(h, w); got != tc.ok {
				t.Errorf("ScopesContain(%q, %q) = %v, want %v", tc.have, tc.want, got, tc.ok)
			}
		})
	}
}

func ExampleParseChallenges() {
	cs, err := ocistream.ParseChallenges(`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"`)
	if err != nil {
		panic(err)
	}
	c, ok := ocistream.PreferredChallenge(cs)
	fmt.Println(ok, c.Scheme)
	fmt.Println(c.Params["realm"])
	fmt.Println(c.Params["service"])
	scopes, err := c.Scopes()
	if err != nil {
		panic(err)
	}
	fmt.Println(scopes[0].Type, scopes[0].Name, scopes[0].Actions)
	// Output:
	// true bearer
	// https://auth.docker.io/token
	// registry.docker.io
	// repository library/ubuntu [pull]
}

func ExampleParseScope() {
	s, err := ocistream.ParseScope("repository:localhost:5000/a/b:push,pull")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Type)
	fmt.Println(s.Name)
	fmt.Println(s.Actions)
	fmt.Println(s)
	// Output:
	// repository
	// localhost:5000/a/b
	// [pull push]
	// repository:localhost:5000/a/b:pull,push
}

func ExampleMergeScopes() {
	requested := []ocistream.Scope{
		ocistream.RepositoryScope("library/ubuntu", "push"),
		ocistream.CatalogScope(),
		ocistream.RepositoryScope("library/ubuntu"),
	}
	merged := ocistream.MergeScopes(requested...)
	fmt.Println(ocistream.ScopeString(merged))

	cached := merged[1]
	fmt.Println(cached.Contains(ocistream.RepositoryScope("library/ubuntu")))
	// Output:
	// registry:catalog:* repository:library/ubuntu:pull,push
	// true
}
