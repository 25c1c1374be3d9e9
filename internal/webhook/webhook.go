// Package webhook is a mutating admission webhook that rewrites pods'
// images to an Entrepot cache (package rewrite): containers, init
// containers and ephemeral containers, on CREATE and UPDATE of pods and of
// their ephemeralcontainers subresource. It never stands in a pod's way:
// every review it cannot read, and every pod while the cache is not ready,
// is allowed unchanged, and no answer waits on the network.
package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/entrepot/entrepot/internal/rewrite"
)

// OptOutLabel on a pod or its namespace ("false") keeps its images as
// they are.
const OptOutLabel = "entrepot.io/rewrite"

// maxReview bounds a review's body: the API server sends the object and,
// on UPDATE, the old one, each at most its 3 MiB request limit.
const maxReview = 7 << 20

// Options configure a Handler.
type Options struct {
	Rewriter *rewrite.Rewriter
	// ExcludeNamespaces are namespaces whose pods are left alone.
	ExcludeNamespaces []string
	// PullSecret is added to the imagePullSecrets of pods created with
	// images rewritten; "" adds none.
	PullSecret string
	// Ready tells whether the cache is ready, and why not; nil means it
	// always is.
	Ready func() (bool, string)
	Log   *slog.Logger
}

// Handler answers AdmissionReviews (POST, admission.k8s.io/v1).
type Handler struct{ opt Options }

// New returns a handler.
func New(opt Options) *Handler { return &Handler{opt: opt} }

// patchOp is one JSONPatch operation (RFC 6902).
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	var review admissionv1.AdmissionReview
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReview))
	if err == nil {
		err = json.Unmarshal(body, &review)
	}
	if err == nil && review.Request == nil {
		err = fmt.Errorf("no request in the review")
	}
	if err != nil {
		// Answer anyway, allowed: the API server then admits the pod
		// (and with failurePolicy Ignore would do so on any error).
		h.opt.Log.Warn("webhook: malformed admission review: admitted unchanged", "err", err, "remote", r.RemoteAddr)
		h.write(w, &admissionv1.AdmissionResponse{Allowed: true}, nil)
		return
	}
	resp := h.review(review.Request)
	h.write(w, resp, review.Request)
}

// write sends resp as a review of the same version as the request's.
func (h *Handler) write(w http.ResponseWriter, resp *admissionv1.AdmissionResponse, req *admissionv1.AdmissionRequest) {
	if req != nil {
		resp.UID = req.UID
	}
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: resp,
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		h.opt.Log.Debug("webhook: answer not sent", "err", err)
	}
}

var podResource = metav1.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"}

// review decides one request: always allowed, with a patch when images
// are rewritten.
func (h *Handler) review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	log := h.opt.Log.With("uid", req.UID, "namespace", req.Namespace, "name", req.Name, "operation", req.Operation, "subresource", req.SubResource)
	if req.Resource != podResource || (req.SubResource != "" && req.SubResource != "ephemeralcontainers") ||
		(req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) {
		log.Warn("webhook: not a pod's CREATE or UPDATE: admitted unchanged", "resource", req.Resource.String())
		return allow
	}
	if slices.Contains(h.opt.ExcludeNamespaces, req.Namespace) {
		return allow
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		log.Warn("webhook: the review's object is not a pod: admitted unchanged", "err", err)
		return allow
	}
	if pod.Labels[OptOutLabel] == "false" {
		return allow
	}
	if h.opt.Ready != nil {
		if ok, why := h.opt.Ready(); !ok {
			msg := fmt.Sprintf("entrepot: the cache %s is not ready (%s): images left as they are", h.opt.Rewriter.Cache(), why)
			log.Warn("webhook: "+msg, "pod", pod.GenerateName+pod.Name)
			allow.Warnings = []string{msg}
			return allow
		}
	}
	ops := h.patch(&pod, req)
	if len(ops) == 0 {
		return allow
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		log.Error("webhook: patch not encoded: admitted unchanged", "err", err)
		return allow
	}
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	log.Info("webhook: images rewritten", "pod", pod.GenerateName+pod.Name, "images", len(ops))
	return allow
}

// patch returns the operations that rewrite pod's images: its ephemeral
// containers' for the ephemeralcontainers subresource (the only part of
// the pod it may change), every container's otherwise, and the pull
// secret on CREATE.
func (h *Handler) patch(pod *corev1.Pod, req *admissionv1.AdmissionRequest) []patchOp {
	var ops []patchOp
	add := func(list string, i int, image string) {
		if to, ok := h.opt.Rewriter.Image(image); ok {
			ops = append(ops, patchOp{Op: "replace", Path: fmt.Sprintf("/spec/%s/%d/image", list, i), Value: to})
		}
	}
	if req.SubResource == "" {
		for i, c := range pod.Spec.InitContainers {
			add("initContainers", i, c.Image)
		}
		for i, c := range pod.Spec.Containers {
			add("containers", i, c.Image)
		}
	}
	for i, c := range pod.Spec.EphemeralContainers {
		add("ephemeralContainers", i, c.Image)
	}
	if len(ops) > 0 && h.opt.PullSecret != "" && req.Operation == admissionv1.Create && req.SubResource == "" {
		secret := corev1.LocalObjectReference{Name: h.opt.PullSecret}
		switch {
		case slices.Contains(pod.Spec.ImagePullSecrets, secret):
		case len(pod.Spec.ImagePullSecrets) == 0:
			ops = append(ops, patchOp{Op: "add", Path: "/spec/imagePullSecrets", Value: []corev1.LocalObjectReference{secret}})
		default:
			ops = append(ops, patchOp{Op: "add", Path: "/spec/imagePullSecrets/-", Value: secret})
		}
	}
	return ops
}
