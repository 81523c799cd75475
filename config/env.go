package config

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

const envPrefix = "HERALD_"

// maxRateLimits bounds the rate-limit index a variable may name.
const maxRateLimits = 1000

// LookupEnv returns the value of name in environ; a later entry wins, as
// with os/exec.
func LookupEnv(environ []string, name string) string {
	for _, kv := range slices.Backward(environ) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// leaf is one scalar field the environment can set.
type leaf struct {
	key   string // yaml path: worker.shutdown_grace
	env   string // variable suffix: WORKER_SHUTDOWN_GRACE
	index []int  // field index from the struct walked
}

// leaves lists the scalar fields of struct type t, recursing into structs
// but not into maps, slices or pointers.
func leaves(t reflect.Type, key, env string, index []int) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlKey(f)
		k, e := join(key, name), strings.ToUpper(name)
		if env != "" {
			e = env + "_" + e
		}
		idx := append(slices.Clip(index), i)
		switch f.Type.Kind() {
		case reflect.Struct:
			out = append(out, leaves(f.Type, k, e, idx)...)
		case reflect.Map, reflect.Slice, reflect.Pointer:
		default:
			out = append(out, leaf{key: k, env: e, index: idx})
		}
	}
	return out
}

// applyEnv overlays the HERALD_* variables of environ onto c, recording in
// set the keys they give.
func applyEnv(c *Config, environ []string, set setKeys) []error {
	vars := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) {
			vars[k] = v // a later entry wins
		}
	}
	static := make(map[string]leaf)
	for _, l := range leaves(reflect.TypeFor[Config](), "", "", nil) {
		static[envPrefix+l.env] = l
	}
	var errs []error
	for _, name := range sortedKeys(vars) {
		value := vars[name]
		rest := strings.TrimPrefix(name, envPrefix)
		var err error
		switch l, ok := static[name]; {
		case ok:
			err = setLeaf(refValue(c), l, value)
			set[l.key] = fromEnv
		case serviceLink(rest, value):
			continue // set by the kubelet for a Service, not by the user
		case strings.HasPrefix(rest, "RATE_LIMITS_"):
			err = setRateLimit(c, strings.TrimPrefix(rest, "RATE_LIMITS_"), value)
		case strings.HasPrefix(rest, "APPS_"):
			err = setApp(c, strings.TrimPrefix(rest, "APPS_"), value, set)
		case ownedSection(rest):
			err = errNoSetting
		default:
			continue // not a setting of this package (HERALD_CONFIG)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errs
}

// ownedSection reports whether a variable (without HERALD_) lies in a
// section this package owns, where it must name a setting.
func ownedSection(rest string) bool {
	for _, s := range []string{"NATS_", "REDIS_", "WORKER_", "RECEIVER_", "SUBSCRIPTIONS_", "CONSOLE_", "RETRY_", "DEDUP_", "RATE_LIMITS_", "APPS_"} {
		if strings.HasPrefix(rest, s) {
			return true
		}
	}
	return false
}

// Kubernetes gives every pod, unless its spec sets enableServiceLinks:
// false, Docker-link variables for each Service in its namespace. A Service
// named herald-worker yields HERALD_WORKER_SERVICE_HOST=10.0.0.7,
// HERALD_WORKER_SERVICE_PORT=8080, HERALD_WORKER_SERVICE_PORT_HTTP=8080,
// HERALD_WORKER_PORT=tcp://10.0.0.7:8080 and HERALD_WORKER_PORT_8080_TCP
// with its _PROTO, _PORT and _ADDR: all inside herald's prefix, none a
// setting. They are recognised by name and value together, so a typo of a
// real setting is still reported.
var (
	linkName = regexp.MustCompile(`^[A-Z0-9_]+?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT|PORT_[0-9]{1,5}_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$`)
	linkAddr = regexp.MustCompile(`^(tcp|udp|sctp)://[0-9A-Fa-f.:\[\]]+:[0-9]{1,5}$`)
)

// serviceLink reports whether name (without HERALD_) and value are a
// Kubernetes service-link variable.
func serviceLink(name, value string) bool {
	m := linkName.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	kind := m[1]
	switch {
	case kind == "SERVICE_HOST", strings.HasSuffix(kind, "_ADDR"):
		return net.ParseIP(value) != nil
	case kind == "PORT", strings.HasSuffix(kind, "_TCP"), strings.HasSuffix(kind, "_UDP"), strings.HasSuffix(kind, "_SCTP"):
		return linkAddr.MatchString(value)
	case strings.HasSuffix(kind, "_PROTO"):
		return value == "tcp" || value == "udp" || value == "sctp"
	default: // SERVICE_PORT, SERVICE_PORT_<NAME>, PORT_<n>_<PROTO>_PORT
		n, err := strconv.Atoi(value)
		return err == nil && n > 0 && n <= 65535 && value == strconv.Itoa(n)
	}
}

// errNoSetting reports a variable under a known section that names no key.
var errNoSetting = errors.New("no such setting")

// setLeaf sets leaf l of struct v from value.
func setLeaf(v reflect.Value, l leaf, value string) error {
	if err := setScalar(v.FieldByIndex(l.index), value); err != nil {
		return fmt.Errorf("%s: %w", l.key, err)
	}
	return nil
}

// setRateLimit handles RATE_LIMITS_<index>_<FIELD>.
func setRateLimit(c *Config, rest, value string) error {
	num, field, ok := strings.Cut(rest, "_")
	i, err := strconv.Atoi(num)
	if !ok || err != nil || i < 0 || num != strconv.Itoa(i) {
		return errNoSetting
	}
	var l leaf
	for _, cand := range leaves(reflect.TypeFor[RateLimit](), fmt.Sprintf("rate_limits[%d]", i), "", nil) {
		if cand.env == field {
			l = cand
		}
	}
	if l.key == "" {
		return errNoSetting
	}
	if i >= maxRateLimits {
		return fmt.Errorf("%s: at most %d rate limits", l.key, maxRateLimits)
	}
	if i >= len(c.RateLimits) {
		if value == "" {
			return nil // nothing to empty
		}
		c.RateLimits = append(c.RateLimits, make([]RateLimit, i+1-len(c.RateLimits))...)
	}
	return setLeaf(reflect.ValueOf(&c.RateLimits[i]).Elem(), l, value)
}

// setApp handles APPS_<APP>_<PLATFORM>_<FIELD>. <APP> is an app's name
// upper-cased, with every character other than a letter or digit written
// as _; an app no name matches is created under the lower-cased <APP>.
func setApp(c *Config, rest, value string, set setKeys) error {
	type platform struct {
		env, key string
		typ      reflect.Type
		field    func(*App) reflect.Value
	}
	platforms := []platform{
		{"WECHAT", "wechat", reflect.TypeFor[WeChatApp](), func(a *App) reflect.Value { return reflect.ValueOf(&a.WeChat).Elem() }},
		{"ALIPAY", "alipay", reflect.TypeFor[AlipayApp](), func(a *App) reflect.Value { return reflect.ValueOf(&a.Alipay).Elem() }},
	}
	for _, p := range platforms {
		for _, l := range leaves(p.typ, "", "", nil) {
			segment, ok := strings.CutSuffix(rest, "_"+p.env+"_"+l.env)
			if !ok {
				continue
			}
			if segment == "" {
				return errNoSetting
			}
			name, err := appNamed(c, segment)
			if err != nil {
				return err
			}
			app := c.Apps[name]
			ptr := p.field(&app)
			if ptr.IsNil() {
				if value == "" {
					return nil // nothing to empty
				}
				ptr.Set(reflect.New(p.typ))
				ptr.Interface().(defaulter).setDefaults()
			}
			l.key = "apps." + name + "." + p.key + "." + l.key
			err = setLeaf(ptr.Elem(), l, value)
			set[l.key] = fromEnv
			if c.Apps == nil {
				c.Apps = make(map[string]App)
			}
			c.Apps[name] = app
			return err
		}
	}
	return errNoSetting
}

// appNamed finds the app whose variable segment is segment, or names a new
// one.
func appNamed(c *Config, segment string) (string, error) {
	var found []string
	for _, name := range sortedKeys(c.Apps) {
		if envSegment(name) == segment {
			found = append(found, name)
		}
	}
	switch len(found) {
	case 0:
		return strings.ToLower(segment), nil
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("matches apps %s; rename all but one", strings.Join(found, ", "))
	}
}

// envSegment is how an app's name appears in a variable.
func envSegment(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		default:
			return '_'
		}
	}, name)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
