package wechat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// refreshAhead is how long before expiry a token is replaced: WeChat's
	// stable token rotates 5 minutes early, keeping the old one valid, so a
	// fetch in that window returns the next token (platform-apis A.4).
	refreshAhead = 5 * time.Minute
	// lockPollMin and lockPollMax bound the wait between store checks while
	// another replica fetches the token.
	lockPollMin = 10 * time.Millisecond
	lockPollMax = 200 * time.Millisecond
	// borrowFor is how long a replica that lost the refresh race keeps using
	// the current, still valid token before it looks at the store again.
	borrowFor = 200 * time.Millisecond
)

// newToken builds the shared token for an endpoint answer received at now.
// It is refreshed refreshAhead before expiry, or half-way through a
// lifetime shorter than twice that, so a short-lived token cannot make
// every call a refresh.
func newToken(value string, expiresIn time.Duration, now time.Time) Token {
	ahead := min(refreshAhead, expiresIn/2)
	return Token{Value: value, RefreshAt: now.Add(expiresIn - ahead), ExpiresAt: now.Add(expiresIn)}
}

// tokenSource hands out the app's access token. The hot path reads a local
// copy; everything else goes through the shared store (see doc.go).
type tokenSource struct {
	appID   string
	store   TokenStore
	fetch   func(ctx context.Context) (Token, error) // calls the token endpoint
	now     func() time.Time
	lockTTL time.Duration

	cur atomic.Pointer[Token] // local copy; nil when missing or invalidated

	mu       sync.Mutex
	flight   *flight // the refresh in progress in this process, if any
	rejected string  // the token WeChat last rejected; never adopted from the store again
}

// flight is one in-process refresh; waiters share its outcome.
type flight struct {
	done  chan struct{}
	token string
	err   error
}

// get returns a token to call WeChat with.
func (s *tokenSource) get(ctx context.Context) (string, error) {
	if t := s.cur.Load(); t != nil && s.now().Before(t.RefreshAt) {
		return t.Value, nil
	}
	return s.getSlow(ctx)
}

// getSlow makes one goroutine per process refresh while the others wait
// for its outcome.
func (s *tokenSource) getSlow(ctx context.Context) (string, error) {
	for {
		s.mu.Lock()
		if t := s.cur.Load(); t != nil && s.now().Before(t.RefreshAt) {
			s.mu.Unlock()
			return t.Value, nil
		}
		f := s.flight
		if f == nil {
			f = &flight{done: make(chan struct{})}
			s.flight = f
			s.mu.Unlock()
			f.token, f.err = s.refresh(ctx)
			s.mu.Lock()
			s.flight = nil
			s.mu.Unlock()
			close(f.done)
			return f.token, f.err
		}
		s.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if f.err == nil {
			return f.token, nil
		}
		// The refreshing goroutine's own context ended; ours has not, so
		// take over.
		if isContextErr(f.err) && ctx.Err() == nil {
			continue
		}
		return "", f.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// refresh finds a fresh token in the store or, holding the store's lock,
// fetches one. Without the lock it keeps using a still valid token, or
// waits for the lock holder to store the new one.
func (s *tokenSource) refresh(ctx context.Context) (string, error) {
	wait := lockPollMin
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		stored, err := s.store.Get(ctx, s.appID)
		switch {
		case err == nil && s.now().Before(stored.RefreshAt) && s.adopt(stored, false):
			return stored.Value, nil
		case err != nil && !errors.Is(err, ErrNoToken):
			return s.orLocal(fmt.Errorf("token store get: %w", err))
		}
		unlock, acquired, lerr := s.store.Lock(ctx, s.appID, s.lockTTL)
		if lerr != nil {
			return s.orLocal(fmt.Errorf("token store lock: %w", lerr))
		}
		if acquired {
			token, err := s.fetchLocked(ctx)
			unlock()
			return token, err
		}
		// Another replica is fetching. A token that is due but not yet
		// expired still works (refresh-ahead): borrow it for a moment.
		now := s.now()
		if err == nil && now.Before(stored.ExpiresAt) && s.borrow(stored, now) {
			return stored.Value, nil
		}
		if local := s.cur.Load(); local != nil && now.Before(local.ExpiresAt) && s.borrow(*local, now) {
			return local.Value, nil
		}
		// Nothing usable: wait for the new token to be stored.
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return "", fmt.Errorf("wait for token refresh: %w", ctx.Err())
		}
		wait = min(wait*2, lockPollMax)
	}
}

// fetchLocked runs under the store lock: check the store once more (a
// replica may have just stored a token), else fetch and store one.
func (s *tokenSource) fetchLocked(ctx context.Context) (string, error) {
	if stored, err := s.store.Get(ctx, s.appID); err == nil && s.now().Before(stored.RefreshAt) && s.adopt(stored, false) {
		return stored.Value, nil
	}
	t, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	s.adopt(t, true)
	// A failed Put only costs the other replicas a fetch of their own;
	// the token itself is good.
	_ = s.store.Put(ctx, s.appID, t)
	return t.Value, nil
}

// adopt makes t the local copy, unless it is the token WeChat last
// rejected: a copy read from the store just before the rejection removed
// it there must not come back. A token fresh from the token endpoint
// (force) is taken whatever it is.
func (s *tokenSource) adopt(t Token, force bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Value == s.rejected {
		if !force {
			return false
		}
		s.rejected = ""
	}
	s.cur.Store(&t)
	return true
}

// borrow keeps a due token t locally for borrowFor (or until it expires),
// after which the store is checked again.
func (s *tokenSource) borrow(t Token, now time.Time) bool {
	t.RefreshAt = now.Add(borrowFor)
	if t.ExpiresAt.Before(t.RefreshAt) {
		t.RefreshAt = t.ExpiresAt
	}
	return s.adopt(t, false)
}

// orLocal keeps sending with the local token while it is valid when the
// store cannot be reached; without one, err is returned.
func (s *tokenSource) orLocal(err error) (string, error) {
	now := s.now()
	if local := s.cur.Load(); local != nil && now.Before(local.ExpiresAt) && s.borrow(*local, now) {
		return local.Value, nil
	}
	return "", err
}

// invalidate forgets token locally and, if the store still holds it, there.
func (s *tokenSource) invalidate(ctx context.Context, token string) error {
	s.mu.Lock()
	s.rejected = token
	if t := s.cur.Load(); t != nil && t.Value == token {
		s.cur.Store(nil)
	}
	s.mu.Unlock()
	if err := s.store.Invalidate(ctx, s.appID, token); err != nil {
		return fmt.Errorf("token store invalidate: %w", err)
	}
	return nil
}
