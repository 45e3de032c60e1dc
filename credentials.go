package ocistream

import "github.com/ocistream/ocistream/credentials"

// The credential types live in package credentials, which also reads and writes the
// docker and podman credential files; these names keep the root package's API.

// Credential is what a client presents to one registry; see [credentials.Credential].
type Credential = credentials.Credential

// CredentialStore finds the credential for a registry host; see [credentials.Store].
type CredentialStore = credentials.Store

// CredentialFunc adapts a function to a [CredentialStore]; see [credentials.Func].
type CredentialFunc = credentials.Func

// Keychain reads Docker's and podman's credential files; see [credentials.Keychain].
type Keychain = credentials.Keychain

// KeychainOptions configures a [Keychain]; see [credentials.KeychainOptions].
type KeychainOptions = credentials.KeychainOptions

// StaticCredentials returns a store that answers cred for host and the zero
// Credential for every other host; see [credentials.Static].
func StaticCredentials(host string, cred Credential) CredentialStore {
	return credentials.Static(host, cred)
}

// NewKeychain returns a Keychain configured by opts; nil opts means the defaults. It
// reads the environment only: files are read lazily on the first lookup. See
// [credentials.NewKeychain].
func NewKeychain(opts *KeychainOptions) *Keychain { return credentials.NewKeychain(opts) }
