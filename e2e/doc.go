// Package e2e holds the end-to-end tests of ocistream against the real
// reference registry (distribution/distribution v3), run in-process.
//
// The package has no non-test code besides this file. Its test files provide
// the test bench the end-to-end tests are written on:
//
//   - newRegistry starts a registry (anonymous, htpasswd or token auth, plain
//     HTTP or TLS) behind an httptest server with in-memory storage;
//   - newTokenIssuer is a token server speaking the Docker token protocol
//     (GET) and its OAuth2 flavour (POST, password and refresh_token grants),
//     signing ES256 JWTs the registry trusts;
//   - makeImage, makeDockerImage, makeIndex and makeDockerManifestList build
//     deterministic images, and pushImage, pushIndex and pushBlob upload them
//     through the registry's own HTTP API;
//   - newFaultProxy is a reverse proxy in front of a registry that drops,
//     truncates, corrupts, stalls or rejects blob downloads on demand.
//
// Run with: cd e2e && go test ./...
package e2e
