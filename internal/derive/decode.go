package derive

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// refusedKeys are the keys of build tools that run commands inside the
// image. Users coming from Dockerfiles reach for them first, so they get
// an explanation rather than "unknown key".
var refusedKeys = []string{"run", "RUN", "build_commands", "commands", "shell"}

// runRefusal is the error for a refused key: why it cannot work, and what
// to declare instead.
func runRefusal(name, key string) error {
	return fmt.Errorf("derive[%s]: %q would need to execute the image, which Entrepot does not do; "+
		"declare the result instead: files (with mode, uid, gid) cover mkdir, chmod, chown and writing files; "+
		"env, user, workdir, volumes, entrypoint and cmd cover the rest", name, key)
}

// The keys a spec and a file may have, read from their yaml tags so that
// they cannot drift from the structs.
var (
	specKeys = yamlKeys(reflect.TypeFor[Spec]())
	fileKeys = yamlKeys(reflect.TypeFor[File]())
)

// Decode reads a YAML list of specs, as written under the configuration's
// "derive:" key, and validates each of them. Unknown keys are errors, so
// that a typo (evn:) fails instead of being ignored, and the keys of
// command-running build tools (run:, shell:…) are refused with the reason.
// It reads one YAML document; an empty one is an empty list.
func Decode(r io.Reader) ([]Spec, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var specs []Spec
	if err := dec.Decode(&specs); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("more than one YAML document")
		}
		return nil, err
	}
	var errs []error
	seen := make(map[string]bool, len(specs))
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		if name := specs[i].Name; name != "" && seen[name] {
			errs = append(errs, fmt.Errorf("derive[%s]: name is used twice", name))
		}
		seen[specs[i].Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return specs, nil
}

// UnmarshalYAML decodes a spec strictly, under any YAML decoder: a
// decoder's KnownFields does not reach inside a type with its own
// UnmarshalYAML, so the keys are checked here. This lets the
// configuration embed []Spec and still refuse run: with its explanation.
// Errors start with "line N: ", as yaml.v3's own do.
func (s *Spec) UnmarshalYAML(n *yaml.Node) error {
	name := mappingValue(n, "name")
	where := "derive[" + name + "]"
	err := forEachKey(n, func(key, value *yaml.Node) error {
		if slices.Contains(refusedKeys, key.Value) {
			return fmt.Errorf("line %d: %w", key.Line, runRefusal(name, key.Value))
		}
		if err := checkKey(key, specKeys, where); err != nil {
			return err
		}
		if value = resolve(value); key.Value == "files" && value.Kind == yaml.SequenceNode {
			for j, file := range value.Content {
				err := forEachKey(file, func(key, _ *yaml.Node) error {
					return checkKey(key, fileKeys, fmt.Sprintf("%s.files[%d]", where, j))
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	type plain Spec // the same fields without this method, to not recurse
	return n.Decode((*plain)(s))
}

// maxMergeDepth bounds how deep forEachKey follows merge keys, so that a
// document whose anchors merge each other cannot loop.
const maxMergeDepth = 8

// forEachKey calls fn for each key of a mapping node, including the keys
// that merge keys ("<<: *defaults") bring in, which yaml.v3 would
// otherwise decode without checking. A node that is not a mapping has no
// keys: decoding it reports the type error.
func forEachKey(n *yaml.Node, fn func(key, value *yaml.Node) error) error {
	return forEachKeyDepth(n, fn, 0)
}

func forEachKeyDepth(n *yaml.Node, fn func(key, value *yaml.Node) error, depth int) error {
	if n = resolve(n); n.Kind != yaml.MappingNode {
		return nil
	}
	if depth > maxMergeDepth {
		return fmt.Errorf("line %d: merge keys nested too deep", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.ShortTag() != "!!merge" {
			if err := fn(key, value); err != nil {
				return err
			}
			continue
		}
		merged := []*yaml.Node{value} // "<<: *a" or "<<: [*a, *b]"
		if value = resolve(value); value.Kind == yaml.SequenceNode {
			merged = value.Content
		}
		for _, m := range merged {
			if err := forEachKeyDepth(m, fn, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for range maxMergeDepth {
		if n.Kind != yaml.AliasNode || n.Alias == nil {
			return n
		}
		n = n.Alias
	}
	return n
}

// checkKey refuses a key that is not one of known.
func checkKey(key *yaml.Node, known map[string]bool, where string) error {
	if !known[key.Value] {
		return fmt.Errorf("line %d: %s: unknown key %q", key.Line, where, key.Value)
	}
	return nil
}

// mappingValue is the scalar value of key in a mapping node, or "".
func mappingValue(n *yaml.Node, key string) string {
	value := ""
	_ = forEachKey(n, func(k, v *yaml.Node) error {
		if v = resolve(v); k.Value == key && v.Kind == yaml.ScalarNode {
			value = v.Value
		}
		return nil
	})
	return value
}

// yamlKeys lists the yaml keys of a struct's fields.
func yamlKeys(t reflect.Type) map[string]bool {
	keys := make(map[string]bool, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default
		}
		keys[name] = true
	}
	return keys
}
