package main

import (
	"fmt"
	"strings"
)

// wanCases are the wan measurement's pulls (bench/wan.sh), in its order.
var wanCases = []string{"blob-fetch", "blob-crane", "layers-crane", "layers-ctr", "index-one", "index-all"}

// wanFloorCases are the pulls bench/wan.sh also times through Entrepot
// warm (system entrepot-warm): those whose client has work of its own
// besides fetching (crane writes the layout, ctr ingests and unpacks).
var wanFloorCases = []string{"blob-crane", "layers-crane", "layers-ctr"}

// wanFloorSpec is the client's floor: the pulls of 8a through Entrepot once
// it holds everything, next to direct and to Entrepot's cold pull.
var wanFloorSpec = tableSpec{
	title: "8e. WAN: the client's floor (the same pulls through Entrepot, warm)", short: "WAN FLOOR",
	note:    "Each pull again through Entrepot right after its cold pull there, on the same store, with a new layout for crane and containerd restarted on an empty root for ctr: the cache holds every blob, so the shaped link plays no part (table 8f) and what is left is the client's own work (crane writing the layout; ctr's ingest, its checks and the unpacking). No cache can go under it. The ratio column is the floor over each row: over direct, the lowest ratio to direct any cache could reach on this machine; over Entrepot's cold pull, the share of that pull the client's own work takes.",
	section: "wan", metric: "seconds", unit: "s", cases: wanFloorCases, subject: "entrepot-warm", ratioOf: "the floor",
	anchors: []anchorSpec{{"direct", nil, chartNever}, {"entrepot", nil, chartNever}},
}

// wanFloorRequestsSpec shows that the floor's pulls left the link alone.
var wanFloorRequestsSpec = tableSpec{
	title: "8f. WAN: requests the upstream answered during the floor's pulls", short: "WAN FLOOR REQUESTS",
	note:    "Every request (manifests and blobs) at the shaped front during the warm pulls of 8e: 0 when the cache answered everything from its store; a tag it revalidated would show here, each request paying the front's delay.",
	section: "wan", metric: "upstream_requests", unit: "requests", cases: wanFloorCases, subject: "entrepot-warm",
}

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
