package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocistream/ocistream"
)

// sdkClient returns a client for reg: plain HTTP unless reg serves TLS (then its CA
// is trusted), and the test user's credentials when cred is true.
func sdkClient(t testing.TB, reg *testRegistry, cred bool, opts ...ocistream.Option) *ocistream.Client {
	t.Helper()
	base := []ocistream.Option{ocistream.WithRetryPolicy(ocistream.RetryPolicy{MaxRetries: 3, MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, MaxRetryAfter: 5 * time.Second})}
	if reg.CertPool != nil {
		base = append(base, ocistream.WithRootCAs(reg.CertPool))
	} else {
		hosts := []string{reg.Host}
		if reg.Issuer != nil {
			hosts = append(hosts, hostOfURL(reg.Issuer.Realm))
		}
		base = append(base, ocistream.WithPlainHTTP(hosts...))
	}
	if cred {
		base = append(base, ocistream.WithCredentials(ocistream.StaticCredentials(reg.Host, ocistream.Credential{Username: testUser, Password: testPassword})))
	}
	c, err := ocistream.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hostOfURL(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
	h, _, _ := strings.Cut(s, "/")
	return h
}

var amd64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}

// TestClientAuthModes runs every endpoint against the reference registry in each auth
// mode, over plain HTTP and TLS.
func TestClientAuthModes(t *testing.T) {
	for _, mode := range []authMode{authAnonymous, authHtpasswd, authToken} {
		for _, tls := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tls=%v", mode, tls), func(t *testing.T) {
				reg := newRegistry(t, registryOptions{Auth: mode, TLS: tls, Issuer: issuerOptions{AnonymousCatalog: true}})
				img := makeImage(1, []int64{3000, 5000}, amd64)
				for _, tag := range []string{"v1", "v2", "v3"} {
					pushImage(t, reg, "team/app", tag, img)
				}
				pushImage(t, reg, "team/other", "latest", img)
				c := sdkClient(t, reg, mode != authAnonymous)
				ctx := t.Context()

				if err := c.Ping(ctx, reg.Host); err != nil {
					t.Fatalf("Ping: %v", err)
				}
				tags, err := ocistream.Collect(c.Tags(ctx, reg.Host+"/team/app", &ocistream.ListOptions{PageSize: 1}))
				if err != nil || !slices.Equal(tags, []string{"v1", "v2", "v3"}) {
					t.Fatalf("Tags = %v, %v", tags, err)
				}
				repos, err := ocistream.Collect(c.Catalog(ctx, reg.Host, &ocistream.ListOptions{PageSize: 1}))
				if err != nil || !slices.Equal(repos, []string{"team/app", "team/other"}) {
					t.Fatalf("Catalog = %v, %v", repos, err)
				}
				desc, err := c.Resolve(ctx, reg.Ref("team/app", "v2"))
				if err != nil || desc.Digest != img.ManifestDesc.Digest || desc.Size != img.ManifestDesc.Size {
					t.Fatalf("Resolve = %+v, %v; want %s", desc, err, img.ManifestDesc.Digest)
				}
				desc, body, err := c.Manifest(ctx, reg.Ref("team/app", string(img.ManifestDesc.Digest)))
				if err != nil || !bytes.Equal(body, img.Manifest) || desc.MediaType != ocispec.MediaTypeImageManifest {
					t.Fatalf("Manifest = %+v, %v", desc, err)
				}
				for i, ld := range img.LayerDescs {
					rc, err := c.Blob(ctx, reg.Host+"/team/app", ld)
					if err != nil {
						t.Fatalf("Blob: %v", err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, img.Layers[i]) {
						t.Fatalf("Blob %d: %d bytes, %v", i, len(got), err)
					}
				}
				bd, err := c.BlobDescriptor(ctx, reg.Host+"/team/app", img.ConfigDesc.Digest)
				if err != nil || bd.Size != img.ConfigDesc.Size {
					t.Fatalf("BlobDescriptor = %+v, %v", bd, err)
				}
			})
		}
	}
}

