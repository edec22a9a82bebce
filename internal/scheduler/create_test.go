package scheduler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestCreateObjectReadsOnlyMetadata: the create asks for PartialObjectMetadata and takes the UID
// from it; a refusal is the API server's error (AlreadyExists stays recognisable).
func TestCreateObjectReadsOnlyMetadata(t *testing.T) {
	var accepts, paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepts, paths = append(accepts, r.Header.Get("Accept")), append(paths, r.Method+" "+r.URL.Path)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/pods") {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
				Status: metav1.StatusFailure, Reason: metav1.StatusReasonAlreadyExists, Code: http.StatusConflict, Message: `pods "p" already exists`})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ml", UID: "uid-1"}})
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"}})
	assert.NilError(t, err)

	uid, err := createObject(context.Background(), cs, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ml"}})
	assert.NilError(t, err)
	assert.Equal(t, string(uid), "uid-1")

	_, err = createObject(context.Background(), cs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ml"}})
	assert.Assert(t, apierrors.IsAlreadyExists(err), "got %v", err)

	assert.DeepEqual(t, paths, []string{"POST /apis/batch/v1/namespaces/ml/jobs", "POST /api/v1/namespaces/ml/pods"})
	for _, a := range accepts {
		assert.Equal(t, a, metadataOnly)
	}
}
