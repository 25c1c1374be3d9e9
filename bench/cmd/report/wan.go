package main

import (
	"fmt"
	"strings"
)

// wanCases are the wan measurement's pulls (bench/wan.sh), in its order.
var wanCases = []string{"blob-fetch", "blob-crane", "layers-crane", "layers-ctr", "index-one", "index-all"}

// wanMeta is meta.json's wan (nil when the measurement did not run).
func (r *report) wanMeta() map[string]any {
	w, _ := r.meta["wan"].(map[string]any)
	return w
}

// wanNum is a number of meta.json's wan, 0 when missing.
func (r *report) wanNum(k string) float64 {
	v, _ := r.wanMeta()[k].(float64)
	return v
}

// wanCaseLabel names a wan case for people: "64 MiB blob, crane pull".
func (r *report) wanCaseLabel(c string) string {
	blob := sizeLabel(r.wanNum("blob_bytes")) + " blob"
	layers := fmt.Sprintf("%.0f × %s layers", r.wanNum("layers"), sizeLabel(r.wanNum("layer_bytes")))
	index := fmt.Sprintf("index of %.0f images of %.0f × %s", r.wanNum("index_images"), r.wanNum("index_layers"), sizeLabel(r.wanNum("layer_bytes")))
	switch c {
	case "blob-fetch":
		return blob + ", one sequential GET"
	case "blob-crane":
		return blob + ", crane pull"
	case "layers-crane":
		return layers + ", crane pull"
	case "layers-ctr":
		return fmt.Sprintf("%s, ctr image pull (%.0f downloads at once)", layers, r.wanNum("ctr_max_downloads"))
	case "index-one":
		return index + ", crane pull of one platform"
	case "index-all":
		return index + ", crane pull of the whole index"
	}
	return c
}

// wanCaseShort is the chart's form of a wan case: "LAYERS CTR".
func wanCaseShort(c string) string {
	return strings.ToUpper(strings.ReplaceAll(c, "-", " "))
}

// wanHeader is results.md's line about the wan measurement's upstream, or
// nothing when it did not run.
func (r *report) wanHeader() string {
	w := r.wanMeta()
	if w == nil {
		return ""
	}
	return fmt.Sprintf("- WAN (8): the shaped front delays every answer's headers by %v and caps each body at %v/s and all of them at %v/s; containerd %v\n",
		w["delay"], w["rate"], w["total_rate"], w["containerd"])
}