func TestClientErrors(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authHtpasswd})
	pushImage(t, reg, "team/app", "v1", makeImage(2, []int64{100}, amd64))
	ctx := t.Context()

	anon := sdkClient(t, reg, false)
	if _, _, err := anon.Manifest(ctx, reg.Ref("team/app", "v1")); !errors.Is(err, ocistream.ErrUnauthorized) {
		t.Errorf("anonymous on htpasswd: %v, want ErrUnauthorized", err)
	}
	wrong := sdkClient(t, reg, false, ocistream.WithCredentials(ocistream.StaticCredentials(reg.Host, ocistream.Credential{Username: testUser, Password: "wrong"})))
	if _, _, err := wrong.Manifest(ctx, reg.Ref("team/app", "v1")); !errors.Is(err, ocistream.ErrUnauthorized) {
		t.Errorf("wrong password: %v, want ErrUnauthorized", err)
	}
	c := sdkClient(t, reg, true)
	_, _, err := c.Manifest(ctx, reg.Ref("team/app", "nope"))
	var re *ocistream.ResponseError
	if !errors.Is(err, ocistream.ErrNotFound) || !errors.As(err, &re) || re.Code() != "MANIFEST_UNKNOWN" {
		t.Errorf("unknown tag: %v, want ErrNotFound with MANIFEST_UNKNOWN", err)
	}
	_, err = ocistream.Collect(c.Tags(ctx, reg.Host+"/team/nothing", nil))
	if !errors.Is(err, ocistream.ErrNotFound) || !errors.As(err, &re) || re.Code() != "NAME_UNKNOWN" {
		t.Errorf("unknown repository: %v, want ErrNotFound with NAME_UNKNOWN", err)
	}
	if _, err := c.Resolve(ctx, reg.Ref("team/app", "nope")); !errors.Is(err, ocistream.ErrNotFound) {
		t.Errorf("HEAD unknown tag: %v, want ErrNotFound", err)
	}
}

// TestTokenGrants covers the token flows the issuer supports: the OAuth2 POST
// password grant, the GET fallback when POST is refused (Harbor 405, GCR 404), the
// refresh-token grant with an identity token, anonymous GET, and both token fields.
func TestTokenGrants(t *testing.T) {
	tests := []struct {
		name     string
		issuer   issuerOptions
		cred     ocistream.Credential
		wantGET  bool
		wantPOST string // grant type
	}{
		{name: "post password", cred: ocistream.Credential{Username: testUser, Password: testPassword}, wantPOST: "password"},
		{name: "harbor 405 falls back to get", issuer: issuerOptions{DisablePOST: 405}, cred: ocistream.Credential{Username: testUser, Password: testPassword}, wantGET: true},
		{name: "gcr 404 falls back to get", issuer: issuerOptions{DisablePOST: 404}, cred: ocistream.Credential{Username: testUser, Password: testPassword}, wantGET: true},
		{name: "anonymous get", wantGET: true},
		{name: "token field only", issuer: issuerOptions{TokenField: tokenFieldToken}, wantGET: true},
		{name: "access_token field only", issuer: issuerOptions{TokenField: tokenFieldAccessToken, OmitExpiresIn: true}, cred: ocistream.Credential{Username: testUser, Password: testPassword}, wantPOST: "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t, registryOptions{Auth: authToken, Issuer: tt.issuer})
			pushImage(t, reg, "team/app", "v1", makeImage(3, []int64{100}, amd64))
			opts := []ocistream.Option{}
			if !tt.cred.IsZero() {
				opts = append(opts, ocistream.WithCredentials(ocistream.StaticCredentials(reg.Host, tt.cred)))
			}
			c := sdkClient(t, reg, false, opts...)
			for range 3 {
				if _, _, err := c.Manifest(t.Context(), reg.Ref("team/app", "v1")); err != nil {
					t.Fatal(err)
				}
			}
			counts := reg.Issuer.Counts()
			if tt.wantGET && counts.GET != 1 {
				t.Errorf("GET grants = %d, want 1 (then cached)", counts.GET)
			}
			if tt.wantPOST == "password" && (counts.POSTPassword != 1 || counts.GET != 0) {
				t.Errorf("counts = %+v, want one POST password grant", counts)
			}
			for _, r := range reg.Issuer.Requests() {
				if r.Status != 200 {
					continue // a refused POST is not parsed by the issuer
				}
				if r.Service != testService || r.ClientID == "" && r.Method == "POST" {
					t.Errorf("token request %+v lacks service or client_id", r)
				}
			}
		})
	}
	t.Run("refresh token", func(t *testing.T) {
		reg := newRegistry(t, registryOptions{Auth: authToken})
		pushImage(t, reg, "team/app", "v1", makeImage(4, []int64{100}, amd64))
		// An identity token as docker login stores it: obtained once with offline access.
		refresh := reg.Issuer.newRefreshToken(testUser)
		c := sdkClient(t, reg, false, ocistream.WithCredentials(ocistream.StaticCredentials(reg.Host, ocistream.Credential{RefreshToken: refresh})))
		if _, _, err := c.Manifest(t.Context(), reg.Ref("team/app", "v1")); err != nil {
			t.Fatal(err)
		}
		if n := reg.Issuer.Counts().POSTRefresh; n != 1 {
			t.Errorf("refresh grants = %d, want 1", n)
		}
	})
	t.Run("bad password", func(t *testing.T) {
		reg := newRegistry(t, registryOptions{Auth: authToken})
		c := sdkClient(t, reg, false, ocistream.WithCredentials(ocistream.StaticCredentials(reg.Host, ocistream.Credential{Username: testUser, Password: "nope"})))
		_, _, err := c.Manifest(t.Context(), reg.Ref("team/app", "v1"))
		if !errors.Is(err, ocistream.ErrUnauthorized) {
			t.Errorf("err = %v, want ErrUnauthorized", err)
		}
	})
}

