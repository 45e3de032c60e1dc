package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
)

// maxPEMFile bounds a certificate or key file: real ones are a few KiB, bundles a few
// hundred.
const maxPEMFile = 4 << 20

// tlsConfig builds the entry's TLS configuration, reading the files it names; nil
// when the entry configures no TLS.
func (e *entry) tlsConfig() (*tls.Config, error) {
	if len(e.caFiles) == 0 && len(e.clientPairs) == 0 && !e.skipVerify {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: e.skipVerify} //nolint:gosec // skip_verify is the user's explicit choice for this host
	if len(e.caFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range e.caFiles {
			data, err := readPEM(f)
			if err != nil {
				return nil, fmt.Errorf("ca %w", err)
			}
			if !pool.AppendCertsFromPEM(data) {
				return nil, fmt.Errorf("ca %s: no PEM certificate in the file", f)
			}
		}
		tc.RootCAs = pool
	}
	for _, p := range e.clientPairs {
		certPEM, err := readPEM(p[0])
		if err != nil {
			return nil, fmt.Errorf("client certificate %w", err)
		}
		keyPEM := certPEM
		if p[1] != "" {
			if keyPEM, err = readPEM(p[1]); err != nil {
				return nil, fmt.Errorf("client key %w", err)
			}
		} else if !holdsKey(certPEM) {
			return nil, fmt.Errorf("client certificate %s: no private key in the file and no key file given", p[0])
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			if p[1] == "" {
				return nil, fmt.Errorf("client certificate %s: %w", p[0], err)
			}
			return nil, fmt.Errorf("client certificate %s with key %s: %w", p[0], p[1], err)
		}
		tc.Certificates = append(tc.Certificates, cert)
	}
	return tc, nil
}

// readPEM reads a certificate or key file, bounded; its error starts with the path.
func readPEM(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPathError(err))
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxPEMFile)
	}
	return data, nil
}

// holdsKey reports whether data holds a PEM private key block.
func holdsKey(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		switch b.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			return true
		}
	}
}
