package config

import (
	"fmt"

	"github.com/entrepot/entrepot/internal/oci"
	yaml "go.yaml.in/yaml/v3"
)

// fileStorage is the storage section. Sizes, fractions and durations are
// strings, parsed here so that errors can name the key; yaml.v3 turns a
// number (max_size: 1048576, high_watermark: 0.95) into its string.
type fileStorage struct {
	MaxSize       *string  `yaml:"max_size"`
	HighWatermark *string  `yaml:"high_watermark"`
	LowWatermark  *string  `yaml:"low_watermark"`
	MaxIdle       *string  `yaml:"max_idle"`
	Pin           []string `yaml:"pin"`
	S3            *fileS3  `yaml:"s3"`
}

// fileWarm is the warm section.
type fileWarm struct {
	Every  *string         `yaml:"every"`
	Images []fileWarmImage `yaml:"images"`
}

// fileWarmImage is one entry of warm.images, written either as the image
// alone or as a mapping with platforms.
type fileWarmImage struct {
	Image     string   `yaml:"image"`
	Platforms []string `yaml:"platforms"`
	// short is the entry written as a string, named warm.images[i] in
	// errors rather than warm.images[i].image.
	short bool
}

// warmImageMapping is fileWarmImage without its UnmarshalYAML, so that
// decoding into it does not call that again.
type warmImageMapping fileWarmImage

// UnmarshalYAML reads an entry in either form. Node.Decode does not
// inherit the file's KnownFields, so the mapping's keys are checked here,
// in yaml.v3's own words, which yamlError rewrites like any other.
func (w *fileWarmImage) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		w.short = true
		return n.Decode(&w.Image)
	}
	if n.Kind == yaml.MappingNode {
		var unknown []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i]; k.Value {
			case "image", "platforms", "<<":
			default:
				unknown = append(unknown, fmt.Sprintf("line %d: field %s not found in type config.fileWarmImage", k.Line, k.Value))
			}
		}
		if unknown != nil {
			return &yaml.TypeError{Errors: unknown}
		}
	}
	return n.Decode((*warmImageMapping)(w))
}

// fileAdmin is the admin section.
type fileAdmin struct {
	Listen    *string `yaml:"listen"`
	TokenEnv  string  `yaml:"token_env"`
	TokenFile string  `yaml:"token_file"`
}

// apply validates the storage section and sets it on s.
func (fs *fileStorage) apply(s *Storage) error {
	if fs.MaxSize != nil {
		n, err := ParseSize(*fs.MaxSize)
		if err != nil {
			return fmt.Errorf("storage.max_size: %w", err)
		}
		s.MaxSize = n
	}
	for _, w := range []struct {
		key   string
		value *string
		dst   *float64
	}{
		{"high_watermark", fs.HighWatermark, &s.HighWatermark},
		{"low_watermark", fs.LowWatermark, &s.LowWatermark},
	} {
		if w.value == nil {
			continue
		}
		v, err := parseFraction(*w.value)
		if err != nil {
			return fmt.Errorf("storage.%s: %w", w.key, err)
		}
		*w.dst = v
	}
	// Checked even without max_size, which a flag may still set.
	if s.LowWatermark >= s.HighWatermark {
		low := formatPercent(s.LowWatermark)
		if fs.LowWatermark == nil {
			low += " (the default)"
		}
		return fmt.Errorf("storage.low_watermark: %s must be below storage.high_watermark (%s)", low, formatPercent(s.HighWatermark))
	}
	if fs.MaxIdle != nil {
		d, err := parseLongDuration(*fs.MaxIdle)
		if err != nil {
			return fmt.Errorf("storage.max_idle: %w", err)
		}
		s.MaxIdle = d
	}
	for i, p := range fs.Pin {
		if err := oci.CheckPattern(p); err != nil {
			return fmt.Errorf("storage.pin[%d]: %w", i, err)
		}
	}
	if len(fs.Pin) > 0 {
		s.Pin = fs.Pin
	}
	return nil
}

// apply validates the warm section and sets it on w.
func (fw *fileWarm) apply(w *Warm) error {
	if fw.Every != nil {
		d, err := parseLongDuration(*fw.Every)
		if err != nil {
			return fmt.Errorf("warm.every: %w", err)
		}
		w.Every = d
	}
	for i, fi := range fw.Images {
		key := fmt.Sprintf("warm.images[%d]", i)
		imageKey := key + ".image"
		if fi.short {
			imageKey = key
		}
		if err := checkWarmImage(fi.Image); err != nil {
			return fmt.Errorf("%s: %w", imageKey, err)
		}
		for j, p := range fi.Platforms {
			if err := checkPlatform(p); err != nil {
				return fmt.Errorf("%s.platforms[%d]: %w", key, j, err)
			}
		}
		w.Images = append(w.Images, WarmImage{Image: fi.Image, Platforms: fi.Platforms})
	}
	return nil
}

// apply validates the admin section, reads its token and sets both on a.
// Whether the address needs the token is checked once flags are applied
// too (checkAdmin).
func (fa *fileAdmin) apply(a *Admin, getenv func(string) string) error {
	if fa.Listen != nil {
		if err := checkListen(*fa.Listen); err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
		a.Listen = *fa.Listen
	}
	token, err := readSecret("admin", "token", fa.TokenEnv, fa.TokenFile, getenv)
	if err != nil {
		return err
	}
	a.Token = token
	return nil
}

// apply validates the log section and sets it on l.
func (fl *fileLog) apply(l *Log) error {
	if fl.Format != nil {
		if err := checkLogFormat(*fl.Format); err != nil {
			return fmt.Errorf("log.format: %w", err)
		}
		l.Format = *fl.Format
	}
	if fl.Level != nil {
		level, err := parseLevel(*fl.Level)
		if err != nil {
			return fmt.Errorf("log.level: %w", err)
		}
		l.Level = level
	}
	return nil
}
