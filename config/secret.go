package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
)

// Masked is how a set [Secret] renders everywhere but [Secret.Reveal].
const Masked = "<secret>"

// Secret is a credential. Every way of rendering it (fmt verbs, String,
// GoString, YAML, JSON, text and slog) gives [Masked], or "" when it is
// empty so that an unset secret stays visible. Only [Secret.Reveal] returns
// the value.
type Secret string

// Reveal returns the secret's value, for the one call that needs it.
func (s Secret) Reveal() string { return string(s) }

// String returns [Masked], or "" if s is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Masked
}

// GoString renders s for %#v: a quoted [Secret.String].
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format renders s for every fmt verb as [Secret.String] would be, so no
// verb (%x, %d, %q) reaches the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// MarshalYAML renders s as [Secret.String].
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON renders s as [Secret.String], quoted. (Both renderings are
// fixed strings that need no JSON escaping; encoding/json escapes < and >
// itself unless told not to.)
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText renders s as [Secret.String].
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue renders s as [Secret.String] in slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

var (
	_ fmt.Stringer   = Secret("")
	_ fmt.GoStringer = Secret("")
	_ fmt.Formatter  = Secret("")
	_ json.Marshaler = Secret("")
	_ slog.LogValuer = Secret("")
)
