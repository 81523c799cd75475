package config

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Print writes c as YAML that [Load] reads back: every key, in the order of
// the contract, with durations as "30s" or "14d". Secrets print as [Masked]
// (or "" when unset) and passwords and tokens in the NATS and Redis URLs as
// xxxxx.
func (c *Config) Print(w io.Writer) error {
	shown := *c
	shown.NATS.URL = redactURLs(c.NATS.URL)
	shown.Redis.URL = redactURLs(c.Redis.URL)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(encode(reflect.ValueOf(shown), false)); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	return nil
}

// encode builds the YAML node for v. Structs inside lists are written on
// one line, as the contract writes rate limits.
func encode(v reflect.Value, inList bool) *yaml.Node {
	switch {
	case v.Type() == durationType:
		return str(FormatDuration(time.Duration(v.Int())))
	case v.Type() == secretType:
		return str(v.Interface().(Secret).String())
	case v.Type() == byteSizeType:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: ByteSize(v.Int()).String()}
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		if inList {
			n.Style = yaml.FlowStyle
		}
		for i := range v.NumField() {
			f := v.Field(i)
			if f.Kind() == reflect.Pointer && f.IsNil() {
				continue
			}
			n.Content = append(n.Content, str(yamlKey(v.Type().Field(i))), encode(f, false))
		}
		return n
	case reflect.Pointer:
		return encode(v.Elem(), inList)
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		for _, k := range keys {
			n.Content = append(n.Content, str(k), encode(v.MapIndex(reflect.ValueOf(k)), false))
		}
		if len(keys) == 0 {
			n.Style = yaml.FlowStyle
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			n.Content = append(n.Content, encode(v.Index(i), true))
		}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		return n
	case reflect.Int:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatInt(v.Int(), 10)}
	case reflect.Float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatFloat(v.Float(), 'g', -1, 64)}
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatBool(v.Bool())}
	default:
		return str(v.String())
	}
}

// str is a string scalar; the encoder quotes it where YAML would otherwise
// read it as something else ("2021000000000000", "*", "").
func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// FormatDuration writes d as [ParseDuration] reads it: whole days from two
// days up as "14d", anything else as Go does without trailing zero units
// ("5m", not "5m0s").
func FormatDuration(d time.Duration) string {
	if d >= 2*day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// redactURLs masks the credentials in a URL or comma-separated list of
// URLs: a password, or a user name given alone (a NATS token). A URL that
// does not parse is masked whole.
func redactURLs(list string) string {
	if list == "" {
		return ""
	}
	parts := strings.Split(list, ",")
	for i, s := range parts {
		s = strings.TrimSpace(s)
		bare := !strings.Contains(s, "://") // host:port, as the NATS client accepts
		if bare {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		switch {
		case err != nil:
			parts[i] = "xxxxx"
		case u.User == nil:
		default:
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx")
			}
			parts[i] = u.String()
			if bare {
				parts[i] = strings.TrimPrefix(parts[i], "nats://")
			}
		}
	}
	return strings.Join(parts, ",")
}