// TestTokenExpiresDuringWalk walks a paginated tag list slowly with 1-second tokens:
// the walk crosses several expiries and completes, renewing tokens as it goes.
func TestTokenExpiresDuringWalk(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken, Issuer: issuerOptions{Lifetime: time.Second}})
	img := makeImage(5, []int64{100}, amd64)
	var want []string
	for i := range 6 {
		tag := fmt.Sprintf("t%d", i)
		want = append(want, tag)
		pushImage(t, reg, "team/app", tag, img)
	}
	c := sdkClient(t, reg, true)
	var got []string
	for tag, err := range c.Tags(t.Context(), reg.Host+"/team/app", &ocistream.ListOptions{PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tag)
		time.Sleep(700 * time.Millisecond)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tags = %v, want %v", got, want)
	}
	if grants := reg.Issuer.Counts().POSTPassword; grants < 3 {
		t.Errorf("token grants = %d, want several: the walk crossed expiries", grants)
	}
}

// TestTokenExpiresMidPull pulls a large blob through a slow proxy with 1-second
// tokens; resumed requests after a drop need a fresh token.
func TestTokenExpiresMidPull(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken, Issuer: issuerOptions{Lifetime: time.Second}})
	img := makeImage(6, []int64{4 << 20}, amd64)
	pushImage(t, reg, "team/app", "v1", img)
	fp := newFaultProxy(t, mustURL(t, reg.URL))
	fp.Stall(1<<20, 2500*time.Millisecond, 1) // the first blob GET hangs past the token's life
	c := sdkClient(t, reg, true, ocistream.WithPlainHTTP(fp.Host, hostOfURL(reg.Issuer.Realm)), ocistream.WithReadTimeout(2*time.Second),
		ocistream.WithCredentials(ocistream.StaticCredentials(fp.Host, ocistream.Credential{Username: testUser, Password: testPassword})))
	rc, err := c.Blob(t.Context(), fp.Host+"/team/app", img.LayerDescs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, img.Layers[0]) {
		t.Fatalf("blob: %d bytes, %v", len(got), err)
	}
}

// TestLoggerNeverSeesCredentials checks the debug log of a credentialed session.
func TestLoggerNeverSeesCredentials(t *testing.T) {
	reg := newRegistry(t, registryOptions{Auth: authToken})
	pushImage(t, reg, "team/app", "v1", makeImage(7, []int64{100}, amd64))
	var buf safeBuffer
	c := sdkClient(t, reg, true, ocistream.WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if _, _, err := c.Manifest(t.Context(), reg.Ref("team/app", "v1")); err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	if !strings.Contains(log, "manifests/v1") {
		t.Errorf("debug log lacks the request chain:\n%s", log)
	}
	for _, secret := range []string{testPassword, "Bearer ", "Basic "} {
		if strings.Contains(log, secret) {
			t.Errorf("debug log contains %q", secret)
		}
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
