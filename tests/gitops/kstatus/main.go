// Command kstatus prints what Flux's health check (kstatus) computes for Kubernetes
// objects: one line per object, "<kind>/<name> <Current|InProgress|Failed|...> <message>".
//
// It reads JSON on stdin: one object, or a List (`kubectl get -o json`). The tests build
// it from Go modules (sigs.k8s.io/cli-utils) and compare its answers with the Argo CD
// Lua health checks in docs/gitops/argocd-health.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	var doc map[string]interface{}
	// Kubernetes' json keeps integers int64, as unstructured accessors expect.
	if err := json.Unmarshal(data, &doc); err != nil {
		fail("stdin is not a JSON object: %v", err)
	}
	objects := []map[string]interface{}{doc}
	if items, ok := doc["items"].([]interface{}); ok {
		objects = objects[:0]
		for _, item := range items {
			object, ok := item.(map[string]interface{})
			if !ok {
				fail("a List item is not an object")
			}
			objects = append(objects, object)
		}
	}
	for _, object := range objects {
		u := &unstructured.Unstructured{Object: object}
		result, err := status.Compute(u)
		if err != nil {
			fail("%s/%s: %v", u.GetKind(), u.GetName(), err)
		}
		fmt.Printf("%s/%s %s %s\n", u.GetKind(), u.GetName(), result.Status, result.Message)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(1)
}
