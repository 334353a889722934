package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/objectlog"
)

const (
	// AdminTokenPrefix starts every generated admin token, so a leaked one
	// is recognisable (secret scanners, logs).
	AdminTokenPrefix = "sla_"
	// adminCacheTTL bounds how long a cached admin token hash is trusted
	// when no Watch reports generation changes.
	adminCacheTTL = 30 * time.Second
)

// adminRecord is config/admin.json. Only the hash is stored: whoever can
// read the bucket cannot use the API with it.
type adminRecord struct {
	SHA256 string `json:"sha256"`
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func newAdminToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return AdminTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// readAdmin reads the stored hash; nil, with no error, if none is stored.
func (r *Registry) readAdmin(ctx context.Context) ([]byte, objectlog.Version, error) {
	data, info, err := r.store.Get(ctx, adminKey)
	if errors.Is(err, objectlog.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read admin token hash: %w", err)
	}
	var rec adminRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, "", fmt.Errorf("decode %s: %w", adminKey, err)
	}
	h, err := hex.DecodeString(rec.SHA256)
	if err != nil || len(h) != sha256.Size {
		return nil, "", fmt.Errorf("decode %s: sha256 is not %d hex bytes", adminKey, sha256.Size)
	}
	return h, info.Version, nil
}

func adminData(hash []byte) []byte {
	return mustJSON(adminRecord{SHA256: hex.EncodeToString(hash)})
}

// EnsureAdminToken makes sure the store holds an admin token hash.
//
// With fromEnv set, its hash is stored (replacing a different one) and it
// is returned, created false. Otherwise, if a hash is stored, the token
// cannot be shown again: it returns "", false. Otherwise it generates a
// token and creates the hash; of processes racing to do so, only the one
// whose hash was stored returns the token with created true — it must show
// it to the operator, for no one can read it back.
func (r *Registry) EnsureAdminToken(ctx context.Context, fromEnv string) (token string, created bool, err error) {
	if fromEnv != "" {
		return fromEnv, false, r.setAdminHash(ctx, hashToken(fromEnv))
	}
	h, _, err := r.readAdmin(ctx)
	if err != nil {
		return "", false, err
	}
	if h != nil {
		r.cacheAdmin(h)
		return "", false, nil
	}
	token = newAdminToken()
	h = hashToken(token)
	data := adminData(h)
	_, err = r.store.PutIfAbsent(ctx, adminKey, data)
	if err != nil && lost(err) {
		if cur, _, rerr := r.readAdmin(ctx); rerr == nil && subtle.ConstantTimeCompare(cur, h) == 1 {
			err = nil // an earlier attempt of ours won (the token is random: no one else has its hash)
		} else {
			h, _, err = r.readAdmin(ctx) // another process won
			if err != nil {
				return "", false, err
			}
			r.cacheAdmin(h)
			return "", false, nil
		}
	}
	if err != nil {
		return "", false, fmt.Errorf("create admin token hash: %w", err)
	}
	r.cacheAdmin(h)
	r.changed(ctx)
	return token, true, nil
}

// setAdminHash stores h unless it is stored already.
func (r *Registry) setAdminHash(ctx context.Context, h []byte) error {
	data := adminData(h)
	for attempt := 1; ; attempt++ {
		cur, v, err := r.readAdmin(ctx)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(cur, h) == 1 {
			r.cacheAdmin(h)
			return nil
		}
		if cur == nil {
			_, err = r.store.PutIfAbsent(ctx, adminKey, data)
		} else {
			_, err = r.store.PutIfMatch(ctx, adminKey, data, v)
		}
		if err == nil {
			r.cacheAdmin(h)
			r.changed(ctx)
			return nil
		}
		if !lost(err) {
			return fmt.Errorf("store admin token hash: %w", err)
		}
		if attempt == maxWriteAttempts {
			return busyError("admin token", adminKey, err)
		}
		if err := pause(ctx, attempt); err != nil {
			return err
		}
	}
}

func (r *Registry) cacheAdmin(h []byte) {
	r.admin.Lock()
	defer r.admin.Unlock()
	r.admin.hash = h
	r.admin.fetched = r.now()
	r.admin.generation = r.seenGeneration.Load()
}

// CheckAdminToken reports whether token is the admin token, comparing
// hashes in constant time. The stored hash is cached; it is read again
// when Watch has seen the generation change, or after 30 s. When the
// store cannot be read, the last hash read is used; with none, every
// token is refused.
func (r *Registry) CheckAdminToken(ctx context.Context, token string) bool {
	if token == "" {
		return false
	}
	stored := r.adminHash(ctx)
	return stored != nil && subtle.ConstantTimeCompare(hashToken(token), stored) == 1
}

func (r *Registry) adminHash(ctx context.Context) []byte {
	// Holding the lock across the read makes concurrent checks share it.
	r.admin.Lock()
	defer r.admin.Unlock()
	gen := r.seenGeneration.Load()
	now := r.now()
	if !r.admin.fetched.IsZero() && gen == r.admin.generation && now.Sub(r.admin.fetched) < adminCacheTTL {
		return r.admin.hash
	}
	h, _, err := r.readAdmin(ctx)
	if err != nil {
		r.Log.Warn().Err(err).Msg("controlplane: cannot read the admin token hash; using the last one read")
		return r.admin.hash
	}
	r.admin.hash, r.admin.fetched, r.admin.generation = h, now, gen
	return h
}
