// Package credentials finds and stores the credentials a client presents to
// container registries: the docker config.json (auths, credsStore, credHelpers and
// the docker-credential-<name> programs they name), podman's auth.json and
// DOCKER_AUTH_CONFIG, read as the docker and podman tools read them ([Keychain]), and
// written as docker login writes them ([Save], [Erase]).
//
// A [Store] answers the credential for one registry host; the root package's
// WithCredentials takes any Store.
package credentials

import (
	"context"
	"strings"

	"github.com/ocistream/ocistream/ref"
)

// Credential is what a client presents to one registry. The zero value means anonymous.
type Credential struct {
	// Username and Password are sent as HTTP Basic credentials, or exchanged for a
	// bearer token with the OAuth2 password grant (falling back to GET with Basic).
	Username string
	Password string
	// RefreshToken is an OAuth2 refresh token (Docker's "identitytoken", an ACR refresh
	// token): it is exchanged with the refresh_token grant for access tokens.
	RefreshToken string
	// AccessToken is a registry bearer token sent as is (config.json "registrytoken").
	AccessToken string
	// AzureADToken is a Microsoft Entra ID access token for an Azure Container Registry;
	// it is exchanged at the registry's /oauth2/exchange for an ACR refresh token.
	AzureADToken string
}

// IsZero reports whether c carries no credential at all (anonymous access).
func (c Credential) IsZero() bool { return c == Credential{} }

// Store finds the credential for a registry host. host is the API host as
// [ref.Reference.Registry] returns it: "registry-1.docker.io" for Docker Hub, else
// "host[:port]". A store returns the zero Credential, and no error, when it has none.
type Store interface {
	Credential(ctx context.Context, host string) (Credential, error)
}

// Func adapts a function to a [Store].
type Func func(ctx context.Context, host string) (Credential, error)

// Credential calls f.
func (f Func) Credential(ctx context.Context, host string) (Credential, error) {
	return f(ctx, host)
}

// Static returns a store that answers cred for host (Docker Hub's names, see
// [ref.IsHub], are one host) and the zero Credential for every other host. It costs
// no I/O.
func Static(host string, cred Credential) Store {
	want := CanonicalHost(host)
	return Func(func(_ context.Context, h string) (Credential, error) {
		if CanonicalHost(h) == want {
			return cred, nil
		}
		return Credential{}, nil
	})
}

// CanonicalHost reduces a registry name to the form credentials are matched by: the
// host[:port] in lower case, without scheme or path, with Docker Hub's names (see
// [ref.IsHub]) all mapped to "index.docker.io".
func CanonicalHost(host string) string {
	h, _, _ := splitKey(host)
	if ref.IsHub(h) {
		return hubCanonical
	}
	return strings.ToLower(h)
}

// hubCanonical is what [CanonicalHost] maps Docker Hub's names to.
const hubCanonical = "index.docker.io"
