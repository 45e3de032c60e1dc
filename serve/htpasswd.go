package serve

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// maxCost is the highest bcrypt cost accepted: one check at cost 14 takes about a
// second.
const maxCost = 14

// maxAuthCache bounds the credentials remembered as checked.
const maxAuthCache = 1024

// Htpasswd is a set of users and bcrypt password hashes, as `htpasswd -B` writes them
// and the reference registry reads them. A bcrypt check costs tens of milliseconds, so
// the credentials that passed are remembered (as a SHA-256 of user and password, at
// most 1024 of them): a client that sends the same basic auth with every request
// pays the cost once.
type Htpasswd struct {
	users map[string][]byte // user → bcrypt hash

	mu   sync.Mutex
	good map[[sha256.Size]byte]bool
}

// LoadHtpasswd reads an htpasswd file (see [ParseHtpasswd]).
func LoadHtpasswd(path string) (*Htpasswd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	defer f.Close()
	h, err := ParseHtpasswd(f)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	return h, nil
}

// ParseHtpasswd parses lines of "user:hash", where hash is bcrypt ($2a$, $2b$ or $2y$).
// Blank lines and lines starting with # are skipped. A cost above 14 is refused. Any other hash (MD5, SHA-1,
// crypt, plain text) is refused with the line number, as is a file with no user.
func ParseHtpasswd(r io.Reader) (*Htpasswd, error) {
	h := &Htpasswd{users: make(map[string][]byte), good: make(map[[sha256.Size]byte]bool)}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:hash", line)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: user %s: not a bcrypt hash (create it with htpasswd -B)", line, user)
		}
		if cost > maxCost {
			return nil, fmt.Errorf("line %d: user %s: bcrypt cost %d is above %d, each login would take seconds", line, user, cost, maxCost)
		}
		h.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(h.users) == 0 {
		return nil, fmt.Errorf("no user")
	}
	return h, nil
}

// Check reports whether password is user's.
func (h *Htpasswd) Check(user, password string) bool {
	hash, ok := h.users[user]
	if !ok {
		// Spend the same time as for a known user, not to tell which users exist.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + password))
	h.mu.Lock()
	known := h.good[key]
	h.mu.Unlock()
	if known {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.mu.Lock()
	if len(h.good) >= maxAuthCache {
		clear(h.good)
	}
	h.good[key] = true
	h.mu.Unlock()
	return true
}

// dummyHash is a bcrypt hash of nothing anyone types, compared against for unknown
// users; made once, when first needed.
var dummyHash = sync.OnceValue(func() []byte {
	b, _ := bcrypt.GenerateFromPassword([]byte("\x00unknown user"), bcrypt.DefaultCost)
	return b
})
