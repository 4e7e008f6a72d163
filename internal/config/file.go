package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// loadFile applies a YAML config file to cfg. The file is a flat mapping from
// setting name (the flag name) to value; lists may be YAML sequences or
// comma-separated strings. JSON is YAML too, so a JSON object works as well.
//
// Unknown keys are errors: a misspelt key silently ignored is a setting the
// operator believes is in force and is not.
func loadFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file: nothing to set
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: want a mapping of setting: value", path, root.Line)
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		f := fieldByName(k.Value)
		if f == nil || f.noFile {
			return fmt.Errorf("config file %s: line %d: unknown key %q", path, k.Line, k.Value)
		}
		if seen[f.name] {
			return fmt.Errorf("config file %s: line %d: %s: set twice", path, k.Line, f.name)
		}
		seen[f.name] = true
		dst := f.bind(cfg)
		_, isList := dst.(*listValue)
		text, err := nodeText(v, isList)
		if err == nil {
			err = dst.Set(text)
		}
		if err != nil {
			if f.secret {
				err = errors.New("invalid value")
			}
			return fmt.Errorf("config file %s: line %d: %s: %w", path, v.Line, f.name, err)
		}
	}
	return nil
}

// nodeText turns a YAML value into the text the field parsers take, the same
// text a flag or environment variable would carry.
func nodeText(n *yaml.Node, isList bool) (string, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return nodeText(n.Alias, isList)
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		if !isList {
			return "", errors.New("want a single value, not a list")
		}
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("line %d: list items must be plain values", item.Line)
			}
			if strings.Contains(item.Value, ",") {
				return "", fmt.Errorf("line %d: list item %q contains a comma; give one item per entry", item.Line, item.Value)
			}
			items = append(items, item.Value)
		}
		return strings.Join(items, ","), nil
	default:
		return "", errors.New("want a value or a list, not a mapping")
	}
}
