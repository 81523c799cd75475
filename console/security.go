package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Bounds on what a request may carry and take.
const (
	// maxBody is the largest request body: the forms are a few hundred
	// bytes.
	maxBody = 64 << 10
	// requestTimeout bounds the handling of one request, the JetStream
	// reads it makes included. Replays and purges run beyond it, in the
	// background.
	requestTimeout = 30 * time.Second
	// maxUserLen bounds the user name shown and logged.
	maxUserLen = 128
)

// contentSecurityPolicy allows the console's own stylesheet and script
// and nothing else: no inline script or style, no frames, no other
// origins, forms posted only back to the console.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

type userKey struct{}

// userOf returns the signed-in user of r, "" when none is known.
func userOf(r *http.Request) string {
	u, _ := r.Context().Value(userKey{}).(string)
	return u
}

// protect wraps the console's routes in its defences, outermost first:
// security headers, bounds on the request, authentication, cross-origin
// protection for every unsafe method, and the read-only refusal.
func (c *Console) protect(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.log.Warn("console refused a cross-origin request",
			zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("user", userOf(r)))
		c.fail(w, r, http.StatusForbidden, "Refused: cross-origin request",
			"This request came from another site. Changes can only be made from the console's own pages.")
	}))
	h := next
	h = c.readOnlyGuard(h)
	h = cop.Handler(h)
	h = c.authenticate(h)
	h = bound(h)
	h = securityHeaders(h)
	mux := http.NewServeMux()
	// Probes need no credentials and learn nothing.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/", h)
	return mux
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// bound limits the request body and the time spent on a request.
func bound(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authenticate requires the trusted user header and basic credentials,
// each when configured, and records who the user is.
func (c *Console) authenticate(next http.Handler) http.Handler {
	var wantUser, wantPassword [sha256.Size]byte
	basic := c.cfg.BasicAuthUser != ""
	if basic {
		wantUser = sha256.Sum256([]byte(c.cfg.BasicAuthUser))
		wantPassword = sha256.Sum256([]byte(c.cfg.BasicAuthPassword))
	}
	header := c.cfg.TrustedUserHeader
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var user string
		if header != "" {
			user = cleanUser(r.Header.Get(header))
			if user == "" {
				c.log.Warn("console refused a request without the trusted user header",
					zap.String("header", header), zap.String("remote", r.RemoteAddr))
				http.Error(w, "refused: this console is reached through its authenticating proxy only", http.StatusForbidden)
				return
			}
		}
		if basic {
			u, p, ok := r.BasicAuth()
			// Both comparisons always run, on fixed-size digests, so the
			// time taken tells nothing of either value.
			gotUser, gotPassword := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
			match := subtle.ConstantTimeCompare(gotUser[:], wantUser[:]) & subtle.ConstantTimeCompare(gotPassword[:], wantPassword[:])
			if !ok || match != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="herald console", charset="UTF-8"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			if user == "" {
				user = cleanUser(u)
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// cleanUser bounds a user name from a header or credentials and keeps
// only printable characters, for the page and the log.
func cleanUser(s string) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || isBidi(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > maxUserLen {
		s = s[:maxUserLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// readOnlyGuard refuses every unsafe method in read-only mode.
func (c *Console) readOnlyGuard(next http.Handler) http.Handler {
	if !c.cfg.ReadOnly {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
		default:
			c.fail(w, r, http.StatusForbidden, "Refused: read-only console",
				"This console runs read-only (console.read_only or --read-only): it changes nothing. Use herald dlq, or a console without read-only.")
		}
	})
}
