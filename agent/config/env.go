package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// EnvPrefix starts every override: CAPBOX_<SECTION>_<KEY>, for example
// CAPBOX_ENCODE_BITRATE_KBPS=6000 or CAPBOX_FLEET_BROKER=mqtts://...
// Outputs are addressed by index: CAPBOX_OUTPUTS_0_URL (index len(outputs)
// appends one).
const EnvPrefix = "CAPBOX_"

// ApplyEnv applies CAPBOX_* overrides from environ (os.Environ form).
// Variables whose section is not a config section are ignored, so other
// CAPBOX_ variables can coexist; a known section with an unknown key is an
// error.
func ApplyEnv(cfg *Config, environ []string) error {
	var es Errors
	root := reflect.ValueOf(cfg).Elem()
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		rest := strings.ToLower(strings.TrimPrefix(name, EnvPrefix))
		section, sf, ok := sectionOf(root, rest)
		if !ok {
			continue
		}
		key := strings.TrimPrefix(strings.TrimPrefix(rest, section), "_")
		if err := setEnv(sf, key, value); err != nil {
			es = append(es, FieldError{Path: name, Msg: err.Error()})
		}
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// sectionOf finds the top-level section a lowercased variable name starts with.
func sectionOf(root reflect.Value, rest string) (string, reflect.Value, bool) {
	t := root.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if rest == tag || strings.HasPrefix(rest, tag+"_") {
			return tag, root.Field(i), true
		}
	}
	return "", reflect.Value{}, false
}

func setEnv(section reflect.Value, key, value string) error {
	if section.Kind() == reflect.Slice { // outputs: <index>_<key>
		idxStr, field, ok := strings.Cut(key, "_")
		idx, err := strconv.Atoi(idxStr)
		if !ok || err != nil || idx < 0 || idx > section.Len() {
			return fmt.Errorf("want <index>_<key> with index 0..%d", section.Len())
		}
		if idx == section.Len() {
			section.Set(reflect.Append(section, reflect.Zero(section.Type().Elem())))
		}
		return setField(section.Index(idx), field, value)
	}
	return setField(section, key, value)
}

func setField(st reflect.Value, key, value string) error {
	t := st.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != key {
			continue
		}
		f := st.Field(i)
		ptr := reflect.New(f.Type())
		// Decode the scalar as YAML so durations, sizes, bools and numbers
		// parse exactly as they do in the file; strings stay literal.
		var err error
		if f.Kind() == reflect.String {
			ptr.Elem().SetString(value)
		} else {
			err = yaml.Unmarshal([]byte(value), ptr.Interface())
		}
		if err != nil {
			return fmt.Errorf("cannot use %q: %s", value, yamlMessage(err))
		}
		f.Set(ptr.Elem())
		return nil
	}
	return fmt.Errorf("unknown key %q", key)
}
