package ocistream

import "context"

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

// CredentialStore finds the credential for a registry host. host is the API host as
// [ref.Reference.Registry] returns it: "registry-1.docker.io" for Docker Hub, else
// "host[:port]". A store returns the zero Credential, and no error, when it has none.
type CredentialStore interface {
	Credential(ctx context.Context, host string) (Credential, error)
}

// CredentialFunc adapts a function to a [CredentialStore].
type CredentialFunc func(ctx context.Context, host string) (Credential, error)

// Credential calls f.
func (f CredentialFunc) Credential(ctx context.Context, host string) (Credential, error) {
	return f(ctx, host)
}

// StaticCredentials returns a store that answers cred for host (Docker Hub's names,
// "docker.io", "index.docker.io" and "registry-1.docker.io", are one host) and the
// zero Credential for every other host.
func StaticCredentials(host string, cred Credential) CredentialStore {
	want := canonicalCredentialHost(host)
	return CredentialFunc(func(_ context.Context, h string) (Credential, error) {
		if canonicalCredentialHost(h) == want {
			return cred, nil
		}
		return Credential{}, nil
	})
}
