package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The file is decoded by walking yaml.v3's node tree against the [Config]
// types rather than by yaml.Decoder with KnownFields: the walk rejects unknown
// and duplicate keys just the same, but names the full key path in every
// error, and it parses scalars with the same functions as the environment,
// so "14d" and every error message mean the same in both.

const day = 24 * time.Hour

// maxNodes bounds the nodes one file may expand to through aliases.
const maxNodes = 100_000

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	secretType   = reflect.TypeFor[Secret]()
)

// defaulter is a type that fills its defaults when the file or environment
// creates it.
type defaulter interface{ setDefaults() }

func refValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

// decoder overlays a YAML node tree onto a value, collecting every problem.
type decoder struct {
	errs   []error
	budget int
	set    setKeys // the scalar keys given
	// open holds the anchored nodes being decoded, to catch an alias
	// inside its own anchor.
	open map[*yaml.Node]bool
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if key == "" {
		key = "(top level)"
	}
	d.errs = append(d.errs, fmt.Errorf("%s: %s (line %d)", key, msg, n.Line))
}

// decode overlays node n onto v; key is n's path for messages. Structs are
// updated in place, so defaults survive; maps, slices and pointers get the
// values the file gives.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(n, key, "the file expands to more than %d nodes", maxNodes)
		}
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			d.decode(n.Content[0], v, key)
		}
		return
	case yaml.AliasNode:
		if n.Alias == nil || d.open[n.Alias] {
			d.fail(n, key, "alias %s refers to itself", n.Value)
			return
		}
		d.decode(n.Alias, v, key)
		return
	}
	if n.Anchor != "" {
		if d.open == nil {
			d.open = make(map[*yaml.Node]bool)
		}
		d.open[n] = true
		defer delete(d.open, n)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if v.Kind() != reflect.Struct {
			v.SetZero()
		}
		return
	}
	switch {
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if def, ok := p.Interface().(defaulter); ok {
			def.setDefaults()
		}
		d.decode(n, p.Elem(), key)
		v.Set(p)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, key)
	case v.Kind() == reflect.Map:
		d.decodeMap(n, v, key)
	case v.Kind() == reflect.Slice:
		d.decodeSlice(n, v, key)
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, key, "want a single value, not a %s", kindName(n))
			return
		}
		if err := setScalar(v, n.Value); err != nil {
			d.fail(n, key, "%v", err)
		}
		d.set[key] = fromFile
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "want a mapping of keys, not a %s", kindName(n))
		return
	}
	d.eachKey(n, key, func(name string, kn, vn *yaml.Node) {
		field, ok := fieldByKey(v, name)
		if !ok {
			d.fail(kn, join(key, name), "unknown key")
			return
		}
		d.decode(vn, field, join(key, name))
	}, func(mn *yaml.Node) { d.decode(mn, v, key) })
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "want a mapping of names, not a %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	d.eachKey(n, key, func(name string, kn, vn *yaml.Node) {
		if name == "" {
			d.fail(kn, key, "a name must not be empty")
			return
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(vn, elem, join(key, name))
		v.SetMapIndex(reflect.ValueOf(name), elem)
	}, func(mn *yaml.Node) { d.decode(mn, v, key) })
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "want a list, not a %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		v.SetZero() // [] reads as no list: the same as leaving the key out
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, en := range n.Content {
		d.decode(en, s.Index(i), fmt.Sprintf("%s[%d]", key, i))
	}
	v.Set(s)
}

// eachKey calls set for every key of mapping n, after merge for every
// mapping merged in with YAML's "<<" key, so that the mapping's own keys win.
func (d *decoder) eachKey(n *yaml.Node, key string, set func(name string, kn, vn *yaml.Node), merge func(*yaml.Node)) {
	var merges []*yaml.Node
	seen := make(map[string]bool, len(n.Content)/2)
	type pair struct {
		name   string
		kn, vn *yaml.Node
	}
	pairs := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			d.fail(kn, key, "keys must be plain names, not a %s", kindName(kn))
			continue
		}
		if kn.Tag == "!!merge" {
			merges = append(merges, vn)
			continue
		}
		if seen[kn.Value] {
			d.fail(kn, join(key, kn.Value), "duplicate key")
			continue
		}
		seen[kn.Value] = true
		pairs = append(pairs, pair{kn.Value, kn, vn})
	}
	for _, mn := range merges {
		m := mn
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		if m.Kind != yaml.SequenceNode {
			merge(mn)
			continue
		}
		// In a merged list, earlier mappings win over later ones.
		for i := len(m.Content) - 1; i >= 0; i-- {
			merge(m.Content[i])
		}
	}
	for _, p := range pairs {
		set(p.name, p.kn, p.vn)
	}
}

// fieldByKey is the field of struct v whose yaml key is name.
func fieldByKey(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if yamlKey(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	default:
		return "single value"
	}
}

// setScalar parses s into v, a string, [Secret], int, float64, bool,
// [time.Duration] or [ByteSize] field. The empty string sets the zero
// value. Errors quote s, except for secrets, which always parse.
func setScalar(v reflect.Value, s string) error {
	if s == "" {
		v.SetZero()
		return nil
	}
	switch {
	case v.Type() == durationType:
		dur, err := ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(dur))
	case v.Type() == byteSizeType:
		n, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Int:
		i, err := strconv.ParseInt(s, 10, strconv.IntSize)
		if err != nil {
			return fmt.Errorf("want a whole number, not %s", quote(s))
		}
		v.SetInt(i)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("want a number, not %s", quote(s))
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		// YAML's own spellings of a bool, and no others: "yes" or "on"
		// would mean one thing here and another to YAML 1.1 readers.
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			return fmt.Errorf("want true or false, not %s", quote(s))
		}
	default:
		return fmt.Errorf("cannot set a %s", v.Type())
	}
	return nil
}

// ParseDuration parses a Go duration ("30s", "1h30m") or a decimal number of
// days with the suffix d, optionally followed by a Go duration ("14d",
// "1.5d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errBadDuration(s)
		}
		return d, nil
	}
	negative := strings.HasPrefix(days, "-")
	digits := strings.TrimPrefix(strings.TrimPrefix(days, "-"), "+")
	if digits == "" || strings.Trim(digits, "0123456789.") != "" {
		return 0, errBadDuration(s)
	}
	// ParseDuration reads decimal fractions exactly: "1.5h" is 90m.
	h, err := time.ParseDuration(days + "h")
	if err != nil || h > math.MaxInt64/24 || h < math.MinInt64/24 {
		return 0, errBadDuration(s)
	}
	d := h * 24
	if rest == "" {
		return d, nil
	}
	if strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
		return 0, errBadDuration(s)
	}
	r, err := time.ParseDuration(rest)
	if err != nil {
		return 0, errBadDuration(s)
	}
	if negative {
		r = -r
	}
	sum := d + r
	if (r > 0 && sum < d) || (r < 0 && sum > d) {
		return 0, errBadDuration(s)
	}
	return sum, nil
}

func errBadDuration(s string) error {
	return fmt.Errorf("want a duration such as 30s, 5m or 14d, not %s", quote(s))
}

// quote quotes a value for an error message, shortened so that a stray
// blob does not flood the message.
func quote(s string) string {
	const limit = 40
	if r := []rune(s); len(r) > limit {
		return strconv.Quote(string(r[:limit])) + "..."
	}
	return strconv.Quote(s)
}
