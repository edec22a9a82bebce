package scheduler

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// metadataOnly asks the API server to answer a create with the object's metadata
// (PartialObjectMetadata), not the whole object: a launch needs only the UID. The whole Job
// was the largest allocation of a burst (the response read and decoded, ~25 KB per launch, a
// fifth of the controller's allocations) and the API server encoded it for nothing.
const metadataOnly = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1," +
	"application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

// metaDecoder decodes PartialObjectMetadata, in protobuf or JSON.
var metaDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	utilruntime.Must(metav1.AddMetaToScheme(s))
	return serializer.NewCodecFactory(s).UniversalDeserializer()
}()

// createObject creates obj (a Job or a Pod) and returns its UID. Through the clientset's REST
// client it reads only the created object's metadata (metadataOnly); a clientset without one
// (the fake of unit tests) creates through the typed client.
func createObject(ctx context.Context, cs kubernetes.Interface, obj podtemplate.Object) (types.UID, error) {
	var client rest.Interface
	var resource string
	switch obj.(type) {
	case *batchv1.Job:
		client, resource = cs.BatchV1().RESTClient(), "jobs"
	case *corev1.Pod:
		client, resource = cs.CoreV1().RESTClient(), "pods"
	default:
		return "", fmt.Errorf("unexpected object %T", obj)
	}
	if rc, ok := client.(*rest.RESTClient); !ok || rc == nil {
		return createTyped(ctx, cs, obj)
	}
	raw, err := client.Post().Namespace(obj.GetNamespace()).Resource(resource).Body(obj).
		SetHeader("Accept", metadataOnly).Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var meta metav1.PartialObjectMetadata
	if _, _, err := metaDecoder.Decode(raw, nil, &meta); err != nil {
		return "", fmt.Errorf("the API server's answer to the create of %s %s: %w", resource, obj.GetName(), err)
	}
	return meta.UID, nil
}

func createTyped(ctx context.Context, cs kubernetes.Interface, obj podtemplate.Object) (types.UID, error) {
	var created metav1.Object
	var err error
	switch o := obj.(type) {
	case *batchv1.Job:
		created, err = cs.BatchV1().Jobs(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Pod:
		created, err = cs.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	}
	if err != nil {
		return "", err
	}
	return created.GetUID(), nil
}
