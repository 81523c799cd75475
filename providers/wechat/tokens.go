package wechat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Token is an access token as the replicas share it.
type Token struct {
	Value string
	// RefreshAt is when a replica should fetch the next token; the current
	// one stays usable until ExpiresAt.
	RefreshAt time.Time
	ExpiresAt time.Time
}

// TokenStore shares one access token per app between replicas: Redis in
// production (redisstore.Tokens), [MemoryTokens] in a single process.
// Implementations are safe for concurrent use.
type TokenStore interface {
	// Get returns the app's token, or [ErrNoToken] when none is stored.
	Get(ctx context.Context, appID string) (Token, error)
	// Put stores the app's token until its ExpiresAt.
	Put(ctx context.Context, appID string, t Token) error
	// Invalidate deletes the app's token only if its value is token, so a
	// replica holding a stale token cannot delete a newer one.
	Invalidate(ctx context.Context, appID, token string) error
	// Lock takes the app's refresh lock for at most ttl. When acquired is
	// false another holder has it; unlock releases it only if still held
	// by this caller.
	Lock(ctx context.Context, appID string, ttl time.Duration) (unlock func(), acquired bool, err error)
}

// MemoryTokens is a [TokenStore] for one process (herald dev, tests).
type MemoryTokens struct {
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]Token
	locks  map[string]memoryLock
}

type memoryLock struct {
	owner string
	until time.Time
}

var _ TokenStore = (*MemoryTokens)(nil)

// NewMemoryTokens returns an empty in-process token store.
func NewMemoryTokens() *MemoryTokens {
	return &MemoryTokens{
		now:    time.Now,
		tokens: make(map[string]Token),
		locks:  make(map[string]memoryLock),
	}
}

// Get implements [TokenStore].
func (m *MemoryTokens) Get(_ context.Context, appID string) (Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[appID]
	if !ok || !m.now().Before(t.ExpiresAt) {
		delete(m.tokens, appID)
		return Token{}, ErrNoToken
	}
	return t, nil
}

// Put implements [TokenStore].
func (m *MemoryTokens) Put(_ context.Context, appID string, t Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[appID] = t
	return nil
}

// Invalidate implements [TokenStore].
func (m *MemoryTokens) Invalidate(_ context.Context, appID, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tokens[appID]; ok && t.Value == token {
		delete(m.tokens, appID)
	}
	return nil
}

// Lock implements [TokenStore].
func (m *MemoryTokens) Lock(_ context.Context, appID string, ttl time.Duration) (func(), bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if l, ok := m.locks[appID]; ok && now.Before(l.until) {
		return nil, false, nil
	}
	owner := newOwner()
	m.locks[appID] = memoryLock{owner: owner, until: now.Add(ttl)}
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if l, ok := m.locks[appID]; ok && l.owner == owner {
			delete(m.locks, appID)
		}
	}, true, nil
}

// newOwner returns a random lock owner id.
func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
