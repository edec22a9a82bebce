package controller

import (
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

func TestParseSnapshotNamesTheConfigMap(t *testing.T) {
	cm := func(data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "glue"}, Data: data}
	}
	for name, tc := range map[string]struct {
		cm   *corev1.ConfigMap
		want string
	}{
		"no glue.yaml":   {cm(nil), "configmap ml/glue has no key glue.yaml"},
		"invalid config": {cm(map[string]string{config.FileKey: "namespace: ml\n"}), "configmap ml/glue key glue.yaml: invalid glue config"},
		"bad agent name": {cm(map[string]string{config.FileKey: "namespace: ml\nqueue: abc\nagentName: 'Not Valid!'\n"}), "configmap ml/glue: agentName"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseSnapshot(tc.cm)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	snap, err := parseSnapshot(cm(map[string]string{config.FileKey: "namespace: ml\nqueues: {good: {}, bad: {templateOverrides: {resources: {limits: {memory: '1 GB'}}}}}\n"}))
	assert.NilError(t, err, "a bad queue template does not refuse the config")
	assert.DeepEqual(t, snap.File.QueueNames(), []string{"bad", "good"})
	assert.Equal(t, len(snap.Builder.QueueErrors()), 1)
}
